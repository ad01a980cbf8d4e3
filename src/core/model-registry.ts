// Model versions in a SQLite table: every trained Isolation Forest with its parameters, training window, features,
// training-score summary and drift reference, which version is active, and the promotion history rollback walks.
// Synchronous better-sqlite3 on the caller's thread: these writes happen a few times a day, each well under a
// millisecond, so a worker thread (as the event sink has) would add more than it saves.
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import type { IsolationForestJSON, TrainingSummary } from "./isolation-forest";
import { checkTableName } from "./sqlite-schema";

/*
 * Schema (table name from config, "iot_models" by default), one row per model version:
 *
 *   detector_id       TEXT NOT NULL     whose model: the isolation-forest node's id (models are per node)
 *   version           INTEGER NOT NULL  1, 2, 3 … per detector; (detector_id, version) is the primary key
 *   created_at        INTEGER NOT NULL  training time, ms since the Unix epoch
 *   reason            TEXT NOT NULL     why it was trained: "warm-up", "train" (a control message), "drift", "imported"
 *   parameters        TEXT NOT NULL     JSON: forest options (nEstimators, maxSamples, seed, contamination) and the
 *                                       node's threshold settings
 *   feature_names     TEXT NOT NULL     JSON list of the features, in the model's column order
 *   training_rows     INTEGER NOT NULL  rows the model was trained on
 *   training_from     INTEGER NULL      event time of the oldest / newest training row (ms); NULL for number rows
 *   training_to       INTEGER NULL
 *   training_ms       REAL NULL         how long fit() took
 *   training_scores   TEXT NULL         JSON summary of the training rows' scores {n, min, mean, max, p50, p99}
 *   threshold         REAL NULL         the model's own threshold (0.5, or learnt from the contamination rate)
 *   reference_sample  TEXT NULL         JSON: one sorted sample of training values per feature, for the drift test
 *   model             TEXT NOT NULL     the serialised forest (IsolationForest.toJSON())
 *   status            TEXT NOT NULL     "active" (at most one per detector), "inactive" or "rolled-back"
 *   promoted_at       INTEGER NULL      when it last became active (ms); NULL if it never was
 *   promotion_seq     INTEGER NULL      order of promotions per detector; rollback goes to the inactive version with
 *                                       the highest one (never to a rolled-back one), so repeated rollbacks walk back
 *
 * Index <table>_active: unique on detector_id where status = 'active', so the database itself refuses two active
 * versions of one detector.
 */

export type ModelStatus = "active" | "inactive" | "rolled-back";

/** What a new version carries. */
export interface NewModelVersion {
  version: number;
  createdAt: number;
  reason: string;
  parameters: Record<string, unknown>;
  features: string[];
  trainingRows: number;
  trainingFrom: number | null;
  trainingTo: number | null;
  trainingMs: number | null;
  trainingSummary: TrainingSummary | null;
  threshold: number | null;
  referenceSample: number[][] | null;
  model: IsolationForestJSON;
}

/** A stored version, without the large columns (model, reference sample): what `list` returns. */
export interface ModelVersionInfo extends Omit<NewModelVersion, "model" | "referenceSample"> {
  detectorId: string;
  status: ModelStatus;
  promotedAt: number | null;
  promotionSeq: number | null;
}

export interface ModelVersion extends ModelVersionInfo {
  referenceSample: number[][] | null;
  model: IsolationForestJSON;
}

export interface ModelRegistryOptions {
  /** Database file (its folder is created if missing), or ":memory:". */
  path: string;
  /** Table name, a plain SQL name. Default "iot_models". */
  table?: string;
  /** How long a write waits for another connection's lock before failing with SQLITE_BUSY. Default 5000. */
  busyTimeoutMs?: number;
}

