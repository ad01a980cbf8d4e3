// Rows per second through SqliteEventWriter into a real file (WAL, synchronous=NORMAL), events arriving as Node-RED
// would deliver them: one message per event loop turn, each message one event or a batch. Also the CPU the caller's
// thread spends per row (what the rest of a Node-RED flow loses), and the index trade-off behind sqlite-schema.ts.
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { SensorEvent } from "../src/core/event";
import { createTableStatement, eventRow, indexStatements, insertStatement, type RowValue } from "../src/core/sqlite-schema";
import { SqliteEventWriter } from "../src/core/sqlite-writer";
import { formatNumber, median, printFigure, repeat } from "./measure";

const REPETITIONS = 5;

const SENSORS = 20;

/** Events as they leave the detectors: three readings, both detector results, 2% flagged. */
function makeEvents(count: number): SensorEvent[] {
  const events: SensorEvent[] = new Array(count);
  for (let index = 0; index < count; index++) events[index] = makeEvent(index);
  return events;
}

/** Event `index` of a stream from SENSORS sensors, 20 events/s in all. */
function makeEvent(index: number): SensorEvent {
  const sensorId = `press-${index % SENSORS}`;
  const timestamp = Date.UTC(2025, 0, 1) + index * 50;
  const anomaly = index % 50 === 0;
  return {
    eventId: `${sensorId}:${timestamp}`,
    sensorId,
    timestamp,
    readings: { vibration: 2 + (index % 7) / 10, temperature: 40 + (index % 13) / 10, pressure: 5.1 },
    label: { anomaly, ...(anomaly ? { kind: "spike", metric: "vibration" } : {}) },
    detectors: {
      rolling3Sigma: {
        anomaly,
        ready: true,
        metrics: {
          vibration: { mean: 2.3, std: 0.2, z: anomaly ? 4.2 : 0.5123456, flag: anomaly },
          temperature: { mean: 40.6, std: 0.4, z: 0.3, flag: false },
          pressure: { mean: 5.1, std: 0.01, z: 0, flag: false },
        },
      },
      isolationForest: { score: anomaly ? 0.71 : 0.45, anomaly, threshold: 0.62, modelVersion: 1 },
    },
  };
}

/** CPU time (user + system) of this process' main thread so far, in ms; NaN where /proc is not available. */
function mainThreadCpuMs(): number {
  try {
    const fields = readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8").split(") ")[1].split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // clock ticks of 10 ms (USER_HZ = 100)
  } catch {
    return Number.NaN;
  }
}

interface Run {
  rowsPerSecond: number;
  mainCpuMicrosPerRow: number;
  bytesPerRow: number;
}

/** Writes every event, `perMessage` per write, one write per event loop turn; timed until the last commit. */
async function writeAll(events: SensorEvent[], perMessage: number, storeDetails: boolean): Promise<Run> {
  const directory = mkdtempSync(join(tmpdir(), "sqlite-writer-bench-"));
  const path = join(directory, "bench.db");
  const writer = new SqliteEventWriter({ path, batchSize: 1000, flushIntervalMs: 200, storeDetails });
  try {
    await writer.flush(); // let the thread start outside the timed part
    const cpuBefore = mainThreadCpuMs();
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
        else void writer.flush(); // what close() does: the tail below batchSize does not wait for the timer
      };
      deliver();
    });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const cpuMs = mainThreadCpuMs() - cpuBefore;
    if (writer.stats.stored !== events.length) throw new Error(`stored ${writer.stats.stored} of ${events.length}`);
    await writer.close(); // the last connection to close checkpoints the WAL into the main file
    return { rowsPerSecond: events.length / seconds, mainCpuMicrosPerRow: (cpuMs * 1000) / events.length, bytesPerRow: statSync(path).size / events.length };
  } finally {
    await writer.close();
    rmSync(directory, { recursive: true, force: true });
  }
}

