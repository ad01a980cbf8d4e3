// The medallion pipeline end to end (Bronze → Kafka → Silver → Kafka → Gold → SQLite) on the real local broker, in
// real Node-RED runtimes running the shipped examples: sustained events/s with the offered load above capacity, and
// end-to-end latency (commit time in SQLite − the event's timestamp) at a steady 5k events/s. Every run checks that
// the SQLite file holds exactly the events produced; and Silver or Gold alone draining a filled input topic
// (silver-stage, gold-stage), with the least noise from the other stages. Uses KAFKA_BROKERS if set, otherwise starts
// scripts/kafka-local.sh on the test port (stopped at exit). BENCH_REPETITIONS (default 3) runs per figure.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { RunningNodeRed } from "../scripts/node-red-runtime";
import {
  configureFlow,
  countRows,
  createPipelineNames,
  describeGroup,
  kafkaBrokers,
  medallionLayers,
  pollUntil,
  queryRows,
  Runtimes,
  type FlowNode,
  type Layer,
  type PipelineNames,
} from "../test/support/medallion";
import { deleteTopics } from "../test/support/kafka-broker";
import { formatNumber, median, percentile, printFigure } from "./measure";

/** The Bronze tab's "start" inject node: the simulator is started through it once both groups have joined. */
const START_INJECT = "b000000000000012";

interface Scenario {
  name: string;
  /** Which layers run in which runtime: one runtime with all three tabs, or one runtime per layer. */
  placement: Layer[][];
  stations: number;
  ratePerStation: number;
  simBatchSize: number;
  events: number;
}

interface RunResult {
  eventsPerSecond: number;
  latencyP50: number;
  latencyP99: number;
  /** p99 of the events after the first 5 s of the run: JIT warm-up and the forest's training are behind it. */
  latencyP99AfterWarmup: number;
  /** p99 of the events of the last 5 s: bounded when the pipeline keeps pace, the backlog it built when it does not. */
  latencyP99LastSeconds: number;
  /** Events stored per second over the run's last 10 s of commits: the rate once warm (with a backlog, the capacity). */
  storedPerSecondLast10s: number;
  /** CPU time of the Node-RED processes (not the broker) per event stored. */
  cpuMicrosPerEvent: number;
  /** The same per runtime, e.g. "bronze 14 µs · silver 35 µs · gold 22 µs" (one runtime per layer). */
  cpuByRuntime: string;
  rows: number;
}

/** User + system CPU seconds of a process so far (Linux /proc). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function scenarioFlow(layers: Layer[], scenario: Scenario, names: PipelineNames): FlowNode[] {
  return configureFlow(medallionLayers(...layers), {
    names,
    // Started by hand once the consumer groups are stable, so a group join never counts as latency.
    sim: { seed: 1, stations: scenario.stations, ratePerStation: scenario.ratePerStation, batchSize: scenario.simBatchSize, limit: scenario.events, autoStart: false },
    debug: "off",
  });
}

async function groupsStable(names: PipelineNames): Promise<boolean> {
  const states = await Promise.all([describeGroup(names.silverGroup), describeGroup(names.goldGroup)]);
  return states.every((state) => state.state === "Stable" && state.members > 0 && state.assignments.every((partitions) => partitions.length > 0));
}

/** Starts the Bronze tab's simulator (its "start" inject node) in `runtime`. */
async function startSimulator(runtime: RunningNodeRed, what: string): Promise<void> {
  const response = await fetch(`${runtime.url}/inject/${START_INJECT}`, { method: "POST" });
  if (!response.ok) throw new Error(`${what}: could not start the simulator (HTTP ${response.status})`);
}

/**
 * Waits until Gold's database holds `events` rows and checks that each event is there exactly once; returns the first
 * event time and the first and last commit times.
 */
async function waitForEachEventOnce(databasePath: string, events: number, what: string): Promise<{ firstTs: number; firstStored: number; lastStored: number }> {
  const polled = await pollUntil(() => countRows(databasePath), (count) => count >= events, 300_000);
  const [check] = queryRows<{ rows: number; distinct_ids: number; first_ts: number; first_stored: number; last_stored: number }>(
    databasePath,
    "SELECT count(*) AS rows, count(DISTINCT event_id) AS distinct_ids, min(ts) AS first_ts, min(stored_at) AS first_stored, max(stored_at) AS last_stored FROM events",
  );
  if (check.rows !== events || check.distinct_ids !== events) {
    throw new Error(`${what}: ${check.rows} rows (${check.distinct_ids} distinct) for ${events} events (last poll ${polled})`);
  }
  return { firstTs: check.first_ts, firstStored: check.first_stored, lastStored: check.last_stored };
}