/** A failed registry operation; `retriable` when the database was only busy (locked by another connection). */
export class ModelRegistryError extends Error {
  readonly code: string | undefined;
  readonly retriable: boolean;
  constructor(message: string, options: { code?: string; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = "ModelRegistryError";
    this.code = options.code;
    this.retriable = options.code === "SQLITE_BUSY" || options.code === "SQLITE_LOCKED";
  }
}

interface Row {
  detector_id: string;
  version: number;
  created_at: number;
  reason: string;
  parameters: string;
  feature_names: string;
  training_rows: number;
  training_from: number | null;
  training_to: number | null;
  training_ms: number | null;
  training_scores: string | null;
  threshold: number | null;
  reference_sample?: string | null;
  model?: string;
  status: ModelStatus;
  promoted_at: number | null;
  promotion_seq: number | null;
}

const COLUMNS: ReadonlyArray<[name: string, type: string]> = [
  ["detector_id", "TEXT NOT NULL"],
  ["version", "INTEGER NOT NULL"],
  ["created_at", "INTEGER NOT NULL"],
  ["reason", "TEXT NOT NULL"],
  ["parameters", "TEXT NOT NULL"],
  ["feature_names", "TEXT NOT NULL"],
  ["training_rows", "INTEGER NOT NULL"],
  ["training_from", "INTEGER"],
  ["training_to", "INTEGER"],
  ["training_ms", "REAL"],
  ["training_scores", "TEXT"],
  ["threshold", "REAL"],
  ["reference_sample", "TEXT"],
  ["model", "TEXT NOT NULL"],
  ["status", "TEXT NOT NULL DEFAULT 'inactive' CHECK (status IN ('active', 'inactive', 'rolled-back'))"],
  ["promoted_at", "INTEGER"],
  ["promotion_seq", "INTEGER"],
];
const SUMMARY_COLUMNS = COLUMNS.map(([name]) => name).filter((name) => name !== "model" && name !== "reference_sample");

/** The table and its index; `table` must have passed checkModelsTableName. */
export function modelsTableStatements(table: string): string[] {
  const columns = COLUMNS.map(([name, type]) => `  ${name} ${type}`).join(",\n");
  return [
    `CREATE TABLE IF NOT EXISTS "${table}" (\n${columns},\n  PRIMARY KEY (detector_id, version)\n)`,
    `CREATE UNIQUE INDEX IF NOT EXISTS "${table}_active" ON "${table}" (detector_id) WHERE status = 'active'`,
  ];
}

/** The table name is put into SQL text, so it must be a plain name; errors name the "modelsTable" option. */
export function checkModelsTableName(table: unknown): string {
  try {
    return checkTableName(table);
  } catch (error) {
    throw new Error((error as Error).message.replace(/^"table"/, '"modelsTable"'));
  }
}

function parseJson<T>(text: string | null | undefined, what: string): T | null {
  if (text === null || text === undefined) return null;
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new ModelRegistryError(`${what} is not valid JSON (${(error as Error).message})`);
  }
}

export class ModelRegistry {
  readonly path: string;
  readonly table: string;
  readonly busyTimeoutMs: number;
  /** "wal" unless the file system refused WAL. */
  readonly journalMode: string;
  private readonly db: Database.Database;
  private readonly statements: {
    insert: Database.Statement;
    maxVersion: Database.Statement;
    maxSeq: Database.Statement;
    list: Database.Statement;
    get: Database.Statement;
    active: Database.Statement;
    latest: Database.Statement;
    deactivate: Database.Statement;
    activate: Database.Statement;
    setStatus: Database.Statement;
    previous: Database.Statement;
    prune: Database.Statement;
  };

  constructor(options: ModelRegistryOptions) {
    // Validate arguments
    if (options === null || typeof options !== "object") throw new TypeError("ModelRegistry options must be an object");
    const { path } = options;
    if (typeof path !== "string" || path.trim() === "") throw new Error(`"modelsDatabase" must be a file path (got ${JSON.stringify(path)})`);
    this.table = checkModelsTableName(options.table ?? "iot_models");
    this.busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    if (!Number.isInteger(this.busyTimeoutMs) || this.busyTimeoutMs < 0) throw new RangeError(`"busyTimeoutMs" must be a non-negative integer (got ${String(options.busyTimeoutMs)})`);
    this.path = path;

    // Open
    try {
      if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
      this.db = new Database(path, { timeout: this.busyTimeoutMs });
    } catch (error) {
      throw new ModelRegistryError(`cannot open the models database ${path} (option "modelsDatabase"): ${(error as Error).message}`, { code: (error as { code?: string }).code, cause: error });
    }
    try {
      // WAL: dashboards and the sqlite3 CLI can read the versions while a node writes one.
      this.journalMode = String(this.db.pragma("journal_mode = WAL", { simple: true }));
      this.db.pragma("synchronous = NORMAL");
      this.guard("creating the table", () => this.prepareTable());
      const t = `"${this.table}"`;
      const db = this.db;
      this.statements = {
        insert: db.prepare(
          `INSERT INTO ${t} (detector_id, version, created_at, reason, parameters, feature_names, training_rows, training_from, training_to, training_ms, training_scores, threshold, reference_sample, model, status) ` +
            `VALUES (@detectorId, @version, @createdAt, @reason, @parameters, @features, @trainingRows, @trainingFrom, @trainingTo, @trainingMs, @trainingScores, @threshold, @referenceSample, @model, 'inactive')`,
        ),
        maxVersion: db.prepare(`SELECT max(version) AS value FROM ${t} WHERE detector_id = ?`),
        maxSeq: db.prepare(`SELECT max(promotion_seq) AS value FROM ${t} WHERE detector_id = ?`),
        list: db.prepare(`SELECT ${SUMMARY_COLUMNS.join(", ")} FROM ${t} WHERE detector_id = ? ORDER BY version`),
        get: db.prepare(`SELECT * FROM ${t} WHERE detector_id = ? AND version = ?`),
        active: db.prepare(`SELECT * FROM ${t} WHERE detector_id = ? AND status = 'active'`),
        latest: db.prepare(`SELECT * FROM ${t} WHERE detector_id = ? ORDER BY version DESC LIMIT 1`),
        deactivate: db.prepare(`UPDATE ${t} SET status = 'inactive' WHERE detector_id = ? AND status = 'active'`),
        activate: db.prepare(`UPDATE ${t} SET status = 'active', promoted_at = ?, promotion_seq = ? WHERE detector_id = ? AND version = ?`),
        setStatus: db.prepare(`UPDATE ${t} SET status = ? WHERE detector_id = ? AND version = ?`),
        previous: db.prepare(
          `SELECT version FROM ${t} WHERE detector_id = ? AND status = 'inactive' AND promotion_seq IS NOT NULL ORDER BY promotion_seq DESC LIMIT 1`,
        ),
        prune: db.prepare(
          `DELETE FROM ${t} WHERE detector_id = ? AND status != 'active' AND version NOT IN ` +
            `(SELECT version FROM ${t} WHERE detector_id = ? ORDER BY (status = 'active') DESC, version DESC LIMIT ?)`,
        ),
      };
    } catch (error) {
      this.db.close();
      if (error instanceof ModelRegistryError) throw error;
      throw new ModelRegistryError(`cannot prepare the models table in ${path}: ${(error as Error).message}`, { code: (error as { code?: string }).code, cause: error });
    }
  }

