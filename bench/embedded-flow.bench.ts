// The embedded pipeline (sensor-sim → rolling-3-sigma → isolation-forest → sqlite-sink) in a real Node-RED runtime:
// events/s in batch mode and one event per message, end-to-end latency at a steady rate, and peak RSS.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { repositoryRoot, startNodeRed } from "../scripts/node-red-runtime";
import { formatNumber, median, percentile, printFigure } from "./measure";

interface FlowNode {
  type: string;
  [property: string]: unknown;
}

interface Scenario {
  name: string;
  stations: number;
  ratePerStation: number;
  batchSize: number;
  events: number;
  sinkBatchSize: number;
  flushInterval: number;
}

interface RunResult {
  eventsPerSecond: number;
  latencyP50: number;
  latencyP99: number;
  peakRssMb: number;
}

function scenarioFlow(scenario: Scenario): FlowNode[] {
  const flow = JSON.parse(readFileSync(join(repositoryRoot, "examples", "embedded-pipeline.json"), "utf8")) as FlowNode[];
  for (const node of flow) {
    if (node.type === "iot-sensor-sim") {
      Object.assign(node, { stations: scenario.stations, ratePerStation: scenario.ratePerStation, batchSize: scenario.batchSize, limit: scenario.events, seed: 1 });
    }
    if (node.type === "iot-sqlite-sink") Object.assign(node, { batchSize: scenario.sinkBatchSize, flushInterval: scenario.flushInterval });
    // The debug sidebar is not part of the hot path being measured.
    if (node.type === "debug") node.active = false;
  }
  return flow;
}

function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const match = status.match(/VmHWM:\s+(\d+) kB/);
  return match ? Number(match[1]) / 1024 : NaN;
}

async function runOnce(scenario: Scenario): Promise<RunResult> {
  const userDir = mkdtempSync(join(tmpdir(), "iot-anomaly-bench-"));
  const runtime = await startNodeRed({ userDir, flows: scenarioFlow(scenario) });
  try {
    const databasePath = join(userDir, "anomalies.db");
    const deadline = Date.now() + 300_000;
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      let count = 0;
      try {
        const database = new Database(databasePath, { readonly: true, fileMustExist: true });
        count = (database.prepare("SELECT count(*) AS n FROM events").get() as { n: number }).n;
        database.close();
      } catch {
        // not created yet
      }
      if (count >= scenario.events) break;
      if (Date.now() > deadline) throw new Error(`${scenario.name}: only ${count} of ${scenario.events} rows after 300 s`);
    }
    const rss = peakRssMb(runtime.child.pid!);
    const database = new Database(databasePath, { readonly: true });
    const span = database.prepare("SELECT min(ts) AS first, max(stored_at) AS last FROM events").get() as { first: number; last: number };
    const latencies = (database.prepare("SELECT stored_at - ts AS latency FROM events ORDER BY latency").all() as Array<{ latency: number }>).map((row) => row.latency);
    database.close();
    return {
      eventsPerSecond: (scenario.events * 1000) / Math.max(1, span.last - span.first),
      latencyP50: percentile(latencies, 0.5),
      latencyP99: percentile(latencies, 0.99),
      peakRssMb: rss,
    };
  } finally {
    await runtime.stop();
    rmSync(userDir, { recursive: true, force: true });
  }
}

async function measure(scenario: Scenario, repetitions: number, report: Array<keyof RunResult>): Promise<void> {
  const runs: RunResult[] = [];
  for (let run = 0; run < repetitions; run++) runs.push(await runOnce(scenario));
  const units: Record<keyof RunResult, string> = { eventsPerSecond: "events/s", latencyP50: "ms p50 latency", latencyP99: "ms p99 latency", peakRssMb: "MB peak RSS" };
  for (const key of report) {
    const values = runs.map((run) => run[key]);
    printFigure({ name: `${scenario.name}: ${units[key].replace(/^ms |^MB /, "")}`, median: median(values), runs: values, unit: units[key].split(" ")[0] });
  }
}

export async function main(): Promise<void> {
  const repetitions = Number(process.env.BENCH_REPETITIONS ?? 3);
  console.log(`embedded flow in Node-RED (sim → 3σ → forest → SQLite), ${repetitions} runs each; offered load above capacity for throughput`);
  await measure(
    { name: "batch mode (1000 events/msg)", stations: 100, ratePerStation: 4000, batchSize: 1000, events: 400_000, sinkBatchSize: 2000, flushInterval: 100 },
    repetitions,
    ["eventsPerSecond", "peakRssMb"],
  );
  await measure(
    { name: "one event per message", stations: 50, ratePerStation: 1000, batchSize: 1, events: 150_000, sinkBatchSize: 1000, flushInterval: 100 },
    repetitions,
    ["eventsPerSecond", "peakRssMb"],
  );
  await measure(
    { name: "steady 5k events/s, one per message", stations: 50, ratePerStation: 100, batchSize: 1, events: 50_000, sinkBatchSize: 500, flushInterval: 50 },
    repetitions,
    ["latencyP50", "latencyP99", "eventsPerSecond"],
  );
  console.log(`(latency = commit time − reading time; it includes the sink's flush interval of 50 ms; ${formatNumber(5000)} events/s offered)`);
}

if (require.main === module) void main();
