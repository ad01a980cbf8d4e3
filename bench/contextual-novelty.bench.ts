// The contextual-novelty node's state at scale: heap once 1000 sensors × 3 metrics have learnt their patterns, and
// what a save (snapshot + JSON, on the event loop every 5 s) and a restore cost. Run with `node --expose-gc` for an
// exact heap figure.
import { SensorNovelty } from "../src/core/stream-detectors/sensor-novelty";
import { gaussian } from "../test/support/seeded-noise";
import { printFigure, repeat } from "./measure";

const SENSORS = 1000;
const ROWS_PER_SENSOR = 300;
const REPETITIONS = 5;

function heapUsed(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed;
}

/** A detector of SENSORS sensors × 3 metrics fed noisy readings (many distinct patterns: close to the worst case). */
function learnt(): SensorNovelty {
  const detector = new SensorNovelty({ rangeMode: "warmup", warmupRows: 100 });
  const noise = gaussian(7);
  let time = 1_700_000_000_000;
  for (let row = 0; row < SENSORS * ROWS_PER_SENSOR; row++) {
    time += 1000;
    detector.processEvent({ eventId: `e${row}`, sensorId: `s-${row % SENSORS}`, timestamp: time, readings: { temperature: 20 + noise(), humidity: 40 + 3 * noise(), sound: 50 + noise() } });
  }
  return detector;
}

export async function main(): Promise<void> {
  console.log(`contextual-novelty: ${SENSORS} sensors x 3 metrics, ${ROWS_PER_SENSOR} noisy readings each${(globalThis as { gc?: unknown }).gc ? "" : " (heap without --expose-gc is approximate)"}`);
  const label = `${SENSORS / 1000}k sensors x 3 metrics`;
  const before = heapUsed();
  const detector = learnt();
  const heap = heapUsed() - before;
  let text = "";
  const save = await repeat(`contextual-novelty save (snapshot + JSON.stringify), ${label}`, "ms", REPETITIONS, () => {
    const started = process.hrtime.bigint();
    text = JSON.stringify(detector.snapshot());
    return Number(process.hrtime.bigint() - started) / 1e6;
  });
  printFigure(save);
  const restore = await repeat(`contextual-novelty restore (JSON.parse + restore), ${label}`, "ms", REPETITIONS, () => {
    const started = process.hrtime.bigint();
    new SensorNovelty({ rangeMode: "warmup", warmupRows: 100 }).restore(JSON.parse(text));
    return Number(process.hrtime.bigint() - started) / 1e6;
  });
  printFigure(restore);
  printFigure({ name: `contextual-novelty state file, ${label}`, median: text.length / 2 ** 20, runs: [text.length / 2 ** 20], unit: "MB" });
  printFigure({ name: `contextual-novelty heap once learnt, ${label}`, median: heap / 2 ** 20, runs: [heap / 2 ** 20], unit: "MB" });
}