/** A run's topics, deleted once it is over (a failure to delete is reported, not fatal to the bench). */
async function removeTopics(names: PipelineNames | undefined): Promise<void> {
  if (names === undefined) return;
  await deleteTopics([names.raw, names.scored, names.anomalies, names.deadLetter]).catch((error: Error) => console.warn(`  (could not delete the run's topics: ${error.message})`));
}

async function runOnce(scenario: Scenario): Promise<RunResult> {
  const runtimes = new Runtimes();
  let topics: PipelineNames | undefined;
  try {
    topics = await createPipelineNames(3);
    const names = topics;
    const started: Array<{ layers: Layer[]; runtime: RunningNodeRed; userDir: string }> = [];
    for (const layers of scenario.placement) {
      const userDir = runtimes.userDir("bench-kafka");
      started.push({ layers, userDir, runtime: await runtimes.start(userDir, scenarioFlow(layers, scenario, names)) });
    }
    const gold = started.find((item) => item.layers.includes("gold"))!;
    const bronze = started.find((item) => item.layers.includes("bronze"))!;
    if (!(await pollUntil(() => groupsStable(names), Boolean, 60_000))) throw new Error(`${scenario.name}: consumer groups did not settle`);

    const cpuAtStart = started.map((item) => cpuSeconds(item.runtime.child.pid!));
    await startSimulator(bronze.runtime, scenario.name);

    const databasePath = join(gold.userDir, "anomalies.db");
    const stored = await waitForEachEventOnce(databasePath, scenario.events, scenario.name);
    const cpuUsed = started.map((item, index) => cpuSeconds(item.runtime.child.pid!) - cpuAtStart[index]);
    const cpu = cpuUsed.reduce((sum, seconds) => sum + seconds, 0);
    const cpuByRuntime = started.map((item, index) => `${item.layers.join("+")} ${((cpuUsed[index] * 1e6) / scenario.events).toFixed(0)} µs`).join(" · ");
    if (process.env.BENCH_LATENCY_PROFILE) {
      // Where the tail comes from: latency per bucket of event time (BENCH_LATENCY_PROFILE ms wide, default 1000).
      // better-sqlite3 binds a JS number as a REAL, so the division is cut to an integer by hand.
      const bucketMs = Number(process.env.BENCH_LATENCY_PROFILE) > 1 ? Math.round(Number(process.env.BENCH_LATENCY_PROFILE)) : 1000;
      const buckets = queryRows<{ bucket: number; n: number; worst: number; average: number }>(
        databasePath,
        `SELECT CAST((ts - (SELECT min(ts) FROM events)) / ? AS INTEGER) AS bucket, count(*) AS n, max(stored_at - ts) AS worst, avg(stored_at - ts) AS average FROM events GROUP BY 1 ORDER BY 1`,
        bucketMs,
      );
      for (const row of buckets) console.log(`  t=${row.bucket * bucketMs} ms events=${row.n} mean=${Math.round(row.average)} ms max=${row.worst} ms`);
    }
    const latencies = Float64Array.from(
      queryRows<{ latency: number }>(databasePath, "SELECT stored_at - ts AS latency FROM events").map((row) => row.latency),
    ).sort();
    const afterWarmup = Float64Array.from(
      queryRows<{ latency: number }>(databasePath, "SELECT stored_at - ts AS latency FROM events WHERE ts >= (SELECT min(ts) FROM events) + 5000").map((row) => row.latency),
    ).sort();
    const lastSeconds = Float64Array.from(
      queryRows<{ latency: number }>(databasePath, "SELECT stored_at - ts AS latency FROM events WHERE ts >= (SELECT max(ts) FROM events) - 5000").map((row) => row.latency),
    ).sort();
    return {
      eventsPerSecond: (scenario.events * 1000) / Math.max(1, stored.lastStored - stored.firstTs),
      latencyP50: percentile(latencies, 0.5),
      latencyP99: percentile(latencies, 0.99),
      latencyP99AfterWarmup: afterWarmup.length > 0 ? percentile(afterWarmup, 0.99) : Number.NaN,
      latencyP99LastSeconds: percentile(lastSeconds, 0.99),
      storedPerSecondLast10s: countRows(databasePath, "WHERE stored_at >= (SELECT max(stored_at) FROM events) - 10000") / 10,
      cpuMicrosPerEvent: (cpu * 1e6) / scenario.events,
      cpuByRuntime,
      rows: scenario.events,
    };
  } finally {
    await runtimes.cleanup();
    await removeTopics(topics);
  }
}

type Reported = "eventsPerSecond" | "storedPerSecondLast10s" | "latencyP50" | "latencyP99" | "latencyP99AfterWarmup" | "latencyP99LastSeconds" | "cpuMicrosPerEvent";

