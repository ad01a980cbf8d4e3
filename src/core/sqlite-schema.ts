// The SQLite layout of stored events: one row per event, the column list, the DDL (table, indexes, anomalies view)
// and the mapping from a SensorEvent to the values of one row, in column order.
import type { SensorEvent } from "./event";

/*
 * Schema, one row per event (table name from config, "events" by default):
 *
 *   event_id         TEXT PRIMARY KEY    event.eventId; a replayed event (same id) is ignored, never stored twice
 *   sensor_id        TEXT NOT NULL       event.sensorId
 *   ts               INTEGER NOT NULL    event.timestamp, milliseconds since the Unix epoch (UTC)
 *   readings         TEXT NOT NULL       JSON object of the readings, e.g. {"vibration":2.1,"temperature":41.3}
 *   anomaly          INTEGER NOT NULL    1 if any detector flagged the event, else 0
 *   sigma_anomaly    INTEGER NULL        rolling 3-sigma verdict (1/0), NULL when that detector did not run
 *   sigma_max_abs_z  REAL NULL           largest |z| over the event's metrics, NULL while warming up
 *   iforest_score    REAL NULL           isolation forest score in (0, 1], higher is more anomalous
 *   iforest_anomaly  INTEGER NULL        isolation forest verdict (1/0)
 *   model_version    INTEGER NULL        version of the forest model that scored the event
 *   label_anomaly    INTEGER NULL        ground truth from the simulator or a labelled replay (1/0)
 *   label_kind       TEXT NULL           fault kind of the ground truth, e.g. "spike"
 *   detectors        TEXT NULL           JSON of event.detectors (every detector's full result)
 *   missing          TEXT NULL           JSON list of quality.missing (metrics absent in the source)
 *   stored_at        INTEGER NOT NULL    commit time, milliseconds since the Unix epoch
 *
 * Indexes: (sensor_id, ts) for per-sensor time ranges, (ts) for retention and dashboards, and a partial index on ts
 * WHERE anomaly = 1 so the anomalies stay fast to list however large the table grows.
 * View <table>_anomalies: the anomalous rows only, with a `time` column in Unix seconds (REAL, keeps milliseconds)
 * that Grafana's SQLite data source reads as a time column.
 */

export interface EventColumn {
  name: string;
  type: "TEXT" | "INTEGER" | "REAL";
  notNull: boolean;
  description: string;
}

export const EVENT_COLUMNS: readonly EventColumn[] = [
  { name: "event_id", type: "TEXT", notNull: true, description: "event id (primary key); replays are ignored" },
  { name: "sensor_id", type: "TEXT", notNull: true, description: "sensor id" },
  { name: "ts", type: "INTEGER", notNull: true, description: "event time, ms since the Unix epoch" },
  { name: "readings", type: "TEXT", notNull: true, description: "JSON object of the readings" },
  { name: "anomaly", type: "INTEGER", notNull: true, description: "1 if any detector flagged the event" },
  { name: "sigma_anomaly", type: "INTEGER", notNull: false, description: "rolling 3-sigma verdict (1/0)" },
  { name: "sigma_max_abs_z", type: "REAL", notNull: false, description: "largest |z| over the metrics" },
  { name: "iforest_score", type: "REAL", notNull: false, description: "isolation forest score, higher is more anomalous" },
  { name: "iforest_anomaly", type: "INTEGER", notNull: false, description: "isolation forest verdict (1/0)" },
  { name: "model_version", type: "INTEGER", notNull: false, description: "version of the forest model" },
  { name: "label_anomaly", type: "INTEGER", notNull: false, description: "ground truth (1/0)" },
  { name: "label_kind", type: "TEXT", notNull: false, description: "fault kind of the ground truth" },
  { name: "detectors", type: "TEXT", notNull: false, description: "JSON of event.detectors" },
  { name: "missing", type: "TEXT", notNull: false, description: "JSON list of quality.missing" },
  { name: "stored_at", type: "INTEGER", notNull: true, description: "commit time, ms since the Unix epoch" },
];

export const EVENT_COLUMN_NAMES: readonly string[] = EVENT_COLUMNS.map((column) => column.name);