  /** Highest version ever stored for the detector, 0 when none. */
  maxVersion(detectorId: string): number {
    return this.guard("reading versions", () => (this.statements.maxVersion.get(detectorId) as { value: number | null }).value ?? 0);
  }

  /** Every version of the detector, oldest first, without the model and reference columns. */
  list(detectorId: string): ModelVersionInfo[] {
    return this.guard("listing versions", () => (this.statements.list.all(detectorId) as Row[]).map((row) => this.info(row)));
  }

  get(detectorId: string, version: number): ModelVersion | undefined {
    return this.guard(`reading version ${version}`, () => this.full(this.statements.get.get(detectorId, version) as Row | undefined));
  }

  active(detectorId: string): ModelVersion | undefined {
    return this.guard("reading the active version", () => this.full(this.statements.active.get(detectorId) as Row | undefined));
  }

  latest(detectorId: string): ModelVersion | undefined {
    return this.guard("reading the latest version", () => this.full(this.statements.latest.get(detectorId) as Row | undefined));
  }

  /** Stores a new version; with `promote` it becomes the active one in the same transaction. */
  add(detectorId: string, model: NewModelVersion, promote: boolean, at = Date.now()): ModelVersionInfo {
    return this.guard(`storing version ${model.version}`, () => {
      this.db
        .transaction(() => {
          this.statements.insert.run({
            detectorId,
            version: model.version,
            createdAt: Math.trunc(model.createdAt),
            reason: model.reason,
            parameters: JSON.stringify(model.parameters),
            features: JSON.stringify(model.features),
            trainingRows: model.trainingRows,
            trainingFrom: model.trainingFrom === null ? null : Math.trunc(model.trainingFrom),
            trainingTo: model.trainingTo === null ? null : Math.trunc(model.trainingTo),
            trainingMs: model.trainingMs,
            trainingScores: model.trainingSummary ? JSON.stringify(model.trainingSummary) : null,
            threshold: model.threshold !== null && Number.isFinite(model.threshold) ? model.threshold : null,
            referenceSample: model.referenceSample ? JSON.stringify(model.referenceSample) : null,
            model: JSON.stringify(model.model),
          });
          if (promote) this.activateInTransaction(detectorId, model.version, at);
        })
        .immediate();
      return this.info(this.statements.get.get(detectorId, model.version) as Row);
    });
  }

  /** Makes `version` the active one (also a rolled-back one: an explicit load overrides the rollback). */
  promote(detectorId: string, version: number, at = Date.now()): ModelVersion {
    return this.guard(`promoting version ${version}`, () => {
      this.db
        .transaction(() => {
          if (this.statements.get.get(detectorId, version) === undefined) throw this.unknownVersion(detectorId, version);
          this.activateInTransaction(detectorId, version, at);
        })
        .immediate();
      return this.full(this.statements.get.get(detectorId, version) as Row) as ModelVersion;
    });
  }