/** Plain inserts of prepared rows in 1000-row transactions, with or without a (sensor_id, ts) index. */
function insertRate(rows: RowValue[][], sensorIndex: boolean): number {
  const directory = mkdtempSync(join(tmpdir(), "sqlite-index-bench-"));
  const db = new Database(join(directory, "index.db"));
  try {
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.exec(createTableStatement("events"));
    for (const statement of indexStatements("events")) db.exec(statement);
    if (sensorIndex) db.exec(`CREATE INDEX events_sensor_ts ON events (sensor_id, ts)`);
    const insert = db.prepare<[RowValue[]]>(insertStatement("events"));
    const commit = db.transaction((batch: RowValue[][]) => {
      for (const row of batch) insert.run(row);
    });
    const started = process.hrtime.bigint();
    for (let offset = 0; offset < rows.length; offset += 1000) commit.immediate(rows.slice(offset, offset + 1000));
    return rows.length / (Number(process.hrtime.bigint() - started) / 1e9);
  } finally {
    db.close();
    rmSync(directory, { recursive: true, force: true });
  }
}

/**
 * Median ms of one-sensor time-range queries (what a Grafana panel per sensor asks) over `count` events, for each
 * span: [without (sensor_id, ts), with it, rows found].
 */
function sensorQueryMs(count: number, spansMs: number[]): Array<[number, number, number]> {
  const directory = mkdtempSync(join(tmpdir(), "sqlite-query-bench-"));
  const db = new Database(join(directory, "query.db"));
  try {
    db.exec(createTableStatement("events"));
    for (const statement of indexStatements("events")) db.exec(statement);
    const insert = db.prepare<[RowValue[]]>(insertStatement("events"));
    db.transaction(() => {
      for (let index = 0; index < count; index++) insert.run(eventRow(makeEvent(index)));
    })();
    const last = makeEvent(count - 1).timestamp;
    const query = db.prepare("SELECT ts, sigma_max_abs_z FROM events WHERE sensor_id = ? AND ts > ? ORDER BY ts");
    const time = (spanMs: number): [number, number] => {
      const runs: number[] = [];
      let found = 0;
      for (let run = 0; run < 7; run++) {
        const started = process.hrtime.bigint();
        found = query.all(`press-${run % SENSORS}`, last - spanMs).length;
        runs.push(Number(process.hrtime.bigint() - started) / 1e6);
      }
      return [median(runs), found];
    };
    db.exec("ANALYZE");
    const without = spansMs.map(time);
    db.exec(`CREATE INDEX events_sensor_ts ON events (sensor_id, ts)`);
    db.exec("ANALYZE");
    const withIndex = spansMs.map(time);
    return spansMs.map((_, index) => [without[index][0], withIndex[index][0], without[index][1]]);
  } finally {
    db.close();
    rmSync(directory, { recursive: true, force: true });
  }
}

export async function main(): Promise<void> {
  const events = makeEvents(100_000);
  const cases: Array<[string, number, boolean]> = [
    ["batch 1000, one event per message", 1, false],
    ["batch 1000, 1000 events per message", 1000, false],
    ["batch 1000, 1000 per message, storeDetails", 1000, true],
  ];
  for (const [title, perMessage, storeDetails] of cases) {
    let bytesPerRow = 0;
    const cpu: number[] = [];
    const figure = await repeat(`sqlite-writer: ${title}`, "rows/s", REPETITIONS, async () => {
      const run = await writeAll(events, perMessage, storeDetails);
      bytesPerRow = run.bytesPerRow;
      cpu.push(run.mainCpuMicrosPerRow);
      return run.rowsPerSecond;
    });
    printFigure(figure);
    console.log(`sqlite-writer:   main-thread CPU ${median(cpu.slice(1)).toFixed(2)} µs/row, file ${formatNumber(bytesPerRow)} bytes/row (after close)`);
  }

  // The index decision in sqlite-schema.ts: what (sensor_id, ts) costs at insert and buys at query time.
  const rows = makeEvents(200_000).map((event) => eventRow(event));
  for (const sensorIndex of [false, true]) {
    const figure = await repeat(`sqlite-index: inserts with (ts) + anomalies${sensorIndex ? " + (sensor_id, ts)" : ""}`, "rows/s", 3, () => insertRate(rows, sensorIndex));
    printFigure(figure);
  }
  const spans = [600_000, 3_600_000];
  const queries = sensorQueryMs(500_000, spans); // 20 sensors at 1 event/s each: ~7 hours
  spans.forEach((spanMs, index) => {
    const [without, withIndex, found] = queries[index];
    console.log(
      `sqlite-index: one sensor, last ${spanMs / 60_000} min (${found} of ${found * SENSORS} rows in range): ${without.toFixed(1)} ms through (ts), ${withIndex.toFixed(1)} ms with (sensor_id, ts)`,
    );
  });
}
