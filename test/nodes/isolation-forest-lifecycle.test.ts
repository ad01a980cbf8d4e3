// The isolation-forest node's model lifecycle in a real Node-RED runtime (node-red-node-test-helper): drift on a
// simulated sensor retrains exactly once without losing an event, versions survive a restart through the models
// table in a real SQLite file, and the control messages train / load / rollback / reset.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import helper from "node-red-node-test-helper";
import isolationForestNode from "../../nodes/isolation-forest/isolation-forest";
import type { LifecycleEvent } from "../../src/core/model-lifecycle";
import { ModelRegistry } from "../../src/core/model-registry";
import { inbox, nextStatus, type Message } from "../support/node-inbox";
import { gaussian } from "../support/seeded-noise";

helper.init(require.resolve("node-red"));

const T0 = Date.UTC(2025, 0, 1);
const TRAINING_SIZE = 200;
const WINDOW = 200;

interface ScoredEvent {
  eventId: string;
  readings: Record<string, number>;
  detectors: { isolationForest: { score: number | null; modelVersion: number | null } };
}

/** A press's vibration (mm/s, N(2.5, 0.25)) and bearing temperature (°C, N(45, 1.5)), one reading a second. */
function press(seed: number) {
  const noise = gaussian(seed);
  let index = 0;
  return (count: number, vibrationShift = 0) =>
    Array.from({ length: count }, () => {
      const timestamp = T0 + 1000 * index++;
      return { sensorId: "press-7", timestamp, readings: { vibration: 2.5 + vibrationShift + 0.25 * noise(), temperature: 45 + 1.5 * noise() } };
    });
}

const lifecycleOf = (messages: Message[]) => messages.map((msg) => msg.payload as LifecycleEvent);
const brief = (events: LifecycleEvent[]) => events.map((event) => [event.event, event.version, event.previousVersion]);

