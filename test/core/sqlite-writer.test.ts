import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { SensorEvent } from "../../src/core/event";
import { BatchDecoder, BatchEncoder } from "../../src/core/sqlite-batch";
import { eventRow, type RowValue } from "../../src/core/sqlite-schema";
import { smallDiskForTest } from "../support/small-disk";
import { BACKLOG_FULL, EVENT_COLUMN_NAMES, SqliteEventWriter, isSqliteWriteError, type SqliteWriterOptions, type WriteResult } from "../../src/core/sqlite-writer";

const T0 = Date.UTC(2025, 0, 1);
const DAY = 86_400_000;

function event(index: number, extra: Partial<SensorEvent> = {}): SensorEvent {
  return { eventId: `st-1:${index}`, sensorId: "st-1", timestamp: T0 + index * 1000, readings: { vibration: index }, ...extra };
}
const events = (count: number, from = 0): SensorEvent[] => Array.from({ length: count }, (_, i) => event(from + i));

/** write() as a promise of its commit outcome. */
function write(writer: SqliteEventWriter, batch: SensorEvent[]): Promise<WriteResult> {
  return new Promise((resolve, reject) => writer.write(batch, (error, result) => (error ? reject(error) : resolve(result!))));
}
const nextTick = () => new Promise((resolve) => setImmediate(resolve));

/** The writer's thread, reached the way a crash would: from outside its API (tests only). */
const threadOf = (writer: SqliteEventWriter) => (writer as unknown as { worker: { terminate(): Promise<number> } | null }).worker;

/** A detector result as rolling-3-sigma writes it. */
const sigmaResult = (metrics: Record<string, [number | null, boolean]>, anomaly = Object.values(metrics).some(([, flag]) => flag)) => ({
  anomaly,
  ready: Object.values(metrics).every(([z]) => z !== null),
  metrics: Object.fromEntries(Object.entries(metrics).map(([metric, [z, flag]]) => [metric, { mean: z === null ? null : 1, std: z === null ? null : 0.5, z, flag }])),
});

