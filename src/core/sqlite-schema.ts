// The SQLite layout of stored events: one row per event, the column list, the DDL (table, indexes, anomalies view)
// and the reference mapping from a SensorEvent to the values of one row, in column order.
import type { SensorEvent } from "./event";

/*
 * Schema, one row per event (table name from config, "events" by default):
 *
 *   event_id         TEXT NOT NULL       event.eventId
 *   sensor_id        TEXT NOT NULL       event.sensorId
 *   ts               INTEGER NOT NULL    event.timestamp, milliseconds since the Unix epoch (UTC)
 *   readings         TEXT NOT NULL       JSON object of the readings, e.g. {"vibration":2.1,"temperature":41.3}
 *   anomaly          INTEGER NOT NULL    1 if any detector flagged the event, else 0
 *   sigma_anomaly    INTEGER NULL        rolling 3-sigma verdict (1/0), NULL when that detector did not run
 *   sigma_max_abs_z  REAL NULL           largest |z| over the event's metrics, NULL while warming up
 *   sigma_z          TEXT NULL           JSON object metric -> z rounded to 4 decimals, e.g. {"vibration":6.2113};
 *                                        metrics still warming up are left out, NULL while every metric is
 *   sigma_flags      TEXT NULL           JSON list of the metrics the 3-sigma detector flagged, NULL when none
 *   iforest_score    REAL NULL           isolation forest score in (0, 1], higher is more anomalous
 *   iforest_anomaly  INTEGER NULL        isolation forest verdict (1/0)
 *   model_version    INTEGER NULL        version of the forest model that scored the event
 *   label_anomaly    INTEGER NULL        ground truth from the simulator or a labelled replay (1/0)
 *   label_kind       TEXT NULL           fault kind of the ground truth, e.g. "spike"
 *   label_metric     TEXT NULL           metric the fault was injected into, e.g. "vibration"
 *   missing          TEXT NULL           JSON list of quality.missing (metrics absent in the source)
 *   stored_at        INTEGER NOT NULL    commit time, milliseconds since the Unix epoch
 *   detectors        TEXT NULL           only with the storeDetails option: JSON of event.detectors (every
 *                                        detector's full result: means, stds, thresholds). Off by default: it makes
 *                                        rows 2.4 times larger (565 vs 238 bytes) and halves the rows/s.
 *
 * PRIMARY KEY (ts, event_id): a replayed event (same id, same time) is ignored, never stored twice. The key begins
 * with the time so that each insert lands at the end of the key's index, like the rows themselves, whatever the ids
 * look like; the same index serves time ranges, retention and dashboards. Keyed on event_id alone (the earlier
 * layout), the simulator's ids (`station-019:<ts>:<seq>`, sensor first) made every commit rewrite one page of that
 * index per sensor, and a separate (ts) index was needed besides: a throwaway better-sqlite3 script inserting these
 * rows (600 per transaction, 300k rows, each layout in its own process, 3 runs) took 7.4-7.7 µs per row keyed on
 * event_id and 5.2-5.5 keyed on (ts, event_id); without any key, 4.9-5.1. An id that comes again with another time
 * is stored as another event: a producer whose counter restarts does not lose its new events.
 *
 * A table from an older version of this layout gets its missing nullable columns added at open (ALTER TABLE ADD
 * COLUMN) and keeps its key: a table keyed on event_id alone stays so, with its (ts) index (rebuilding a large table
 * to change its key is left to its owner). A table lacking a NOT NULL column belongs to something else and is refused.
 *
 * Indexes besides the key: a partial index on ts WHERE anomaly = 1 so the anomalies stay fast to list however large
 * the table grows. Deliberately no (sensor_id, ts) index (an older layout had one): measured on the shared 2-core
 * machines (load average 2-3, medians of interleaved runs, 1000-row transactions of lean rows) it cut insert
 * throughput by 14-27% (117k -> 101k rows/s over 5 runs; 161k -> 118k in bench/sqlite-writer.bench.ts), and the
 * insert rate is what bounds the sink. What it buys is small because a sensor's rows are spread over the table's
 * pages anyway: one sensor of 20 over the last 10 min / 1 h took 1.2 / 9.4 ms through a (ts) index against 0.7 / 8.7
 * ms with the index (500k rows, 1 event/s per sensor), and 9.5 / 146 ms against 5.0 / 101 ms at 5 events/s per
 * sensor (1M rows). The gap grows with the number of sensors; with hundreds of them and long single-sensor panels,
 * add it by hand: CREATE INDEX <table>_sensor_ts ON <table> (sensor_id, ts). This code never creates nor drops it,
 * so a database made by that layout keeps it (and its cost).
 * View <table>_anomalies: the anomalous rows only, with a `time` column in Unix seconds (REAL, keeps milliseconds)
 * that Grafana's SQLite data source reads as a time column; rebuilt at open when the table's columns changed.
 */

