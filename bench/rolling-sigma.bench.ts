// Rolling k-sigma detector: check() throughput on the single-value path (count and time windows), processEvent on
// 3-metric events (and with a time window plus cool-down), memory per sensor-metric window. Targets: ≥ 10 M checks/s
// (count mode); ≤ 2 KB per window at 100; ≤ 300 MB RSS for 10k × 3 windows.
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { SensorEvent } from "../src/core/event";
import { RollingSigma, snapshotJson, type RollingSigmaOptions } from "../src/core/rolling-sigma";
import { printFigure, ratePerSecond, repeat } from "./measure";

const REPETITIONS = 5;

function collectGarbage(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
}

/** Deterministic noise around 20 with a spike now and then, so both branches of the decision run. */
function readings(count: number): Float64Array {
  const values = new Float64Array(count);
  let state = 12345;
  for (let i = 0; i < count; i++) {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    values[i] = 20 + (state / 0x7fffffff - 0.5) * 2 + (i % 1009 === 0 ? 30 : 0);
  }
  return values;
}

function sensorIds(count: number): string[] {
  return Array.from({ length: count }, (_, index) => `station-${String(index).padStart(5, "0")}`);
}

async function checkThroughput(sensorCount: number): Promise<void> {
  const ids = sensorIds(sensorCount);
  const values = readings(1 << 16);
  const mask = values.length - 1;
  const detector = new RollingSigma({ windowSize: 100, k: 3, minSamples: 30 });
  for (let i = 0; i < sensorCount * 100; i++) detector.check(ids[i % sensorCount], "vibration", values[i & mask]);
  const calls = 10_000_000;
  let flags = 0;
  let offset = 0;
  const figure = await repeat(`check(): ${sensorCount} sensor(s) x 1 metric, window 100`, "checks/s", REPETITIONS, () => {
    const rate = ratePerSecond(calls, () => {
      let sensor = 0;
      for (let i = 0; i < calls; i++) {
        if (detector.check(ids[sensor], "vibration", values[(i + offset) & mask]).flag) flags++;
        if (++sensor === sensorCount) sensor = 0;
      }
    });
    offset += 7919;
    return rate;
  });
  printFigure(figure);
  if (flags === 0) console.log("(no flags: the input has no spikes?)");
}

/** Time mode: one reading per sensor per second of event time, a 100 s window (about 100 readings), cap 1000. */
async function timeCheckThroughput(sensorCount: number): Promise<void> {
  const ids = sensorIds(sensorCount);
  const values = readings(1 << 16);
  const mask = values.length - 1;
  const detector = new RollingSigma({ windowMode: "time", windowSeconds: 100, windowSize: 1000, k: 3, minSamples: 30 });
  let clock = 1_700_000_000_000;
  let sensor = 0;
  /** Each round of all sensors is one second later. */
  const feed = (value: number) => {
    const result = detector.checkAt(ids[sensor], "vibration", value, clock);
    if (++sensor === sensorCount) {
      sensor = 0;
      clock += 1000;
    }
    return result;
  };
  for (let i = 0; i < sensorCount * 200; i++) feed(values[i & mask]);
  const calls = 5_000_000;
  let flags = 0;
  let offset = 0;
  const figure = await repeat(`checkAt() time mode: ${sensorCount} sensor(s) x 1 metric, 100 s window at 1 reading/s`, "checks/s", REPETITIONS, () => {
    const rate = ratePerSecond(calls, () => {
      for (let i = 0; i < calls; i++) if (feed(values[(i + offset) & mask]).flag) flags++;
    });
    offset += 7919;
    return rate;
  });
  printFigure(figure);
  if (flags === 0) console.log("(no flags: the input has no spikes?)");
}

/**
 * Fresh events per 1000-event batch, as they arrive from a parser, and only processEvent is timed. (Re-processing
 * the same long-lived events measures the garbage collector instead: results attached to old-generation events
 * are promoted on every round, about 1.7 µs per event.)
 */