describe("iot-isolation-forest node: model lifecycle", () => {
  let directory: string;
  let database: string;

  const flow = (config: Record<string, unknown> = {}) => [
    {
      id: "forest",
      type: "iot-isolation-forest",
      features: "vibration, temperature",
      trainingSize: TRAINING_SIZE,
      nEstimators: 50,
      maxSamples: 256,
      thresholdMode: "score",
      threshold: 0.6,
      seed: 42,
      modelsDatabase: database,
      modelsTable: "iot_models",
      driftEvery: 100,
      driftSeconds: 0,
      driftAlpha: 0.01,
      driftWindow: WINDOW,
      retrainOnDrift: true,
      keepVersions: 0,
      wires: [["scored"], ["anomalies"], ["lifecycle"]],
      ...config,
    },
    { id: "scored", type: "helper" },
    { id: "anomalies", type: "helper" },
    { id: "lifecycle", type: "helper" },
    { id: "on-complete", type: "complete", scope: ["forest"], uncaught: false, wires: [["completed"]] },
    { id: "completed", type: "helper" },
    { id: "on-catch", type: "catch", scope: ["forest"], uncaught: false, wires: [["caught"]] },
    { id: "caught", type: "helper" },
  ];

  async function start(config: Record<string, unknown> = {}) {
    await helper.load(isolationForestNode, flow(config));
    return {
      forest: helper.getNode("forest"),
      scored: inbox(helper.getNode("scored")),
      lifecycle: inbox(helper.getNode("lifecycle")),
      completed: inbox(helper.getNode("completed")),
      caught: inbox(helper.getNode("caught")),
    };
  }
  type Started = Awaited<ReturnType<typeof start>>;

  /** Sends events in messages of `batch` and returns every event output 1 sent for them, in order. */
  async function stream(started: Started, events: object[], batch = 50): Promise<ScoredEvent[]> {
    let messages = 0;
    for (let i = 0; i < events.length; i += batch) {
      started.forest.receive({ payload: events.slice(i, i + batch) });
      messages++;
    }
    return (await started.scored.take(messages, "scored batches")).flatMap((msg) => msg.payload as ScoredEvent[]);
  }

  /** The model version that scores a probe event now. */
  async function versionNow(started: Started, next: ReturnType<typeof press>): Promise<number | null> {
    started.forest.receive({ payload: next(1)[0] });
    return ((await started.scored.next("the probe")).payload as ScoredEvent).detectors.isolationForest.modelVersion;
  }

  /** Sends a control message, waits for the `expected` lifecycle events it reports, and checks nothing else came. */
  async function command(started: Started, topic: string, expected: number, payload?: unknown): Promise<LifecycleEvent[]> {
    started.forest.receive({ topic, payload });
    const events = lifecycleOf(await started.lifecycle.take(expected, `lifecycle events of ${topic}`));
    assert.equal(started.lifecycle.queued, 0, `${topic} reports ${expected} events`);
    return events;
  }

  beforeEach((done) => {
    directory = mkdtempSync(join(tmpdir(), "iforest-lifecycle-"));
    database = join(directory, "models.db");
    process.env.IOT_ANOMALY_STATE_DIR = join(directory, "state");
    helper.startServer(done);
  });

  afterEach(async () => {
    await helper.unload();
    delete process.env.IOT_ANOMALY_STATE_DIR;
    rmSync(directory, { recursive: true, force: true });
    await new Promise<void>((resolve) => helper.stopServer(() => resolve()));
  });

  it("a mean shift of the sensor gives exactly one drift and one retrain (v1 -> v2), every event out exactly once", async () => {
    const started = await start();
    const next = press(21);
    const confirming = nextStatus(started.forest, (status) => status.text === "iot-isolation-forest.status.confirming", "the yellow confirming status");
    const sent = [...next(TRAINING_SIZE), ...next(800), ...next(1200, 1)]; // +4 sd vibration from event 1000
    const out = await stream(started, sent);

    // Nothing lost, nothing twice, in order.
    assert.equal(out.length, sent.length);
    assert.equal(new Set(out.map((event) => event.eventId)).size, sent.length);
    assert.deepEqual(out.map((event) => event.readings.vibration), sent.map((event) => event.readings.vibration));
    // Warm-up events unscored, then v1, then v2 from one point on, never back.
    const versions = out.map((event) => event.detectors.isolationForest.modelVersion);
    assert.ok(versions.slice(0, TRAINING_SIZE).every((version) => version === null));
    const switchAt = versions.indexOf(2);
    assert.ok(switchAt > 1000 + WINDOW, `v2 scores from event ${switchAt}: after the shift, a suspicion and a confirming window`);
    assert.ok(versions.slice(TRAINING_SIZE, switchAt).every((version) => version === 1));
    assert.ok(versions.slice(switchAt).every((version) => version === 2));

    const events = lifecycleOf(await started.lifecycle.take(5, "lifecycle events"));
    assert.deepEqual(brief(events), [["trained", 1, null], ["promoted", 1, null], ["drift", 1, null], ["trained", 2, 1], ["promoted", 2, 1]]);
    assert.equal(started.lifecycle.queued, 0, "exactly one drift and one retrain");
    const [warmup, , drift, retrain] = events;
    assert.equal(warmup.details.reason, "warm-up");
    assert.equal(drift.details.feature, "vibration");
    assert.ok((drift.details.pValue as number) < 0.005);
    assert.deepEqual([retrain.details.reason, retrain.details.rows], ["drift", WINDOW]);
    assert.equal((await confirming).fill, "yellow");

    const registry = new ModelRegistry({ path: database });
    try {
      assert.deepEqual(registry.list("forest").map((info) => [info.version, info.reason, info.status]), [[1, "warm-up", "inactive"], [2, "drift", "active"]]);
    } finally {
      registry.close();
    }
  });

  it("keeps the active version across a restart, also after a rollback; the models table wins over the state file", async () => {
    const next = press(22);
    let started = await start();
    await stream(started, next(TRAINING_SIZE));
    await started.lifecycle.take(2, "the warm-up's trained and promoted");
    assert.deepEqual(brief(await command(started, "train", 2, next(300))), [["trained", 2, 1], ["promoted", 2, 1]]);
    await helper.unload();

    started = await start();
    assert.equal(await versionNow(started, next), 2, "v2 after the restart");
    assert.deepEqual(brief(await command(started, "rollback", 1)), [["rolled-back", 1, 2]]);
    await helper.unload();

    started = await start();
    assert.equal(await versionNow(started, next), 1, "still rolled back after the restart");
    await helper.unload();

    // Promote v2 in the table while the flow is stopped: the state file still says v1, the table wins.
    const registry = new ModelRegistry({ path: database });
    registry.promote("forest", 2);
    registry.close();
    started = await start();
    assert.equal(await versionNow(started, next), 2);
  });

  it("control messages: train now, load X, rollback, reset; an unknown version goes to Catch and changes nothing", async () => {
    const next = press(23);
    const started = await start({ driftEvery: 0 });
    await stream(started, next(TRAINING_SIZE));
    assert.deepEqual(brief(lifecycleOf(await started.lifecycle.take(2, "warm-up events"))), [["trained", 1, null], ["promoted", 1, null]]);
    await stream(started, next(60));

    // Train now without rows: on the recent window (the 60 events scored since).
    const trained = await command(started, "train", 2);
    assert.deepEqual(brief(trained), [["trained", 2, 1], ["promoted", 2, 1]]);
    assert.deepEqual([trained[0].details.reason, trained[0].details.rows], ["train", 60]);
    assert.equal(await versionNow(started, next), 2);

    assert.deepEqual(brief(await command(started, "load", 1, { version: 1 })), [["loaded", 1, 2]]);
    assert.equal(await versionNow(started, next), 1);
    assert.deepEqual(brief(await command(started, "rollback", 1)), [["rolled-back", 2, 1]]);
    assert.equal(await versionNow(started, next), 2);

    started.forest.receive({ topic: "load", payload: { version: 9 } });
    assert.match((await started.caught.next("the unknown version error")).error.message, /load: there is no model version 9 for this node \(stored: 1, 2\)/);
    started.forest.receive({ topic: "load", payload: { version: "latest" } });
    assert.match((await started.caught.next("the bad version error")).error.message, /load: "payload.version" must be a positive integer, the version to load \(got "latest"\)/);
    assert.equal(await versionNow(started, next), 2, "a failed load changes nothing");

    const warming = nextStatus(started.forest, (status) => status.fill === "yellow", "the warming-up status");
    assert.deepEqual(brief(await command(started, "reset", 1)), [["reset", null, 2]]);
    assert.equal((await warming).text, "iot-isolation-forest.status.warming");
    assert.equal(await versionNow(started, next), null, "warming up again");
    // After a reset, rollback brings the dropped model back.
    assert.deepEqual(brief(await command(started, "rollback", 1)), [["rolled-back", 2, null]]);
    assert.equal(await versionNow(started, next), 2);
    assert.equal(started.scored.queued, 0, "control messages send nothing on output 1");
  });

  it("without a usable models table it still scores and keeps the model in the state file; load reports why it cannot", async () => {
    const raw = new Database(database);
    raw.exec("CREATE TABLE iot_models (id INTEGER PRIMARY KEY, name TEXT)");
    raw.close();
    const next = press(24);
    const started = await start();
    const errors = helper.log().args.filter((args: Array<{ level?: number; msg?: unknown }>) => args[0]?.level === 20).map((args: Array<{ msg?: unknown }>) => String(args[0].msg));
    assert.ok(errors.includes("iot-isolation-forest.errors.registry"), `logged errors: ${errors.join(" | ")}`);
    const out = await stream(started, next(TRAINING_SIZE + 10));
    assert.equal(out[TRAINING_SIZE].detectors.isolationForest.modelVersion, 1);
    started.forest.receive({ topic: "load", payload: 1 });
    assert.match((await started.caught.next("the load error")).error.message, /load: needs the models database, which is not open \(table "iot_models" in .* exists without the columns detector_id/);
    await helper.unload();
    const restarted = await start();
    assert.equal(await versionNow(restarted, next), 1, "the state file kept v1");
  });
});