export interface EventColumn {
  name: string;
  type: "TEXT" | "INTEGER" | "REAL";
  notNull: boolean;
  description: string;
}

/** The default row, in table order. */
export const EVENT_COLUMNS: readonly EventColumn[] = [
  { name: "event_id", type: "TEXT", notNull: true, description: "event id; with ts the primary key: replays are ignored" },
  { name: "sensor_id", type: "TEXT", notNull: true, description: "sensor id" },
  { name: "ts", type: "INTEGER", notNull: true, description: "event time, ms since the Unix epoch" },
  { name: "readings", type: "TEXT", notNull: true, description: "JSON object of the readings" },
  { name: "anomaly", type: "INTEGER", notNull: true, description: "1 if any detector flagged the event" },
  { name: "sigma_anomaly", type: "INTEGER", notNull: false, description: "rolling 3-sigma verdict (1/0)" },
  { name: "sigma_max_abs_z", type: "REAL", notNull: false, description: "largest |z| over the metrics" },
  { name: "sigma_z", type: "TEXT", notNull: false, description: "JSON object metric -> z (4 decimals)" },
  { name: "sigma_flags", type: "TEXT", notNull: false, description: "JSON list of the metrics flagged by 3-sigma" },
  { name: "iforest_score", type: "REAL", notNull: false, description: "isolation forest score, higher is more anomalous" },
  { name: "iforest_anomaly", type: "INTEGER", notNull: false, description: "isolation forest verdict (1/0)" },
  { name: "model_version", type: "INTEGER", notNull: false, description: "version of the forest model" },
  { name: "label_anomaly", type: "INTEGER", notNull: false, description: "ground truth (1/0)" },
  { name: "label_kind", type: "TEXT", notNull: false, description: "fault kind of the ground truth" },
  { name: "label_metric", type: "TEXT", notNull: false, description: "metric the fault was injected into" },
  { name: "missing", type: "TEXT", notNull: false, description: "JSON list of quality.missing" },
  { name: "stored_at", type: "INTEGER", notNull: true, description: "commit time, ms since the Unix epoch" },
];

/** Added after the default columns with the storeDetails option. */
export const DETAILS_COLUMN: EventColumn = { name: "detectors", type: "TEXT", notNull: false, description: "JSON of event.detectors (storeDetails only)" };

export const EVENT_COLUMN_NAMES: readonly string[] = EVENT_COLUMNS.map((column) => column.name);

const DETAILED_COLUMNS: readonly EventColumn[] = [...EVENT_COLUMNS, DETAILS_COLUMN];

/** The columns a writer fills: the default row, plus `detectors` with storeDetails. */
export function eventColumns(storeDetails = false): readonly EventColumn[] {
  return storeDetails ? DETAILED_COLUMNS : EVENT_COLUMNS;
}

/** Position of stored_at in a row: it is filled at commit time. The same with or without storeDetails. */
export const STORED_AT_INDEX = EVENT_COLUMN_NAMES.indexOf("stored_at");

const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * The table name comes from the node's configuration and is the only identifier ever put into SQL text, so it is
 * checked against a plain-name pattern; every value is a bound parameter.
 */
export function checkTableName(table: unknown): string {
  if (typeof table !== "string" || !TABLE_NAME.test(table)) {
    const shown = typeof table === "string" ? JSON.stringify(table.length > 70 ? `${table.slice(0, 70)}…` : table) : String(table);
    throw new Error(`"table" must be a plain SQL name: a letter or _, then letters, digits or _, at most 63 characters (got ${shown})`);
  }
  if (/^sqlite_/i.test(table)) {
    throw new Error(`"table" must not start with "sqlite_": SQLite reserves those names (got "${table}")`);
  }
  return table;
}