/** Position of stored_at in a row: it is filled at commit time. */
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

/** DDL run at open; every statement is idempotent (IF NOT EXISTS). `table` must have passed checkTableName. */
export function schemaStatements(table: string): string[] {
  const columns = EVENT_COLUMNS.map((column) =>
    column.name === "event_id" ? `  event_id TEXT PRIMARY KEY` : `  ${column.name} ${column.type}${column.notNull ? " NOT NULL" : ""}`,
  ).join(",\n");
  const viewColumns = EVENT_COLUMN_NAMES.filter((name) => name !== "anomaly").join(", ");
  return [
    `CREATE TABLE IF NOT EXISTS "${table}" (\n${columns}\n)`,
    `CREATE INDEX IF NOT EXISTS "${table}_sensor_ts" ON "${table}" (sensor_id, ts)`,
    `CREATE INDEX IF NOT EXISTS "${table}_ts" ON "${table}" (ts)`,
    `CREATE INDEX IF NOT EXISTS "${table}_anomaly_ts" ON "${table}" (ts) WHERE anomaly = 1`,
    `CREATE VIEW IF NOT EXISTS "${anomaliesViewName(table)}" AS SELECT ts / 1000.0 AS time, ${viewColumns} FROM "${table}" WHERE anomaly = 1`,
  ];
}

export function insertStatement(table: string): string {
  const placeholders = EVENT_COLUMN_NAMES.map(() => "?").join(", ");
  return `INSERT INTO "${table}" (${EVENT_COLUMN_NAMES.join(", ")}) VALUES (${placeholders}) ON CONFLICT(event_id) DO NOTHING`;
}

export type RowValue = string | number | null;

const flag = (value: unknown): number | null => (value === true ? 1 : value === false ? 0 : null);
const finiteOrNull = (value: unknown): number | null => (typeof value === "number" && Number.isFinite(value) ? value : null);

/**
 * The values of one row, in EVENT_COLUMNS order, serialised now so that a later change to the event object (another
 * node holding the same message) cannot alter what gets committed. stored_at is left 0 and set at commit.
 * Throws a TypeError naming the field when the event lacks what the NOT NULL columns need.
 */
export function eventRow(event: SensorEvent): RowValue[] {
  const { eventId, sensorId, timestamp, readings, detectors, label, quality } = event;
  if (typeof eventId !== "string" || eventId.length === 0) throw new TypeError(`"eventId" must be a non-empty string`);
  if (typeof sensorId !== "string" || sensorId.length === 0) throw new TypeError(`"sensorId" must be a non-empty string`);
  if (typeof timestamp !== "number" || !Number.isFinite(timestamp)) throw new TypeError(`"timestamp" must be a finite number of milliseconds`);
  if (readings === null || typeof readings !== "object") throw new TypeError(`"readings" must be an object`);

  let anomaly = 0;
  let sigmaAnomaly: number | null = null;
  let sigmaMaxAbsZ: number | null = null;
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
        for (const metric in metrics) {
          const z = metrics[metric]?.z;
          if (typeof z === "number" && Number.isFinite(z)) {
            const magnitude = Math.abs(z);
            if (sigmaMaxAbsZ === null || magnitude > sigmaMaxAbsZ) sigmaMaxAbsZ = magnitude;
          }
        }
      }
    }
    const forest = detectors.isolationForest;
    if (forest !== null && typeof forest === "object") {
      forestScore = finiteOrNull(forest.score);
      forestAnomaly = flag(forest.anomaly);
      modelVersion = finiteOrNull(forest.modelVersion);
    }
    detectorsJson = JSON.stringify(detectors);
  }
  const missing = quality?.missing;
  return [
    eventId,
    sensorId,
    Math.trunc(timestamp),
    JSON.stringify(readings),
    anomaly,
    sigmaAnomaly,
    sigmaMaxAbsZ,
    forestScore,
    forestAnomaly,
    modelVersion,
    label ? flag(label.anomaly) : null,
    label && typeof label.kind === "string" ? label.kind : null,
    detectorsJson,
    Array.isArray(missing) && missing.length > 0 ? JSON.stringify(missing) : null,
    0,
  ];
}
