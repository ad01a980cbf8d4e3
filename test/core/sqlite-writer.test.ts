import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { SensorEvent } from "../../src/core/event";
import { EVENT_COLUMN_NAMES, SqliteEventWriter, isSqliteWriteError, type WriteResult } from "../../src/core/sqlite-writer";

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

describe("core/sqlite-writer", () => {
  let directory: string;
  let path: string;
  const open: Array<{ close(): unknown }> = [];
  const writer = (options: Partial<ConstructorParameters<typeof SqliteEventWriter>[0]> = {}) => {
    const created = new SqliteEventWriter({ path, ...options });
    open.push(created);
    return created;
  };
  /** A second connection, like Grafana or the sqlite3 CLI would open. */
  const reader = () => {
    const db = new Database(path);
    open.push(db);
    return db;
  };
  const count = (db: Database.Database, where = "1") => (db.prepare(`SELECT count(*) AS n FROM events WHERE ${where}`).get() as { n: number }).n;

  beforeEach(() => {
    directory = mkdtempSync(join(tmpdir(), "sqlite-writer-"));
    path = join(directory, "nested", "dir", "anomalies.db");
  });
  afterEach(() => {
    for (const item of open.splice(0)) item.close();
    rmSync(directory, { recursive: true, force: true });
  });

  it("creates the directory, the table with the documented columns, and opens in WAL mode", () => {
    writer();
    const db = reader();
    assert.equal(db.pragma("journal_mode", { simple: true }), "wal");
    const columns = (db.pragma("table_info(events)") as Array<{ name: string }>).map((column) => column.name);
    assert.deepEqual(columns, [...EVENT_COLUMN_NAMES]);
    const indexes = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL").all() as Array<{ name: string }>).map((row) => row.name);
    assert.deepEqual(indexes.sort(), ["events_anomaly_ts", "events_sensor_ts", "events_ts"]);
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

  it("fills the detector columns from event.detectors, label and quality", async () => {
    const sink = writer({ batchSize: 1 });
    await write(sink, [
      event(1, {
        readings: { vibration: 9.5, temperature: 41 },
        quality: { missing: ["pressure"] },
        label: { anomaly: true, kind: "spike", metric: "vibration" },
        detectors: {
          rolling3Sigma: {
            anomaly: true,
            ready: true,
            metrics: {
              vibration: { mean: 2, std: 1, z: 7.5, flag: true },
              temperature: { mean: 41, std: 0.5, z: -8.25, flag: true },
              pressure: { mean: null, std: null, z: null, flag: false },
            },
          },
          isolationForest: { score: 0.71, anomaly: false, threshold: 0.65, modelVersion: 3 },
        },
      }),
      event(2),
    ]);
    const rows = reader().prepare("SELECT * FROM events ORDER BY ts").all() as Array<Record<string, unknown>>;
    const { stored_at: storedAt, detectors, ...flagged } = rows[0];
    assert.ok(typeof storedAt === "number" && Math.abs(storedAt - Date.now()) < 60_000);
    assert.deepEqual(flagged, {
      event_id: "st-1:1",
      sensor_id: "st-1",
      ts: T0 + 1000,
      readings: '{"vibration":9.5,"temperature":41}',
      anomaly: 1,
      sigma_anomaly: 1,
      sigma_max_abs_z: 8.25,
      iforest_score: 0.71,
      iforest_anomaly: 0,
      model_version: 3,
      label_anomaly: 1,
      label_kind: "spike",
      missing: '["pressure"]',
    });
    assert.equal(JSON.parse(detectors as string).isolationForest.modelVersion, 3);
    const plain = rows[1];
    assert.equal(plain.anomaly, 0);
    for (const column of ["sigma_anomaly", "sigma_max_abs_z", "iforest_score", "iforest_anomaly", "model_version", "label_anomaly", "label_kind", "detectors", "missing"]) {
      assert.equal(plain[column], null, `${column} is NULL for an event no detector saw`);
    }
  });

  it("lists only anomalous rows in the anomalies view, with time in Unix seconds", async () => {
    const sink = writer({ batchSize: 4 });
    const sigma = (anomaly: boolean) => ({ anomaly, ready: true, metrics: { vibration: { mean: 0, std: 1, z: anomaly ? 5 : 0.1, flag: anomaly } } });
    const forest = (anomaly: boolean) => ({ score: anomaly ? 0.8 : 0.4, anomaly, threshold: 0.6, modelVersion: 1 });
    const result = await write(sink, [
      event(1, { detectors: { rolling3Sigma: sigma(true) } }),
      event(2, { detectors: { rolling3Sigma: sigma(false), isolationForest: forest(false) } }),
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
    first.close();

    const reports: Array<[Error | null, number]> = [];
    const second = writer({ retentionDays: 7, now: () => now, onRetention: (error, deleted) => reports.push([error, deleted]) });
    assert.deepEqual(reports, [[null, 1]]);
    assert.equal(second.stats.retentionDeleted, 1);
    const left = reader().prepare("SELECT event_id FROM events ORDER BY ts").all();
    assert.deepEqual(left, [{ event_id: "st-1:1" }, { event_id: "st-1:2" }]);
  });

  it("keeps every row when retentionDays is 0", async () => {
    const first = writer({ batchSize: 1 });
    await write(first, [event(0, { timestamp: 0 })]);
    first.close();
    const second = writer({ retentionDays: 0 });
    assert.equal(second.deleteExpired(), 0);
    assert.equal(count(reader()), 1);
  });

  it("rejects a table name that is not a plain SQL name before touching the disk", () => {
    for (const table of ["events; DROP TABLE x", "1events", 'ev"ents', "x".repeat(64), ""]) {
      assert.throws(() => writer({ table }), /"table" must be a plain SQL name/);
    }
    assert.throws(() => writer({ table: "sqlite_events" }), /"table" must not start with "sqlite_"/);
    assert.equal(existsSync(path), false);
  });

  it("names the option in errors for bad numbers", () => {
    assert.throws(() => writer({ batchSize: 0 }), /"batchSize" must be an integer/);
    assert.throws(() => writer({ flushIntervalMs: 1.5 }), /"flushIntervalMs"/);
    assert.throws(() => writer({ busyTimeoutMs: -1 }), /"busyTimeoutMs"/);
    assert.throws(() => writer({ retentionDays: Number.NaN }), /"retentionDays"/);
    assert.throws(() => writer({ path: "" }), /"path"/);
  });

  it("uses another table name when configured, with its own anomalies view", async () => {
    const sink = writer({ table: "line_2", batchSize: 1 });
    await write(sink, [event(1, { detectors: { rolling3Sigma: { anomaly: true, ready: true, metrics: {} } } })]);
    const db = reader();
    assert.equal((db.prepare("SELECT count(*) AS n FROM line_2_anomalies").get() as { n: number }).n, 1);
  });

  it("refuses a table of the same name with another layout, naming the missing columns", () => {
    const db = new Database(path.replace("nested/dir/", ""));
    db.exec("CREATE TABLE events (id INTEGER PRIMARY KEY, value REAL)");
    db.close();
    assert.throws(() => writer({ path: path.replace("nested/dir/", "") }), /table "events" already exists without the columns event_id, sensor_id/);
  });

  it("reports a locked database to every write of the batch, then stores the next batch once the lock is gone", async () => {
    const sink = writer({ batchSize: 500, flushIntervalMs: 10, busyTimeoutMs: 100 });
    const other = reader();
    other.exec("BEGIN IMMEDIATE"); // another writer holds the lock longer than busyTimeoutMs
    const outcomes = await Promise.allSettled([write(sink, events(3)), write(sink, events(2, 3))]);
    other.exec("COMMIT");
    for (const outcome of outcomes) {
      assert.equal(outcome.status, "rejected");
      const reason = (outcome as PromiseRejectedResult).reason;
      assert.match(reason.message, /database is locked|busy/i);
      assert.ok(isSqliteWriteError(reason) && reason.retriable && reason.code === "SQLITE_BUSY");
    }
    assert.equal(sink.stats.failedBatches, 1);
    assert.equal(count(other), 0);

    assert.deepEqual(await write(sink, events(5)), { inserted: 5, duplicates: 0 });
    assert.equal(count(other), 5);
  });

  it("flushes queued rows on close, then refuses writes", async () => {
    const sink = writer({ batchSize: 500, flushIntervalMs: 600_000 });
    const results: Array<WriteResult | undefined> = [];
    sink.write(events(7), (error, result) => {
      assert.equal(error, null);
      results.push(result);
    });
    sink.close();
    sink.close(); // idempotent
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