describe("core/sqlite-writer", () => {
  let directory: string;
  let path: string;
  const writers: SqliteEventWriter[] = [];
  const connections: Database.Database[] = [];
  const writer = (options: Partial<SqliteWriterOptions> = {}) => {
    const created = new SqliteEventWriter({ path, ...options });
    writers.push(created);
    return created;
  };
  /** A second connection, like Grafana or the sqlite3 CLI would open. */
  const reader = (file = path) => {
    const db = new Database(file);
    connections.push(db);
    return db;
  };
  const count = (db: Database.Database, where = "1") => (db.prepare(`SELECT count(*) AS n FROM events WHERE ${where}`).get() as { n: number }).n;

  beforeEach(() => {
    directory = mkdtempSync(join(tmpdir(), "sqlite-writer-"));
    path = join(directory, "nested", "dir", "anomalies.db");
  });
  afterEach(async () => {
    // A writer whose thread a test killed for good rejects close(); that was the test's point, not a failure here.
    await Promise.allSettled(writers.splice(0).map((item) => item.close()));
    for (const db of connections.splice(0)) db.close();
    rmSync(directory, { recursive: true, force: true });
  });

  it("creates the directory, the table with the documented columns and indexes, and opens in WAL mode", () => {
    writer();
    const db = reader();
    assert.equal(db.pragma("journal_mode", { simple: true }), "wal");
    const columns = (db.pragma("table_info(events)") as Array<{ name: string }>).map((column) => column.name);
    assert.deepEqual(columns, [...EVENT_COLUMN_NAMES]);
    assert.ok(!columns.includes("detectors"), "the full detector JSON is not stored by default");
    const indexes = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL").all() as Array<{ name: string }>).map((row) => row.name);
    assert.deepEqual(indexes, ["events_anomaly_ts"], "the key (ts, event_id) serves time ranges: no separate (ts) index");
    const key = (db.pragma("table_info(events)") as Array<{ name: string; pk: number }>).filter((column) => column.pk > 0).sort((a, b) => a.pk - b.pk);
    assert.deepEqual(key.map((column) => column.name), ["ts", "event_id"]);
    const plan = db.prepare("EXPLAIN QUERY PLAN SELECT * FROM events WHERE ts >= ? AND ts < ?").all(0, 1) as Array<{ detail: string }>;
    assert.match(plan.map((step) => step.detail).join("; "), /USING INDEX sqlite_autoindex_events_1 \(ts>\? AND ts<\?\)/);
  });

  it("commits as soon as batchSize rows are queued, without waiting for the flush interval", async function () {
    this.timeout(5000); // the interval below is 10 minutes: only the batch size can commit in time
    const sink = writer({ batchSize: 10, flushIntervalMs: 600_000 });
    const db = reader();
    sink.write(events(9), () => undefined);
    await nextTick();
    assert.equal(sink.stats.pending, 9, "9 rows stay queued below the batch size");
    assert.equal(count(db), 0);
    const result = await write(sink, events(1, 9));
    assert.deepEqual(result, { inserted: 1, duplicates: 0 });
    assert.equal(count(db), 10);
  });

  it("commits fewer rows than batchSize once flushIntervalMs has passed", async () => {
    const sink = writer({ batchSize: 500, flushIntervalMs: 30 });
    const db = reader();
    const committed = write(sink, events(3));
    assert.equal(count(db), 0, "nothing is written inside write()");
    assert.deepEqual(await committed, { inserted: 3, duplicates: 0 });
    assert.equal(count(db), 3);
  });

  it("calls back only after the commit: another connection already sees the rows", async () => {
    const sink = writer({ batchSize: 500, flushIntervalMs: 20 });
    const db = reader();
    const seen = await new Promise<number[]>((resolve, reject) => {
      const counts: number[] = [];
      sink.write(events(4), (error) => (error ? reject(error) : counts.push(count(db))));
      sink.write(events(2, 4), (error) => (error ? reject(error) : resolve([...counts, count(db)])));
    });
    assert.deepEqual(seen, [6, 6]);
  });

  it("flush() sends the queued rows at once and resolves after their callbacks ran", async () => {
    const sink = writer({ batchSize: 500, flushIntervalMs: 600_000 });
    const results: WriteResult[] = [];
    sink.write(events(3), (error, result) => results.push(result!));
    await sink.flush();
    assert.deepEqual(results, [{ inserted: 3, duplicates: 0 }]);
    assert.equal(count(reader()), 3);
    await sink.flush(); // nothing queued: resolves at once
  });

  it("stores a replayed event once and reports it as a duplicate", async () => {
    const sink = writer({ batchSize: 5, flushIntervalMs: 10 });
    assert.deepEqual(await write(sink, events(5)), { inserted: 5, duplicates: 0 });
    assert.deepEqual(await write(sink, events(5)), { inserted: 0, duplicates: 5 });
    // The same id twice in one batch counts once too.
    assert.deepEqual(await write(sink, [event(7), event(7)]), { inserted: 1, duplicates: 1 });
    assert.equal(count(reader()), 6);
    assert.equal(sink.stats.stored, 6);
    assert.equal(sink.stats.duplicates, 6);
  });

  it("stores an id that comes again with another time as another event", async () => {
    // A producer whose counter restarts reuses ids; its new events are not replays and must not be dropped.
    const sink = writer({ batchSize: 2 });
    assert.deepEqual(await write(sink, [event(1), event(1, { timestamp: T0 + 60_000 })]), { inserted: 2, duplicates: 0 });
    assert.deepEqual(await write(sink, [event(1, { timestamp: T0 + 60_000 })]), { inserted: 0, duplicates: 1 });
    assert.equal(count(reader(), "event_id = 'st-1:1'"), 2);
  });

  const flaggedEvent = () =>
    event(1, {
      readings: { vibration: 9.5, temperature: 41, pressure: 5 },
      quality: { missing: ["humidity"] },
      label: { anomaly: true, kind: "spike", metric: "vibration" },
      detectors: {
        rolling3Sigma: sigmaResult({ vibration: [7.512345678, true], temperature: [-8.25, true], pressure: [null, false] }),
        isolationForest: { score: 0.71, anomaly: false, threshold: 0.65, modelVersion: 3 },
      },
    });

  it("fills the lean columns from event.detectors, label and quality", async () => {
    const sink = writer({ batchSize: 1 });
    await write(sink, [flaggedEvent(), event(2)]);
    const rows = reader().prepare("SELECT * FROM events ORDER BY ts").all() as Array<Record<string, unknown>>;
    const { stored_at: storedAt, ...flagged } = rows[0];
    assert.ok(typeof storedAt === "number" && Math.abs(storedAt - Date.now()) < 60_000);
    assert.deepEqual(flagged, {
      event_id: "st-1:1",
      sensor_id: "st-1",
      ts: T0 + 1000,
      readings: '{"vibration":9.5,"temperature":41,"pressure":5}',
      anomaly: 1,
      sigma_anomaly: 1,
      sigma_max_abs_z: 8.25,
      sigma_z: '{"vibration":7.5123,"temperature":-8.25}', // pressure is still warming up: left out
      sigma_flags: '["vibration","temperature"]',
      iforest_score: 0.71,
      iforest_anomaly: 0,
      model_version: 3,
      label_anomaly: 1,
      label_kind: "spike",
      label_metric: "vibration",
      missing: '["humidity"]',
    });
    const plain = rows[1];
    assert.equal(plain.anomaly, 0);
    for (const column of EVENT_COLUMN_NAMES.filter((name) => !["event_id", "sensor_id", "ts", "readings", "anomaly", "stored_at"].includes(name))) {
      assert.equal(plain[column], null, `${column} is NULL for an event no detector saw`);
    }
  });

  it("stores sigma_z and sigma_max_abs_z as NULL while every metric warms up, and no flags when none is flagged", async () => {
    const sink = writer({ batchSize: 2 });
    await write(sink, [
      event(1, { detectors: { rolling3Sigma: sigmaResult({ vibration: [null, false] }) } }),
      event(2, { detectors: { rolling3Sigma: sigmaResult({ vibration: [0.25, false] }) } }),
    ]);
    const rows = reader().prepare("SELECT sigma_anomaly, sigma_max_abs_z, sigma_z, sigma_flags FROM events ORDER BY ts").all();
    assert.deepEqual(rows, [
      { sigma_anomaly: 0, sigma_max_abs_z: null, sigma_z: null, sigma_flags: null },
      { sigma_anomaly: 0, sigma_max_abs_z: 0.25, sigma_z: '{"vibration":0.25}', sigma_flags: null },
    ]);
  });

  it("with storeDetails, adds the detectors column to an existing table and fills it with every detector's full result", async () => {
    const lean = writer({ batchSize: 1 });
    await write(lean, [event(0, { detectors: { rolling3Sigma: sigmaResult({ vibration: [1, false] }) } })]);
    await lean.close();

    const detailed = writer({ batchSize: 1, storeDetails: true });
    await write(detailed, [flaggedEvent()]);
    const db = reader();
    const rows = db.prepare("SELECT event_id, detectors, sigma_z FROM events ORDER BY ts").all() as Array<{ event_id: string; detectors: string | null; sigma_z: string }>;
    assert.equal(rows[0].detectors, null, "rows stored without storeDetails keep NULL");
    assert.deepEqual(JSON.parse(rows[1].detectors!), flaggedEvent().detectors);
    assert.equal(rows[1].sigma_z, '{"vibration":7.5123,"temperature":-8.25}', "the lean columns are filled as well");
    const viewColumns = (db.pragma("table_info(events_anomalies)") as Array<{ name: string }>).map((column) => column.name);
    assert.ok(viewColumns.includes("detectors"), "the anomalies view shows the new column");
  });

  it("completes a table from the previous layout (full detectors JSON, no sigma_z) and keeps its rows", async () => {
    const file = join(directory, "old.db");
    const old = new Database(file);
    old.exec(`CREATE TABLE events (event_id TEXT PRIMARY KEY, sensor_id TEXT NOT NULL, ts INTEGER NOT NULL, readings TEXT NOT NULL,
      anomaly INTEGER NOT NULL, sigma_anomaly INTEGER, sigma_max_abs_z REAL, iforest_score REAL, iforest_anomaly INTEGER,
      model_version INTEGER, label_anomaly INTEGER, label_kind TEXT, detectors TEXT, missing TEXT, stored_at INTEGER NOT NULL);
      CREATE VIEW events_anomalies AS SELECT ts / 1000.0 AS time, event_id, sensor_id, ts, readings, detectors FROM events WHERE anomaly = 1;
      INSERT INTO events (event_id, sensor_id, ts, readings, anomaly, detectors, stored_at) VALUES ('old:1', 'old', 1, '{"a":1}', 1, '{}', 2);`);
    old.close();
    const sink = writer({ path: file, batchSize: 1 });
    await write(sink, [flaggedEvent()]);
    const db = reader(file);
    assert.deepEqual(db.prepare("SELECT event_id, sigma_z, label_metric, detectors FROM events_anomalies ORDER BY ts").all(), [
      { event_id: "old:1", sigma_z: null, label_metric: null, detectors: "{}" },
      { event_id: "st-1:1", sigma_z: '{"vibration":7.5123,"temperature":-8.25}', label_metric: "vibration", detectors: null },
    ]);
    // It keeps its key on event_id, gets the (ts) index that key lacks, and a replay is still stored once.
    const indexes = db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL ORDER BY name").all();
    assert.deepEqual(indexes, [{ name: "events_anomaly_ts" }, { name: "events_ts" }]);
    assert.deepEqual(await write(sink, [flaggedEvent(), { ...flaggedEvent(), timestamp: T0 + 60_000 }]), { inserted: 0, duplicates: 2 });
    assert.equal(count(db), 2);
  });

  it("lists only anomalous rows in the anomalies view, with time in Unix seconds", async () => {
    const sink = writer({ batchSize: 4 });
    const forest = (anomaly: boolean) => ({ score: anomaly ? 0.8 : 0.4, anomaly, threshold: 0.6, modelVersion: 1 });
    const result = await write(sink, [
      event(1, { detectors: { rolling3Sigma: sigmaResult({ vibration: [5, true] }) } }),
      event(2, { detectors: { rolling3Sigma: sigmaResult({ vibration: [0.1, false] }), isolationForest: forest(false) } }),
      event(3, { detectors: { isolationForest: forest(true) } }),
      event(4),
    ]);
    assert.equal(result.inserted, 4);
    const anomalies = reader().prepare("SELECT event_id, time FROM events_anomalies ORDER BY ts").all();
    assert.deepEqual(anomalies, [
      { event_id: "st-1:1", time: (T0 + 1000) / 1000 },
      { event_id: "st-1:3", time: (T0 + 3000) / 1000 },
    ]);
    assert.equal(sink.stats.anomalies, 2);
  });

  it("deletes rows older than retentionDays at open, and only those", async () => {
    const now = T0 + 30 * DAY;
    const first = writer({ batchSize: 3 });
    await write(first, [event(0, { timestamp: now - 10 * DAY }), event(1, { timestamp: now - 6 * DAY }), event(2, { timestamp: now })]);
    await first.close();

    const reported = new Promise<[Error | null, number]>((resolve) => {
      const second = writer({ retentionDays: 7, now: () => now, onRetention: (error, deleted) => resolve([error, deleted]) });
      assert.equal(second.stats.retentionDeleted, 0, "retention runs in the SQLite thread, not in the constructor");
    });
    assert.deepEqual(await reported, [null, 1]);
    assert.equal(writers[1].stats.retentionDeleted, 1);
    const left = reader().prepare("SELECT event_id FROM events ORDER BY ts").all();
    assert.deepEqual(left, [{ event_id: "st-1:1" }, { event_id: "st-1:2" }]);
  });

  it("keeps every row when retentionDays is 0", async () => {
    const first = writer({ batchSize: 1 });
    await write(first, [event(0, { timestamp: 0 })]);
    await first.close();
    const second = writer({ retentionDays: 0 });
    assert.equal(await second.deleteExpired(), 0);
    assert.equal(count(reader()), 1);
  });

  it("rejects a table name that is not a plain SQL name before touching the disk", () => {
    for (const table of ["events; DROP TABLE x", "1events", 'ev"ents', "x".repeat(64), ""]) {
      assert.throws(() => writer({ table }), /"table" must be a plain SQL name/);
    }
    assert.throws(() => writer({ table: "sqlite_events" }), /"table" must not start with "sqlite_"/);
    assert.equal(existsSync(path), false);
  });

  it("names the option in errors for bad numbers and flags", () => {
    assert.throws(() => writer({ batchSize: 0 }), /"batchSize" must be an integer/);
    assert.throws(() => writer({ flushIntervalMs: 1.5 }), /"flushIntervalMs"/);
    assert.throws(() => writer({ busyTimeoutMs: -1 }), /"busyTimeoutMs"/);
    assert.throws(() => writer({ retentionDays: Number.NaN }), /"retentionDays"/);
    assert.throws(() => writer({ storeDetails: "yes" as unknown as boolean }), /"storeDetails" must be true or false/);
    assert.throws(() => writer({ path: "" }), /"path"/);
  });

  it("reports a path that cannot hold a database from the constructor, naming the option", () => {
    const file = join(directory, "a-file");
    writeFileSync(file, "not a directory");
    assert.throws(() => writer({ path: join(file, "anomalies.db") }), /cannot open SQLite database .*a-file\/anomalies\.db \(option "path"\)/);
  });

  it("uses another table name when configured, with its own anomalies view", async () => {
    const sink = writer({ table: "line_2", batchSize: 1 });
    await write(sink, [event(1, { detectors: { rolling3Sigma: { anomaly: true, ready: true, metrics: {} } } })]);
    const db = reader();
    assert.equal((db.prepare("SELECT count(*) AS n FROM line_2_anomalies").get() as { n: number }).n, 1);
  });

  it("refuses a table of the same name with another layout, naming the missing columns", () => {
    const file = join(directory, "other.db");
    const db = new Database(file);
    db.exec("CREATE TABLE events (id INTEGER PRIMARY KEY, value REAL)");
    db.close();
    assert.throws(() => writer({ path: file }), /table "events" already exists without the columns event_id, sensor_id, .*; choose another "table" name/);
  });

  it("refuses a table with the event columns but no key on the event id, where a replay would be stored twice", () => {
    const file = join(directory, "unkeyed.db");
    const db = new Database(file);
    db.exec(`CREATE TABLE events (${EVENT_COLUMN_NAMES.map((name) => `${name} ${["ts", "anomaly", "stored_at"].includes(name) ? "INTEGER" : "TEXT"}`).join(", ")})`);
    db.close();
    assert.throws(() => writer({ path: file }), /table "events" already exists with another primary key than \(ts, event_id\) or event_id; choose another "table" name/);
  });

  it("tries a batch that finds the database locked again, with growing pauses, and stores it once the lock is gone", async () => {
    const retries: Array<[number, number, string]> = [];
    const sink = writer({ batchSize: 500, flushIntervalMs: 10, busyTimeoutMs: 100, onRetry: (error, attempt, delayMs) => retries.push([attempt, delayMs, error.message]) });
    const other = reader();
    other.exec("BEGIN IMMEDIATE"); // another writer holds the lock much longer than busyTimeoutMs
    let settled = 0;
    const outcomes = Promise.all([write(sink, events(3)), write(sink, events(2, 3))].map((outcome) => outcome.finally(() => settled++)));
    while (retries.length < 2) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(settled, 0, "nothing is failed while the lock lasts");
    assert.deepEqual(retries.map(([attempt, delayMs]) => [attempt, delayMs]), [[1, 500], [2, 1000]]);
    assert.match(retries[0][2], /could not store 5 events in .*anomalies\.db: database is locked \(SQLITE_BUSY\)/);
    assert.equal(sink.stats.pending, 5);
    assert.equal(count(other), 0);

    other.exec("COMMIT");
    assert.deepEqual(await outcomes, [{ inserted: 3, duplicates: 0 }, { inserted: 2, duplicates: 0 }]);
    assert.equal(sink.stats.failedBatches, 0);
    assert.deepEqual(await write(sink, events(5, 5)), { inserted: 5, duplicates: 0 });
    assert.equal(count(other), 10);
  });

  it("waits out a full disk (a real, filled tmpfs): the batch is tried again and stored once space is freed", async function () {
    this.timeout(20_000);
    const disk = smallDiskForTest(this, 2048);
    try {
      path = join(disk.dir, "anomalies.db");
      const retries: Array<[number, string | undefined]> = [];
      const sink = writer({ batchSize: 5000, flushIntervalMs: 10, onRetry: (error, attempt) => retries.push([attempt, error.code]) });
      assert.deepEqual(await write(sink, events(5)), { inserted: 5, duplicates: 0 });
      disk.fill();
      let settled = false;
      // About 400 KB of rows: more than the write-ahead log holds already, so SQLite needs blocks the disk lacks.
      const outcome = write(sink, events(2000, 5)).finally(() => (settled = true));
      outcome.catch(() => {}); // awaited below; a failure must not also surface as an unhandled rejection
      while (retries.length < 2 && !settled) await new Promise((resolve) => setTimeout(resolve, 50));
      assert.deepEqual(retries.slice(0, 2), [[1, "SQLITE_FULL"], [2, "SQLITE_FULL"]]);
      assert.equal(settled, false, "nothing is failed while the disk is full");
      disk.free();
      assert.deepEqual(await outcome, { inserted: 2000, duplicates: 0 });
      assert.equal(sink.stats.failedBatches, 0);
      await sink.close();
      assert.equal(count(reader()), 2005, "every row stored once");
    } finally {
      for (const db of connections.splice(0)) db.close();
      await Promise.allSettled(writers.splice(0).map((item) => item.close()));
      disk.unmount();
    }
  });

  it("fails a batch still locked out when close() is called, so a redeploy does not wait for the lock", async () => {
    let retried = false;
    const sink = writer({ batchSize: 500, flushIntervalMs: 10, busyTimeoutMs: 100, onRetry: () => (retried = true) });
    const other = reader();
    other.exec("BEGIN IMMEDIATE");
    const outcome = Promise.allSettled([write(sink, events(3))]);
    while (!retried) await new Promise((resolve) => setTimeout(resolve, 20));
    const started = Date.now();
    await sink.close();
    assert.ok(Date.now() - started < 2000, "close() gave the batch one last attempt, not a retry loop");
    const [result] = await outcome;
    assert.equal(result.status, "rejected");
    const reason = (result as PromiseRejectedResult).reason;
    assert.ok(isSqliteWriteError(reason) && reason.retriable && reason.code === "SQLITE_BUSY" && !reason.unconfirmed, String(reason));
    assert.equal(sink.stats.failedBatches, 1);
    other.exec("COMMIT");
    assert.equal(count(other), 0);
  });

  it("fails writes at once, instead of queuing without end, while maxPendingRows rows wait for a locked database", async () => {
    const sink = writer({ batchSize: 5, flushIntervalMs: 10, busyTimeoutMs: 5000, maxPendingRows: 10 });
    const other = reader();
    other.exec("BEGIN IMMEDIATE"); // e.g. a SQLite browser holding a write transaction open
    const first = write(sink, events(5)); // sent, waiting for the lock
    const second = write(sink, events(5, 5)); // queued behind it: 10 rows pending, the limit
    const started = Date.now();
    const refused = await Promise.allSettled([write(sink, events(1, 10))]);
    assert.ok(Date.now() - started < 1000, "refused at once, not after the lock's busy timeout");
    const reason = (refused[0] as PromiseRejectedResult).reason;
    assert.ok(isSqliteWriteError(reason) && reason.code === BACKLOG_FULL && reason.retriable && !reason.unconfirmed, String(reason));
    assert.match(reason.message, /could not store 1 event in .*anomalies\.db: 10 rows are already waiting for the database \(limit 10\)/);
    assert.equal(sink.stats.pending, 10);
    assert.equal(sink.stats.lastError, reason);

    // The lock goes away: what was queued is stored, and the writer takes new rows again.
    other.exec("COMMIT");
    assert.deepEqual(await first, { inserted: 5, duplicates: 0 });
    assert.deepEqual(await second, { inserted: 5, duplicates: 0 });
    assert.deepEqual(await write(sink, events(1, 10)), { inserted: 1, duplicates: 0 });
    // One write larger than the limit is still taken when nothing else is pending.
    assert.deepEqual(await write(sink, events(25, 11)), { inserted: 25, duplicates: 0 });
    assert.equal(count(other), 36);
  });

  it("refuses a maxPendingRows that is not a positive integer", () => {
    assert.throws(() => writer({ maxPendingRows: 0 }), /"maxPendingRows" must be an integer from 1 to 100000000 \(got 0\)/);
    assert.throws(() => writer({ maxPendingRows: "lots" as unknown as number }), /"maxPendingRows" must be an integer .*\(got "lots"\)/);
  });

  it("keeps the caller's thread running while a commit waits for another program's lock", async () => {
    const sink = writer({ batchSize: 1, busyTimeoutMs: 1500 });
    const other = reader();
    other.exec("BEGIN IMMEDIATE");
    let ticksWhileWaiting = 0;
    const ticker = setInterval(() => {
      if (sink.stats.pending > 0) ticksWhileWaiting++;
    }, 10);
    const outcome = write(sink, events(1));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    other.exec("COMMIT");
    assert.deepEqual(await outcome, { inserted: 1, duplicates: 0 });
    clearInterval(ticker);
    // 1.5 s of waiting is ~150 ticks of 10 ms; a commit on this thread would have allowed none.
    assert.ok(ticksWhileWaiting >= 50, `only ${ticksWhileWaiting} timer ticks ran while the commit waited`);
  });

  it("fails every unconfirmed write when the SQLite thread dies, restarts it, and stores the next writes", async () => {
    const exits: Array<[string, boolean]> = [];
    const sink = writer({ batchSize: 500, flushIntervalMs: 600_000, busyTimeoutMs: 60_000, onWorkerExit: (error, restarted) => exits.push([error.message, restarted]) });
    const other = reader();
    other.exec("BEGIN IMMEDIATE"); // keeps the batch from committing before the thread is killed
    const outcomes = Promise.allSettled([write(sink, events(3)), write(sink, events(2, 3))]);
    void sink.flush();
    void threadOf(sink)!.terminate();
    other.exec("COMMIT");
    for (const outcome of await outcomes) {
      assert.equal(outcome.status, "rejected");
      const reason = (outcome as PromiseRejectedResult).reason;
      assert.ok(isSqliteWriteError(reason) && reason.unconfirmed && reason.retriable);
      assert.match(reason.message, /could not confirm 5 events .*writer thread stopped.*may or may not be stored, and writing them again is safe/);
    }
    assert.deepEqual(exits, [[exits[0][0], true]]);
    assert.match(exits[0][0], /writer thread stopped/);
    assert.equal(sink.stats.workerRestarts, 1);
    assert.equal(sink.stats.pending, 0);

    // Writing the same events again is safe whatever the dead thread managed to commit.
    const writing = write(sink, events(5));
    void sink.flush();
    const again = await writing;
    assert.equal(again.inserted + again.duplicates, 5);
    assert.equal(count(other), 5);
  });

  it("gives up after the thread died four times within a minute, and fails every later write with the reason", async () => {
    const exits: boolean[] = [];
    let exited: () => void = () => undefined;
    const sink = writer({ onWorkerExit: (_error, restarted) => (exits.push(restarted), exited()) });
    for (let death = 0; death < 4; death++) {
      const seen = new Promise<void>((resolve) => (exited = resolve));
      void threadOf(sink)!.terminate();
      await seen;
    }
    assert.deepEqual(exits, [true, true, true, false]);
    assert.equal(threadOf(sink), null);
    await assert.rejects(write(sink, events(1)), /stopped: its thread failed 4 times within a minute .*redeploy to try again/);
    await sink.close(); // nothing left to close: resolves
  });

  it("flushes queued rows on close, then refuses writes", async () => {
    const sink = writer({ batchSize: 500, flushIntervalMs: 600_000 });
    const results: Array<WriteResult | undefined> = [];
    sink.write(events(7), (error, result) => {
      assert.equal(error, null);
      results.push(result);
    });
    const closing = sink.close();
    assert.equal(sink.close(), closing, "a second close() returns the same promise");
    await closing;
    assert.deepEqual(results, [{ inserted: 7, duplicates: 0 }]);
    assert.equal(count(reader()), 7);
    await assert.rejects(write(sink, events(1, 100)), /closed/);
  });

  it("throws on an event without the fields the table needs, queuing nothing of that write", () => {
    const sink = writer();
    const broken = { ...event(1), sensorId: undefined } as unknown as SensorEvent;
    assert.throws(() => sink.write([event(0), broken], () => undefined), /event \[1\]: "sensorId"/);
    assert.equal(sink.stats.pending, 0);
  });
});