async function measure(scenario: Scenario, repetitions: number, report: Reported[]): Promise<void> {
  const runs: RunResult[] = [];
  for (let run = 0; run < repetitions; run++) runs.push(await runOnce(scenario));
  const labels = { eventsPerSecond: ["events/s", "events/s"], storedPerSecondLast10s: ["events/s stored in the last 10 s", "events/s"], latencyP50: ["p50 latency", "ms"], latencyP99: ["p99 latency", "ms"], latencyP99AfterWarmup: ["p99 latency after the first 5 s", "ms"], latencyP99LastSeconds: ["p99 latency of the last 5 s", "ms"], cpuMicrosPerEvent: ["Node-RED CPU per event", "µs"] } as const;
  for (const key of report) {
    const values = runs.map((run) => run[key]);
    printFigure({ name: `${scenario.name}: ${labels[key][0]}`, median: median(values), runs: values, unit: labels[key][1] });
  }
  console.log(`  rows stored per run: ${runs.map((run) => formatNumber(run.rows)).join(", ")} of ${formatNumber(scenario.events)} (each exactly once)`);
  if (scenario.placement.length > 1) console.log(`  CPU per event and runtime: ${runs.map((run) => run.cpuByRuntime).join(" | ")}`);
}

/** kafka-out nodes of the shipped examples whose events-out counters say when a stage has written everything. */
const BRONZE_RAW_OUT = "b000000000000020";
const SILVER_SCORED_OUT = "c000000000000040";

/** Events a node has sent on, from the runtime's /metrics. */
async function eventsOut(runtime: RunningNodeRed, nodeId: string): Promise<number> {
  const text = await (await fetch(`${runtime.url}/metrics`)).text();
  const line = text.split("\n").find((row) => row.startsWith("iot_anomaly_events_out_total{") && row.includes(`node_id="${nodeId}"`));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
}

type Stage = "silver" | "gold";
interface StageResult {
  eventsPerSecond: number;
  cpuMicrosPerEvent: number;
}

/**
 * Silver's pace: from its first event written to iot.scored to its last, read off its /metrics every 50 ms (±50 ms on
 * a span of seconds; polling every 20 ms put prom-client's formatting at about 1.5 % of Silver's CPU).
 */