export const anomaliesViewName = (table: string): string => `${table}_anomalies`;

/** CREATE TABLE for a new table with the columns of `eventColumns(storeDetails)`, keyed on (ts, event_id). */
export function createTableStatement(table: string, storeDetails = false): string {
  const columns = eventColumns(storeDetails).map((column) => `  ${column.name} ${column.type}${column.notNull ? " NOT NULL" : ""}`);
  return `CREATE TABLE IF NOT EXISTS "${table}" (\n${[...columns, "  PRIMARY KEY (ts, event_id)"].join(",\n")}\n)`;
}

export type EventTableKey = "time" | "id";

/**
 * Which key a table has, from `PRAGMA table_info` (whose `pk` is a column's position in the primary key, 0 when not
 * in it): "time" for (ts, event_id), "id" for event_id alone (the earlier layout).
 */
export function eventTableKey(columns: ReadonlyArray<{ name: string; pk: number }>): EventTableKey | "other" {
  const key = columns.filter((column) => column.pk > 0).sort((a, b) => a.pk - b.pk).map((column) => column.name).join(",");
  return key === "ts,event_id" ? "time" : key === "event_id" ? "id" : "other";
}

/**
 * The indexes a table with this key gets besides the key (idempotent statements): the anomalies, and for a table
 * keyed on event_id alone a (ts) index as well, which the (ts, event_id) key makes redundant.
 */
export function eventIndexes(table: string, key: EventTableKey = "time"): Array<{ name: string; statement: string }> {
  const anomalies = { name: `${table}_anomaly_ts`, statement: `CREATE INDEX IF NOT EXISTS "${table}_anomaly_ts" ON "${table}" (ts) WHERE anomaly = 1` };
  return key === "id" ? [{ name: `${table}_ts`, statement: `CREATE INDEX IF NOT EXISTS "${table}_ts" ON "${table}" (ts)` }, anomalies] : [anomalies];
}

export const indexStatements = (table: string, key: EventTableKey = "time"): string[] => eventIndexes(table, key).map((index) => index.statement);

/**
 * The anomalies view over the columns the table actually has (`present`), `detectors` included when it exists.
 * Written exactly as SQLite keeps it in sqlite_master, so an up-to-date view is recognised and left alone.
 */
export function anomaliesViewStatement(table: string, present: ReadonlySet<string>): string {
  const viewColumns = DETAILED_COLUMNS.map((column) => column.name).filter((name) => name !== "anomaly" && present.has(name));
  return `CREATE VIEW "${anomaliesViewName(table)}" AS SELECT ts / 1000.0 AS time, ${viewColumns.join(", ")} FROM "${table}" WHERE anomaly = 1`;
}

/** DDL for a new database: table, indexes and view. `table` must have passed checkTableName. */
export function schemaStatements(table: string, storeDetails = false): string[] {
  const present = new Set(eventColumns(storeDetails).map((column) => column.name));
  return [createTableStatement(table, storeDetails), ...indexStatements(table), anomaliesViewStatement(table, present)];
}

export function insertStatement(table: string, storeDetails = false): string {
  const names = eventColumns(storeDetails).map((column) => column.name);
  const placeholders = names.map(() => "?").join(", ");
  // No conflict target: the same statement skips a replay in a table keyed on (ts, event_id) or, made by an earlier
  // version, on event_id alone. Only a key conflict is skipped; a NOT NULL violation still fails.
  return `INSERT INTO "${table}" (${names.join(", ")}) VALUES (${placeholders}) ON CONFLICT DO NOTHING`;
}

export type RowValue = string | number | null;

const flag = (value: unknown): number | null => (value === true ? 1 : value === false ? 0 : null);
const finiteOrNull = (value: unknown): number | null => (typeof value === "number" && Number.isFinite(value) ? value : null);

/** z as stored in sigma_z: 4 decimals are far below any threshold's resolution and keep the JSON short. */
export function roundZ(z: number): number {
  const rounded = Math.round(z * 10_000) / 10_000;
  return Number.isFinite(rounded) ? rounded : z;
}