describe("core/sqlite-batch: the compact form sent to the SQLite thread", () => {
  const STORED_AT = 1_700_000_000_123;
  /** What the thread would insert, as copies of the reused row. */
  function roundTrip(input: SensorEvent[], storeDetails: boolean): RowValue[][] {
    const encoder = new BatchEncoder(storeDetails, 8); // tiny buffer: growing is exercised too
    encoder.add(input);
    const rows: RowValue[][] = [];
    new BatchDecoder(storeDetails).decode(encoder.take(), STORED_AT, (row) => rows.push([...row]));
    return rows;
  }
  const expected = (input: SensorEvent[], storeDetails: boolean) =>
    input.map((item) => {
      const row = eventRow(item, storeDetails);
      row[EVENT_COLUMN_NAMES.indexOf("stored_at")] = STORED_AT;
      return row;
    });

  const tricky: SensorEvent[] = [
    event(1, {
      eventId: "custom id ✓",
      timestamp: T0 + 0.75,
      readings: { 'quo"te': 1.5, "back\\slash": -0, "ünï\u2028": 1e21, ["__proto__"]: 3, "2": 4, "": 5 } as Record<string, number>,
      detectors: {
        rolling3Sigma: {
          anomaly: true,
          ready: false,
          metrics: {
            'quo"te': { mean: 1, std: 1, z: 1e308, flag: true },
            "back\\slash": { mean: 1, std: 1, z: -0.00001, flag: false },
            "2": { mean: null, std: null, z: null, flag: false },
            nan: { mean: 1, std: 0, z: Number.NaN, flag: false },
          },
        },
        isolationForest: { score: null, anomaly: false, threshold: null, modelVersion: null },
        custom: { anomaly: true },
      },
      label: { anomaly: false },
      quality: { missing: ["x", 'y"'] },
    }),
    event(2, { detectors: { rolling3Sigma: { anomaly: "maybe", ready: true, metrics: null } } as unknown as SensorEvent["detectors"] }),
    event(3, { readings: { vibration: "n/a", ok: 1 } as unknown as Record<string, number>, label: { anomaly: true, kind: 7, metric: "ok" } as unknown as SensorEvent["label"] }),
    event(4, { readings: [1, 2] as unknown as Record<string, number>, detectors: null as unknown as SensorEvent["detectors"] }),
    event(5, { readings: { a: Number.POSITIVE_INFINITY } }),
    event(6, { readings: {}, detectors: { isolationForest: { score: 0.9, anomaly: true, threshold: 0.5, modelVersion: 2 } } }),
  ];

  for (const storeDetails of [false, true]) {
    it(`rebuilds exactly the reference row of every event (storeDetails ${storeDetails})`, () => {
      const input = [...tricky, ...events(200, 100)];
      assert.deepEqual(roundTrip(input, storeDetails), expected(input, storeDetails));
    });
  }

  it("writes valid JSON for names that need escaping", () => {
    const [row] = roundTrip([tricky[0]], false);
    const column = (name: string) => row[EVENT_COLUMN_NAMES.indexOf(name)] as string;
    assert.deepEqual(Object.keys(JSON.parse(column("readings"))), ["2", 'quo"te', "back\\slash", "ünï\u2028", "__proto__", ""]);
    assert.deepEqual(JSON.parse(column("sigma_z")), { 'quo"te': 1e308, "back\\slash": 0 });
    assert.deepEqual(JSON.parse(column("sigma_flags")), ['quo"te']);
  });

  it("keeps the batch as it was when an event of a write is refused", () => {
    const encoder = new BatchEncoder();
    encoder.add(events(2));
    assert.throws(() => encoder.add([event(5), { ...event(6), timestamp: Number.NaN }]), /event \[1\]: "timestamp"/);
    encoder.add(events(1, 9));
    const ids: unknown[] = [];
    new BatchDecoder().decode(encoder.take(), 0, (row) => ids.push(row[0]));
    assert.deepEqual(ids, ["st-1:0", "st-1:1", "st-1:9"]);
  });
});