async function silverSpan(runtime: RunningNodeRed, events: number): Promise<number> {
  let first = 0;
  const deadline = Date.now() + 300_000;
  for (;;) {
    const written = await eventsOut(runtime, SILVER_SCORED_OUT);
    if (written > 0 && first === 0) first = Date.now();
    if (written >= events) return Date.now() - first;
    if (Date.now() > deadline) throw new Error(`silver stage: ${written} of ${events} events written after 300 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * One stage on its own: the stages before it (one runtime) fill its input topic with `events` events and stop, then
 * a runtime of the stage drains the topic. Without the other stages on the two cores, the figure moves with the
 * stage's own cost. Gold is timed from its first commit to its last; Silver from its first event written to its last.
 */
async function runStage(stage: Stage, events: number): Promise<StageResult> {
  const runtimes = new Runtimes();
  let topics: PipelineNames | undefined;
  try {
    topics = await createPipelineNames(3);
    const names = topics;
    const scenario: Scenario = { name: `${stage} stage`, placement: [], stations: 100, ratePerStation: 1000, simBatchSize: 500, events };
    const upstreamLayers: Layer[] = stage === "gold" ? ["bronze", "silver"] : ["bronze"];
    const upstream = await runtimes.start(runtimes.userDir(`bench-${stage}-upstream`), scenarioFlow(upstreamLayers, scenario, names));
    if (stage === "gold" && !(await pollUntil(async () => (await describeGroup(names.silverGroup)).state === "Stable", Boolean, 60_000))) {
      throw new Error("gold stage: Silver's group did not settle");
    }
    await startSimulator(upstream, `${stage} stage`);
    const lastOut = stage === "gold" ? SILVER_SCORED_OUT : BRONZE_RAW_OUT;
    const written = await pollUntil(() => eventsOut(upstream, lastOut), (count) => count >= events, 300_000);
    if (written !== events) throw new Error(`${stage} stage: the stages before it wrote ${written} events for ${events}`);
    await upstream.stop();

    const userDir = runtimes.userDir(`bench-${stage}`);
    const runtime = await runtimes.start(userDir, scenarioFlow([stage], scenario, names));
    const cpuAtStart = cpuSeconds(runtime.child.pid!);
    let spanMs: number;
    if (stage === "silver") {
      spanMs = await silverSpan(runtime, events);
    } else {
      const stored = await waitForEachEventOnce(join(userDir, "anomalies.db"), events, "gold stage");
      spanMs = stored.lastStored - stored.firstStored;
    }
    const cpu = cpuSeconds(runtime.child.pid!) - cpuAtStart;
    return { eventsPerSecond: (events * 1000) / Math.max(1, spanMs), cpuMicrosPerEvent: (cpu * 1e6) / events };
  } finally {
    await runtimes.cleanup();
    await removeTopics(topics);
  }
}

async function measureStage(stage: Stage, events: number, repetitions: number): Promise<void> {
  const runs: StageResult[] = [];
  for (let run = 0; run < repetitions; run++) runs.push(await runStage(stage, events));
  const name = stage === "gold" ? `Gold alone, draining ${formatNumber(events)} scored events` : `Silver alone, scoring ${formatNumber(events)} raw events`;
  for (const [key, label, unit] of [["eventsPerSecond", "events/s", "events/s"], ["cpuMicrosPerEvent", "CPU per event", "µs"]] as const) {
    const values = runs.map((run) => run[key]);
    printFigure({ name: `${name}: ${label}`, median: median(values), runs: values, unit });
  }
}

const SCENARIOS = ["one-runtime", "three-runtimes", "target-rate", "latency", "silver-stage", "gold-stage"] as const;

export async function main(): Promise<void> {
  const repetitions = Number(process.env.BENCH_REPETITIONS ?? 3);
  // KAFKA_PIPELINE_SCENARIOS=one-runtime,latency runs a subset.
  const wanted = new Set((process.env.KAFKA_PIPELINE_SCENARIOS ?? SCENARIOS.join(",")).split(",").map((name) => name.trim()));
  const brokers = await kafkaBrokers();
  console.log(`medallion over Kafka (${brokers}, 3 partitions per topic), shipped examples; ${repetitions} runs each`);
  // Throughput: 200k events offered at 100k/s, well above what two cores sustain.
  const offered = { stations: 100, ratePerStation: 1000, simBatchSize: 500, events: 200_000 };
  if (wanted.has("one-runtime")) {
    await measure({ name: "one runtime, 3 tabs, offered 100k/s", placement: [["bronze", "silver", "gold"]], ...offered }, repetitions, ["eventsPerSecond", "cpuMicrosPerEvent"]);
  }
  if (wanted.has("three-runtimes")) {
    await measure({ name: "three runtimes (B | S | G), offered 100k/s", placement: [["bronze"], ["silver"], ["gold"]], ...offered }, repetitions, ["eventsPerSecond", "cpuMicrosPerEvent"]);
  }
  // The target's own terms: offered exactly 30k events/s (100 stations × 300/s), 30 s by default
  // (BENCH_TARGET_SECONDS). The first second runs cold code and builds a backlog; a pipeline that sustains 30k/s then
  // drains it, and the p99 of the last 5 s is small again; one that does not falls further behind, and that p99 is the
  // backlog it built. Unlike the runs offered 100k/s, no backlog far beyond capacity builds up in Bronze's memory.
  if (wanted.has("target-rate")) {
    const seconds = Number(process.env.BENCH_TARGET_SECONDS ?? 30);
    await measure(
      { name: `three runtimes, offered 30k/s for ${seconds} s`, placement: [["bronze"], ["silver"], ["gold"]], stations: 100, ratePerStation: 300, simBatchSize: 500, events: seconds * 30_000 },
      repetitions,
      ["eventsPerSecond", "storedPerSecondLast10s", "latencyP50", "latencyP99", "latencyP99LastSeconds", "cpuMicrosPerEvent"],
    );
  }
  // Latency at a steady 5k events/s: 50 stations × 100/s, each 50 ms simulator tick sent as one message. 60 s of
  // events by default, a sustained rate. The first 0.3-1 s after a deploy run cold code and build a backlog (events
  // of 100-270 ms): in a 10 s run those are several % of the events and set the p99 alone; in a 60 s run they weigh
  // six times less. The p99 after the first 5 s is printed too. BENCH_LATENCY_EVENTS=50000 gives the 10 s run of the
  // figures before 2026-12-03.
  if (wanted.has("latency")) {
    const events = Number(process.env.BENCH_LATENCY_EVENTS ?? 300_000);
    await measure(
      { name: `one runtime, steady 5k/s for ${Math.round(events / 5000)} s`, placement: [["bronze", "silver", "gold"]], stations: 50, ratePerStation: 100, simBatchSize: 500, events },
      repetitions,
      ["latencyP50", "latencyP99", "latencyP99AfterWarmup", "eventsPerSecond"],
    );
    console.log("(latency = SQLite commit time − event timestamp; it includes up to 10 ms of the simulator's tick, which emits the events due since the last tick)");
  }
  if (wanted.has("silver-stage")) await measureStage("silver", offered.events, repetitions);
  if (wanted.has("gold-stage")) await measureStage("gold", offered.events, repetitions);
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
}