/** Throws a TypeError naming the field when the event lacks what the NOT NULL columns need. */
export function checkStorableEvent(event: SensorEvent): void {
  if (event === null || typeof event !== "object") throw new TypeError(`an event must be an object`);
  const { eventId, sensorId, timestamp, readings } = event;
  if (typeof eventId !== "string" || eventId.length === 0) throw new TypeError(`"eventId" must be a non-empty string`);
  if (typeof sensorId !== "string" || sensorId.length === 0) throw new TypeError(`"sensorId" must be a non-empty string`);
  if (typeof timestamp !== "number" || !Number.isFinite(timestamp)) throw new TypeError(`"timestamp" must be a finite number of milliseconds`);
  if (readings === null || typeof readings !== "object") throw new TypeError(`"readings" must be an object`);
}

/**
 * The values of one row, in `eventColumns(storeDetails)` order, stored_at left 0 (set at commit). This is the plain
 * reference mapping; the writer ships rows to its thread in a compact form (sqlite-batch.ts) that is tested to
 * produce exactly these values. Throws a TypeError naming the field when the event cannot be stored.
 */
export function eventRow(event: SensorEvent, storeDetails = false): RowValue[] {
  checkStorableEvent(event);
  const { eventId, sensorId, timestamp, readings, detectors, label, quality } = event;

  let anomaly = 0;
  let sigmaAnomaly: number | null = null;
  let sigmaMaxAbsZ: number | null = null;
  let sigmaZ: string | null = null;
  let sigmaFlags: string | null = null;
  let forestScore: number | null = null;
  let forestAnomaly: number | null = null;
  let modelVersion: number | null = null;
  let detectorsJson: string | null = null;
  if (detectors !== null && typeof detectors === "object") {
    // Any detector, known or added later, counts towards `anomaly` when it says so.
    for (const key in detectors) {
      const result = detectors[key] as { anomaly?: unknown } | null | undefined;
      if (result !== null && typeof result === "object" && result.anomaly === true) anomaly = 1;
    }
    const sigma = detectors.rolling3Sigma;
    if (sigma !== null && typeof sigma === "object") {
      sigmaAnomaly = flag(sigma.anomaly);
      const metrics = sigma.metrics;
      if (metrics !== null && typeof metrics === "object") {
        // No prototype: a metric named "__proto__" must stay an ordinary key.
        const zByMetric: Record<string, number> = Object.create(null);
        const flagged: string[] = [];
        let anyZ = false;
        for (const metric in metrics) {
          const result = metrics[metric];
          const z = result?.z;
          if (typeof z === "number" && Number.isFinite(z)) {
            const magnitude = Math.abs(z);
            if (sigmaMaxAbsZ === null || magnitude > sigmaMaxAbsZ) sigmaMaxAbsZ = magnitude;
            zByMetric[metric] = roundZ(z);
            anyZ = true;
          }
          if (result?.flag === true) flagged.push(metric);
        }
        if (anyZ) sigmaZ = JSON.stringify(zByMetric);
        if (flagged.length > 0) sigmaFlags = JSON.stringify(flagged);
      }
    }
    const forest = detectors.isolationForest;
    if (forest !== null && typeof forest === "object") {
      forestScore = finiteOrNull(forest.score);
      forestAnomaly = flag(forest.anomaly);
      modelVersion = finiteOrNull(forest.modelVersion);
    }
    if (storeDetails) detectorsJson = JSON.stringify(detectors);
  }
  const missing = quality?.missing;
  const row: RowValue[] = [
    eventId,
    sensorId,
    Math.trunc(timestamp),
    JSON.stringify(readings),
    anomaly,
    sigmaAnomaly,
    sigmaMaxAbsZ,
    sigmaZ,
    sigmaFlags,
    forestScore,
    forestAnomaly,
    modelVersion,
    label ? flag(label.anomaly) : null,
    label && typeof label.kind === "string" ? label.kind : null,
    label && typeof label.metric === "string" ? label.metric : null,
    Array.isArray(missing) && missing.length > 0 ? JSON.stringify(missing) : null,
    0,
  ];
  if (storeDetails) row.push(detectorsJson);
  return row;
}
