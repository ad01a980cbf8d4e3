// Rows per second through SqliteEventWriter into a real file (WAL, synchronous=NORMAL), events arriving as Node-RED
// would deliver them: one message per event loop turn, each message one event or a batch.
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SensorEvent } from "../src/core/event";
import { SqliteEventWriter } from "../src/core/sqlite-writer";
import { formatNumber, printFigure, repeat } from "./measure";

const REPETITIONS = 5;

/** Events as they leave the detectors: three readings, both detector results, 2% flagged. */
function makeEvents(count: number): SensorEvent[] {
  const events: SensorEvent[] = new Array(count);
  const start = Date.UTC(2025, 0, 1);
  for (let index = 0; index < count; index++) {
    const sensorId = `press-${index % 20}`;
    const timestamp = start + index * 50;
    const anomaly = index % 50 === 0;
    events[index] = {
      eventId: `${sensorId}:${timestamp}`,
      sensorId,
      timestamp,
      readings: { vibration: 2 + (index % 7) / 10, temperature: 40 + (index % 13) / 10, pressure: 5.1 },
      detectors: {
        rolling3Sigma: {
          anomaly,
          ready: true,
          metrics: {
            vibration: { mean: 2.3, std: 0.2, z: anomaly ? 4.2 : 0.5, flag: anomaly },
            temperature: { mean: 40.6, std: 0.4, z: 0.3, flag: false },
            pressure: { mean: 5.1, std: 0.01, z: 0, flag: false },
          },
        },
        isolationForest: { score: anomaly ? 0.71 : 0.45, anomaly, threshold: 0.62, modelVersion: 1 },
      },
    };
  }
  return events;
}

interface Run {
  rowsPerSecond: number;
  bytesPerRow: number;
}

/** Writes every event, `perMessage` per write, one write per event loop turn; timed until the last commit. */
async function writeAll(events: SensorEvent[], batchSize: number, perMessage: number): Promise<Run> {
  const directory = mkdtempSync(join(tmpdir(), "sqlite-writer-bench-"));
  const path = join(directory, "bench.db");
  const writer = new SqliteEventWriter({ path, batchSize, flushIntervalMs: 200 });
  try {
    const started = process.hrtime.bigint();
    await new Promise<void>((resolve, reject) => {
      let offset = 0;
      let outstanding = 0;
      const committed = (error: Error | null) => {
        if (error) return reject(error);
        if (--outstanding === 0 && offset >= events.length) resolve();
      };
      const deliver = () => {
        const end = Math.min(offset + perMessage, events.length);
        outstanding++;
        writer.write(perMessage === 1 ? [events[offset]] : events.slice(offset, end), committed);
        offset = end;
        if (offset < events.length) setImmediate(deliver);
        else writer.flush(); // what close() does: the tail below batchSize does not wait for the timer
      };
      deliver();
    });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (writer.stats.stored !== events.length) throw new Error(`stored ${writer.stats.stored} of ${events.length}`);
    writer.close(); // the last connection to close checkpoints the WAL into the main file
    return { rowsPerSecond: events.length / seconds, bytesPerRow: statSync(path).size / events.length };
  } finally {
    writer.close();
    rmSync(directory, { recursive: true, force: true });
  }
}

export async function main(): Promise<void> {
  const events = makeEvents(100_000);
  let bytesPerRow = 0;
  const cases: Array<[string, number, number]> = [
    ["batch 500, one event per message", 500, 1],
    ["batch 500, 100 events per message", 500, 100],
    ["batch 1000, one event per message", 1000, 1],
    ["batch 1000, 100 events per message", 1000, 100],
  ];
  for (const [title, batchSize, perMessage] of cases) {
    const figure = await repeat(`sqlite-writer: ${title}`, "rows/s", REPETITIONS, async () => {
      const run = await writeAll(events, batchSize, perMessage);
      bytesPerRow = run.bytesPerRow;
      return run.rowsPerSecond;
    });
    printFigure(figure);
  }
  console.log(`sqlite-writer: file size with detector columns and JSON   ${formatNumber(bytesPerRow)} bytes/row (after close)`);
}