async function processEventThroughput(options: RollingSigmaOptions = {}, label = "window 100"): Promise<void> {
  const sensorCount = 1000;
  const batchSize = 1000;
  const batches = 200;
  const ids = sensorIds(sensorCount);
  const values = readings(1 << 16);
  const mask = values.length - 1;
  let next = 0;
  const makeBatch = (): SensorEvent[] => {
    const events: SensorEvent[] = new Array(batchSize);
    for (let i = 0; i < batchSize; i++, next++) {
      const sensorId = ids[next % sensorCount];
      events[i] = {
        eventId: `${sensorId}:${next}`,
        sensorId,
        timestamp: 1_700_000_000_000 + Math.floor(next / sensorCount) * 1000, // each sensor once a second
        readings: { vibration: values[next & mask], temperature: 40 + values[(next * 7) & mask], pressure: values[(next * 13) & mask] / 10 },
      };
    }
    return events;
  };
  const detector = new RollingSigma({ windowSize: 100, k: 3, minSamples: 30, ...options });
  for (let b = 0; b < 100; b++) for (const event of makeBatch()) detector.processEvent(event);
  let anomalies = 0;
  const figure = await repeat(`processEvent(): 1000 sensors x 3 metrics, ${label}`, "events/s", REPETITIONS, () => {
    let nanoseconds = 0n;
    for (let b = 0; b < batches; b++) {
      const events = makeBatch();
      const started = process.hrtime.bigint();
      for (let i = 0; i < batchSize; i++) if (detector.processEvent(events[i]).anomaly) anomalies++;
      nanoseconds += process.hrtime.bigint() - started;
    }
    return (batches * batchSize) / (Number(nanoseconds) / 1e9);
  });
  printFigure(figure);
  if (anomalies === 0) console.log("(no anomalies: the input has no spikes?)");
}

/** Memory of `sensorCount` sensors x `metrics` full windows of 100: heap + array buffers, and process RSS. */
async function memory(sensorCount: number, metrics: string[]): Promise<void> {
  const gc = collectGarbage();
  // ArrayBuffer backing stores are freed after a GC by a background sweeper: collect twice and give it a moment.
  const settle = async () => {
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  const ids = sensorIds(sensorCount);
  const values = readings(1 << 12);
  const windows = sensorCount * metrics.length;
  let rss = 0;
  const label = `${sensorCount / 1000}k sensors x ${metrics.length} metric(s), window 100`;
  const perWindow = await repeat(`memory per window (heap + array buffers): ${label}`, "bytes", 3, async () => {
    await settle();
    const before = process.memoryUsage();
    let detector: RollingSigma | null = new RollingSigma({ windowSize: 100 });
    for (let round = 0; round < 100; round++) {
      for (let s = 0; s < sensorCount; s++) {
        for (let m = 0; m < metrics.length; m++) detector.check(ids[s], metrics[m], values[(round * 31 + s + m) & 4095]);
      }
    }
    await settle();
    const after = process.memoryUsage();
    rss = after.rss;
    const bytes = after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers);
    if (detector.windowCount !== windows) throw new Error("window count mismatch");
    detector = null;
    return bytes / windows;
  });
  printFigure(perWindow);
  printFigure({ name: `process RSS with ${label}`, median: rss / 2 ** 20, runs: [rss / 2 ** 20], unit: "MB" });
}

/**
 * The node saves every window every 5 s: how long taking the snapshot and writing it as JSON (snapshotJson, as the
 * node does) blocks the event loop, how long reading it back takes, and the file size. The file itself is written
 * off the event loop.
 */
async function snapshotCost(sensorCount: number, metrics: string[]): Promise<void> {
  const ids = sensorIds(sensorCount);
  const values = readings(1 << 12);
  const detector = new RollingSigma({ windowSize: 100 });
  for (let round = 0; round < 100; round++) {
    for (let s = 0; s < sensorCount; s++) for (let m = 0; m < metrics.length; m++) detector.check(ids[s], metrics[m], values[(round * 31 + s + m) & 4095]);
  }
  let bytes = 0;
  const label = `${sensorCount / 1000}k sensors x ${metrics.length} metrics, window 100`;
  const save = await repeat(`snapshot() + snapshotJson: ${label}`, "ms", REPETITIONS, () => {
    const started = process.hrtime.bigint();
    bytes = snapshotJson(detector.snapshot()).length;
    return Number(process.hrtime.bigint() - started) / 1e6;
  });
  printFigure(save);
  const text = snapshotJson(detector.snapshot());
  const load = await repeat(`JSON.parse + restore(): ${label}`, "ms", REPETITIONS, () => {
    const started = process.hrtime.bigint();
    new RollingSigma({ windowSize: 100 }).restore(JSON.parse(text));
    return Number(process.hrtime.bigint() - started) / 1e6;
  });
  printFigure(load);
  printFigure({ name: `state file size: ${label}`, median: bytes / 2 ** 20, runs: [bytes / 2 ** 20], unit: "MB" });
}

export async function main(): Promise<void> {
  console.log("rolling-sigma (rolling k-sigma detector)");
  await checkThroughput(1);
  await checkThroughput(1000);
  await processEventThroughput();
  await timeCheckThroughput(1);
  await timeCheckThroughput(1000);
  await processEventThroughput(
    { windowMode: "time", windowSeconds: 100, windowSize: 1000, cooldownSeconds: 60 },
    "100 s time window, 60 s cool-down",
  );
  await memory(10_000, ["vibration"]);
  await memory(10_000, ["vibration", "temperature", "pressure"]);
  await snapshotCost(10_000, ["vibration", "temperature", "pressure"]);
}
