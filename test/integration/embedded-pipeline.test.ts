// The embedded pipeline example in a real Node-RED runtime (child process, built package): a seeded run lands in
// SQLite with both detectors' results, injected spikes are caught, clean readings rarely flagged, and a restart
// resumes with the trained model and warm windows.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { repositoryRoot, startNodeRed, type RunningNodeRed } from "../../scripts/node-red-runtime";

interface FlowNode {
  id: string;
  type: string;
  [property: string]: unknown;
}

const EVENTS = 20_000;
const STATIONS = 5;

/** The shipped example, with the simulator seeded, faster, limited, and injecting spikes only (so every other
 * reading is clean and counts towards the false-alarm rate). */
function pipelineFlow(seed: number): FlowNode[] {
  const flow = JSON.parse(readFileSync(join(repositoryRoot, "examples", "embedded-pipeline.json"), "utf8")) as FlowNode[];
  const simulator = flow.find((node) => node.type === "iot-sensor-sim")!;
  Object.assign(simulator, {
    seed,
    stations: STATIONS,
    ratePerStation: 1000,
    batchSize: 1,
    limit: EVENTS,
    spikeRate: 0.01,
    levelShiftRate: 0,
    driftRate: 0,
    stuckRate: 0,
    noiseBurstRate: 0,
  });
  return flow;
}

interface StoredRow {
  event_id: string;
  sensor_id: string;
  ts: number;
  label_anomaly: number | null;
  label_kind: string | null;
  label_metric: string | null;
  readings: string;
  sigma_z: string | null;
  sigma_flags: string | null;
  iforest_score: number | null;
  model_version: number | null;
}

async function waitForRows(databasePath: string, expected: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let count = 0;
  while (Date.now() < deadline) {
    try {
      const database = new Database(databasePath, { readonly: true, fileMustExist: true });
      count = (database.prepare("SELECT count(*) AS n FROM events").get() as { n: number }).n;
      database.close();
      if (count >= expected) return count;
    } catch {
      // The sink has not created the file or table yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return count;
}

describe("integration: embedded pipeline in a real Node-RED runtime", function () {
  this.timeout(180_000);
  let userDir: string;
  let runtime: RunningNodeRed | undefined;

  before(() => {
    userDir = mkdtempSync(join(tmpdir(), "iot-anomaly-embedded-"));
  });

  after(async () => {
    await runtime?.kill();
    rmSync(userDir, { recursive: true, force: true });
  });

  it("stores every simulated event once, flags ≥6σ spikes (recall ≥ 0.9) with ≤1% false alarms on clean readings", async () => {
    runtime = await startNodeRed({ userDir, flows: pipelineFlow(7) });
    const databasePath = join(userDir, "anomalies.db");
    const count = await waitForRows(databasePath, EVENTS, 120_000);
    assert.equal(count, EVENTS, `expected ${EVENTS} rows, found ${count}. Log:\n${runtime.log().slice(-3000)}`);
    assert.match(runtime.log(), /writing events to .*anomalies\.db/);

    const database = new Database(databasePath, { readonly: true });
    const rows = database.prepare("SELECT * FROM events ORDER BY ts, event_id").all() as StoredRow[];
    const distinct = (database.prepare("SELECT count(DISTINCT event_id) AS n FROM events").get() as { n: number }).n;
    database.close();
    assert.equal(distinct, EVENTS, "no event is stored twice");

    // Judge the 3σ detector per reading, after each sensor's window is warm (it cannot flag before minSamples).
    const minSamples = 30;
    const seenPerSensor = new Map<string, number>();
    let spikes = 0;
    let spikesFlagged = 0;
    let cleanReadings = 0;
    let cleanFlagged = 0;
    for (const row of rows) {
      const seen = (seenPerSensor.get(row.sensor_id) ?? 0) + 1;
      seenPerSensor.set(row.sensor_id, seen);
      if (seen <= minSamples + 1) continue;
      // sigma_flags lists the metrics the 3σ detector flagged (NULL when none); label_metric is where the fault went.
      const flagged = new Set(JSON.parse(row.sigma_flags ?? "[]") as string[]);
      const label = row.label_anomaly === 1 ? row.label_kind : null;
      if (label === null) {
        cleanReadings += Object.keys(JSON.parse(row.readings)).length;
        cleanFlagged += flagged.size;
      }
      if (label === "spike") {
        spikes++;
        assert.ok(row.label_metric, `spike ${row.event_id} names the metric it was injected into`);
        if (flagged.has(row.label_metric!)) spikesFlagged++;
      }
    }
    const recall = spikesFlagged / spikes;
    const falseAlarmRate = cleanFlagged / cleanReadings;
    console.log(`      spikes ${spikes}, recall ${recall.toFixed(3)}; clean readings ${cleanReadings}, false-alarm rate ${(100 * falseAlarmRate).toFixed(2)}%`);
    assert.ok(spikes >= 100, `expected at least 100 injected spikes, got ${spikes}`);
    assert.ok(recall >= 0.9, `spike recall ${recall} < 0.9`);
    assert.ok(falseAlarmRate <= 0.01, `false-alarm rate ${falseAlarmRate} > 1%`);

    // The forest trains on the first 1000 events and scores the rest with model version 1.
    const scored = rows.filter((row) => row.iforest_score !== null);
    assert.ok(scored.length >= EVENTS - 1100, `only ${scored.length} events scored by the forest`);
    assert.ok(scored.every((row) => row.model_version === 1 && row.iforest_score! > 0 && row.iforest_score! <= 1));
  });

  it("after a restart, resumes with the saved model and warm windows (no new warm-up)", async () => {
    await runtime!.stop();
    const databasePath = join(userDir, "anomalies.db");
    const before = new Database(databasePath, { readonly: true });
    const lastTimestamp = (before.prepare("SELECT max(ts) AS ts FROM events").get() as { ts: number }).ts;
    before.close();

    // Same node ids, a new seed (new events), a small run: every new event must be judged at once.
    const flow = pipelineFlow(8);
    Object.assign(flow.find((node) => node.type === "iot-sensor-sim")!, { limit: 500 });
    runtime = await startNodeRed({ userDir, flows: flow });
    const count = await waitForRows(databasePath, EVENTS + 500, 60_000);
    assert.equal(count, EVENTS + 500);

    const database = new Database(databasePath, { readonly: true });
    const rows = database.prepare("SELECT readings, sigma_z, iforest_score, model_version FROM events WHERE ts > ? ").all(lastTimestamp) as StoredRow[];
    database.close();
    assert.ok(rows.length >= 500);
    for (const row of rows) {
      assert.equal(row.model_version, 1, "the restored forest scores without retraining");
      assert.notEqual(row.iforest_score, null);
      // Warm windows give every metric a z at once (sigma_z leaves out metrics still warming up).
      assert.deepEqual(Object.keys(JSON.parse(row.sigma_z ?? "{}")).sort(), Object.keys(JSON.parse(row.readings)).sort(), "restored windows need no warm-up");
    }
  });
});