  /**
   * Marks the active version rolled back and re-activates the version promoted before it (the inactive one with the
   * highest promotion_seq). With no active version (after a reset) it brings back the last one that was active.
   */
  rollback(detectorId: string): { from: number | null; to: ModelVersion } {
    return this.guard("rolling back", () => {
      let from: number | null = null;
      let to = 0;
      this.db
        .transaction(() => {
          const active = this.statements.active.get(detectorId) as Row | undefined;
          from = active?.version ?? null;
          if (active) this.statements.setStatus.run("rolled-back", detectorId, active.version);
          const previous = this.statements.previous.get(detectorId) as { version: number } | undefined;
          if (!previous) {
            throw new ModelRegistryError(
              active ? `rollback: version ${active.version} is the first version promoted, there is no earlier one to go back to` : `rollback: no version of this node was ever active`,
            );
          }
          to = previous.version;
          // Keep its place in the promotion order, so a second rollback goes further back, not forth.
          this.statements.setStatus.run("active", detectorId, to);
        })
        .immediate();
      return { from, to: this.full(this.statements.get.get(detectorId, to) as Row) as ModelVersion };
    });
  }

  /** Leaves the detector without an active version (a reset); a rollback afterwards brings the last one back. */
  deactivate(detectorId: string): void {
    this.guard("deactivating", () => this.statements.deactivate.run(detectorId));
  }

  /** Deletes the oldest versions beyond `keep` (never the active one); returns how many went. */
  prune(detectorId: string, keep: number): number {
    if (!Number.isInteger(keep) || keep < 1) throw new RangeError(`"keepVersions" must be a positive integer (got ${String(keep)})`);
    return this.guard("deleting old versions", () => this.statements.prune.run(detectorId, detectorId, keep).changes);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private prepareTable(): void {
    const present = new Set((this.db.pragma(`table_info("${this.table}")`) as Array<{ name: string }>).map((column) => column.name));
    if (present.size > 0) {
      const missing = COLUMNS.map(([name]) => name).filter((name) => !present.has(name));
      if (missing.length > 0) {
        throw new ModelRegistryError(`table "${this.table}" in ${this.path} exists without the columns ${missing.join(", ")}; choose another "modelsTable" name`);
      }
    }
    const statements = modelsTableStatements(this.table);
    // An up-to-date database is opened without taking the write lock.
    const indexPresent = this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?").get(`${this.table}_active`);
    if (present.size > 0 && indexPresent) return;
    this.db.transaction(() => statements.forEach((statement) => this.db.exec(statement))).immediate();
  }

  private activateInTransaction(detectorId: string, version: number, at: number): void {
    const seq = ((this.statements.maxSeq.get(detectorId) as { value: number | null }).value ?? 0) + 1;
    this.statements.deactivate.run(detectorId);
    this.statements.activate.run(Math.trunc(at), seq, detectorId, version);
  }

  private unknownVersion(detectorId: string, version: number): ModelRegistryError {
    const stored = (this.statements.list.all(detectorId) as Row[]).map((row) => row.version);
    return new ModelRegistryError(`there is no model version ${JSON.stringify(version)} for this node (stored: ${stored.length ? stored.join(", ") : "none"})`);
  }

  /** Runs one operation; SQLITE_BUSY becomes an error saying which database was locked and for how long we waited. */
  private guard<T>(operation: string, run: () => T): T {
    try {
      return run();
    } catch (error) {
      if (error instanceof ModelRegistryError) throw error;
      const code = (error as { code?: string }).code;
      if (code === "SQLITE_BUSY" || code === "SQLITE_LOCKED") {
        throw new ModelRegistryError(
          `models database ${this.path} is busy: another connection held its lock for more than ${this.busyTimeoutMs} ms while ${operation}; nothing was changed, try again`,
          { code, cause: error },
        );
      }
      throw new ModelRegistryError(`models database ${this.path}, ${operation}: ${(error as Error).message}`, { code, cause: error });
    }
  }

  private info(row: Row): ModelVersionInfo {
    const what = `version ${row.version} in table "${this.table}"`;
    return {
      detectorId: row.detector_id,
      version: row.version,
      createdAt: row.created_at,
      reason: row.reason,
      parameters: parseJson<Record<string, unknown>>(row.parameters, `${what}: parameters`) ?? {},
      features: parseJson<string[]>(row.feature_names, `${what}: feature_names`) ?? [],
      trainingRows: row.training_rows,
      trainingFrom: row.training_from,
      trainingTo: row.training_to,
      trainingMs: row.training_ms,
      trainingSummary: parseJson<TrainingSummary>(row.training_scores, `${what}: training_scores`),
      threshold: row.threshold,
      status: row.status,
      promotedAt: row.promoted_at,
      promotionSeq: row.promotion_seq,
    };
  }

  private full(row: Row | undefined): ModelVersion | undefined {
    if (!row) return undefined;
    const what = `version ${row.version} in table "${this.table}"`;
    return {
      ...this.info(row),
      referenceSample: parseJson<number[][]>(row.reference_sample, `${what}: reference_sample`),
      model: parseJson<IsolationForestJSON>(row.model, `${what}: model`) as IsolationForestJSON,
    };
  }
}
