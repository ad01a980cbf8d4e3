// Sensor simulator: events generated per second by the core (target > 1 M/s), per preset and fault load, and CSV
// replay parsing throughput. Events are dropped in 1000-event batches, as the node hands them to send().
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CsvReplay } from "../src/core/csv-replay";
import type { SensorEvent } from "../src/core/event";
import { StationSimulator, type SimulatorOptions } from "../src/core/simulator";
import { sharedDataDir } from "../test/support/shared-data";
import { printFigure, ratePerSecond, repeat } from "./measure";

const REPETITIONS = 5;
const EVENTS = 1_000_000;
const BATCH = 1000;
const NAB_FILE = join(sharedDataDir() ?? "", "nab/data/realKnownCause/machine_temperature_system_failure.csv");
const DEFAULT_FAULTS = { spike: 0.005, levelShift: 0.0005, drift: 0.0005, stuck: 0.0005, noiseBurst: 0.0005 };

async function generation(title: string, options: SimulatorOptions): Promise<void> {
  const simulator = new StationSimulator({ stations: 10, ratePerStation: 100, seed: 42, startTime: Date.UTC(2025, 0, 1), ...options });
  const batch: SensorEvent[] = [];
  let anomalies = 0;
  const figure = await repeat(`generate: ${title}`, "events/s", REPETITIONS, () =>
    ratePerSecond(EVENTS, () => {
      for (let done = 0; done < EVENTS; done += BATCH) {
        batch.length = 0;
        simulator.generate(BATCH, batch);
        if (batch[BATCH - 1].label!.anomaly) anomalies++;
      }
    }),
  );
  printFigure(figure);
  if (anomalies < 0) console.log("unreachable: keeps the label read from being optimised away");
}

async function replay(title: string, path: string, rows: number): Promise<void> {
  const figure = await repeat(`csv replay parse: ${title}`, "rows/s", REPETITIONS, () => {
    const replayer = new CsvReplay(path, { speed: 0 });
    const batch: SensorEvent[] = [];
    const rate = ratePerSecond(rows, () => {
      while (!replayer.isFinished()) {
        batch.length = 0;
        replayer.takeDue(0, BATCH, batch);
      }
    });
    if (replayer.emitted !== rows) throw new Error(`expected ${rows} rows, read ${replayer.emitted}`);
    return rate;
  });
  printFigure(figure);
}

export async function main(): Promise<void> {
  await generation("vibration (1 metric), 10 stations, default faults", { preset: "vibration", faults: DEFAULT_FAULTS });
  await generation("vibration + temperature, 10 stations, default faults", { preset: "vibration", metrics: "vibration,temperature", faults: DEFAULT_FAULTS });
  await generation("environment (3 Beta metrics), 10 stations, default faults", { preset: "environment", faults: DEFAULT_FAULTS });
  await generation("environment, 1000 stations, no faults", { preset: "environment", stations: 1000 });

  const directory = mkdtempSync(join(tmpdir(), "simulator-bench-"));
  try {
    const rows = 100_000;
    const lines = ["timestamp,sensor,vibration,temperature,label"];
    for (let i = 0; i < rows; i++) {
      lines.push(`${new Date(Date.UTC(2025, 0, 1) + i * 1000).toISOString()},pump-${i % 7},${(2.5 + (i % 13) / 50).toFixed(3)},${i % 97 === 0 ? "" : (45 + (i % 11) / 10).toFixed(1)},${i % 500 === 0 ? 1 : 0}`);
    }
    const path = join(directory, "replay.csv");
    writeFileSync(path, lines.join("\n") + "\n");
    await replay("100k rows, ISO time, 2 metrics + label", path, rows);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
  if (existsSync(NAB_FILE)) await replay("NAB machine_temperature_system_failure (22,695 rows)", NAB_FILE, 22_695);
}

if (require.main === module) void main();
