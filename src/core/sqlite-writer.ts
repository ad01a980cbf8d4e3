// Batched, idempotent storage of events in SQLite (better-sqlite3): rows are queued, committed in one transaction
// per batch, and each write's callback runs only after its rows are durable (or with the error that lost them).
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import Database from "better-sqlite3";
import type { SensorEvent } from "./event";
import {
  EVENT_COLUMN_NAMES,
  STORED_AT_INDEX,
  checkTableName,
  eventRow,
  insertStatement,
  schemaStatements,
  type RowValue,
} from "./sqlite-schema";

export { EVENT_COLUMNS, EVENT_COLUMN_NAMES, anomaliesViewName, checkTableName } from "./sqlite-schema";

export interface SqliteWriterOptions {
  /** Database file; its directory is created if missing. */
  path: string;
  /** Table name, a plain SQL name. The view `<table>_anomalies` is created beside it. */
  table?: string;
  /** Queued rows that trigger a commit right away. */
  batchSize?: number;
  /** Longest time a row waits in the queue before a commit. */
  flushIntervalMs?: number;
  /** Rows with ts older than this many days are deleted at open and then every hour; 0 keeps everything. */
  retentionDays?: number;
  /** How long a commit waits for another connection's write lock before failing with SQLITE_BUSY. */
  busyTimeoutMs?: number;
  /** Told the outcome of every retention pass (at open, then hourly). */
  onRetention?: (error: Error | null, deleted: number) => void;
  /** Clock in ms, replaceable for tests of retention. */
  now?: () => number;
}

export interface WriteResult {
  /** Rows added by this write. */
  inserted: number;
  /** Events of this write whose eventId was already stored (replays), left untouched. */
  duplicates: number;
}

/** Called once per write(), after the commit that holds its rows, or with the error that made the commit fail. */
export type CommitCallback = (error: Error | null, result?: WriteResult) => void;

export interface SqliteWriterStats {
  /** Rows inserted since this writer opened. */
  stored: number;
  duplicates: number;
  /** Inserted rows with anomaly = 1. */
  anomalies: number;
  failedBatches: number;
  /** Rows queued and not yet committed. */
  pending: number;
  retentionDeleted: number;
  lastError: Error | null;
}

/** A commit that failed: every write of the batch receives it. `retriable` when the database was only busy. */
export class SqliteWriteError extends Error {
  readonly code: string | undefined;
  readonly retriable: boolean;
  readonly path: string;
  readonly rows: number;
  constructor(path: string, rows: number, cause: Error & { code?: string }) {
    super(`SQLite could not store ${rows} event${rows === 1 ? "" : "s"} in ${path}: ${cause.message}${cause.code ? ` (${cause.code})` : ""}`, { cause });
    this.name = "SqliteWriteError";
    this.code = cause.code;
    this.retriable = cause.code === "SQLITE_BUSY" || cause.code === "SQLITE_LOCKED";
    this.path = path;
    this.rows = rows;
  }
}

export function isSqliteWriteError(error: unknown): error is SqliteWriteError {
  return error instanceof SqliteWriteError;
}

const DAY_MS = 86_400_000;

/** A config value as the user typed it: strings quoted, NaN as NaN. */
const shown = (value: unknown): string => (typeof value === "string" ? JSON.stringify(value) : String(value));
const RETENTION_INTERVAL_MS = 3_600_000;

interface Waiting {
  callback: CommitCallback;
  rowCount: number;
}

function integerOption(options: SqliteWriterOptions, name: keyof SqliteWriterOptions, fallback: number, min: number, max: number): number {
  const value = options[name] ?? fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`"${name}" must be an integer from ${min} to ${max} (got ${shown(value)})`);
  }
  return value;
}

export class SqliteEventWriter {
  /** Absolute path of the database file. */
  readonly path: string;
  readonly table: string;
  readonly batchSize: number;
  readonly flushIntervalMs: number;
  readonly retentionDays: number;
  readonly busyTimeoutMs: number;
  /** "wal" unless the file system refused WAL. */
  readonly journalMode: string;

  private readonly db: Database.Database;
  private readonly commitRows: Database.Transaction<(rows: RowValue[][], inserted: Uint8Array, storedAt: number) => void>;
  private readonly deleteOlder: Database.Statement<[number]>;
  private readonly onRetention: SqliteWriterOptions["onRetention"];
  private readonly now: () => number;
  private queue: RowValue[][] = [];
  private waiting: Waiting[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  private flushImmediate: NodeJS.Immediate | undefined;
  private retentionTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly counters: Omit<SqliteWriterStats, "pending"> = {
    stored: 0,
    duplicates: 0,
    anomalies: 0,
    failedBatches: 0,
    retentionDeleted: 0,
    lastError: null,
  };

  constructor(options: SqliteWriterOptions) {
    // Validate options, each error naming the option.
    if (options === null || typeof options !== "object") throw new TypeError(`SqliteEventWriter needs an options object with "path"`);
    if (typeof options.path !== "string" || options.path.trim().length === 0) {
      throw new TypeError(`"path" must be the database file name (got ${JSON.stringify(options.path)})`);
    }
    this.table = checkTableName(options.table ?? "events");
    this.batchSize = integerOption(options, "batchSize", 500, 1, 100_000);
    this.flushIntervalMs = integerOption(options, "flushIntervalMs", 200, 0, 3_600_000);
    this.busyTimeoutMs = integerOption(options, "busyTimeoutMs", 5000, 0, 600_000);
    const retentionDays = options.retentionDays ?? 0;
    if (typeof retentionDays !== "number" || !Number.isFinite(retentionDays) || retentionDays < 0 || retentionDays > 36_500) {
      throw new RangeError(`"retentionDays" must be a number of days from 0 (keep everything) to 36500 (got ${shown(retentionDays)})`);
    }
    this.retentionDays = retentionDays;
    this.onRetention = options.onRetention;
    this.now = options.now ?? Date.now;
    const inMemory = options.path === ":memory:";
    this.path = inMemory ? options.path : resolve(options.path);

    // Open: WAL lets readers (Grafana, sqlite3 CLI) query while we write; synchronous=NORMAL is durable across a
    // process crash in WAL mode and only risks the last commits on a power cut, for ~100x more commits per second.
    let db: Database.Database;
    try {
      if (!inMemory) mkdirSync(dirname(this.path), { recursive: true });
      db = new Database(this.path, { timeout: this.busyTimeoutMs });
    } catch (error) {
      throw new Error(`cannot open SQLite database ${this.path}: ${(error as Error).message}`, { cause: error });
    }
    try {
      this.journalMode = String(db.pragma("journal_mode = WAL", { simple: true }));
      db.pragma("synchronous = NORMAL");
      const [createTable, ...indexesAndView] = schemaStatements(this.table);
      db.exec(createTable);
      this.checkColumns(db);
      for (const statement of indexesAndView) db.exec(statement);
      const insert = db.prepare<[RowValue[]]>(insertStatement(this.table));
      this.commitRows = db.transaction((rows: RowValue[][], inserted: Uint8Array, storedAt: number) => {
        for (let index = 0; index < rows.length; index++) {
          const row = rows[index];
          row[STORED_AT_INDEX] = storedAt;
          inserted[index] = insert.run(row).changes;
        }
      });
      this.deleteOlder = db.prepare<[number]>(`DELETE FROM "${this.table}" WHERE ts < ?`);
    } catch (error) {
      db.close();
      throw new Error(`cannot prepare SQLite database ${this.path}: ${(error as Error).message}`, { cause: error });
    }
    this.db = db;

    if (this.retentionDays > 0) {
      this.runRetention();
      this.retentionTimer = setInterval(() => this.runRetention(), RETENTION_INTERVAL_MS);
      this.retentionTimer.unref();
    }
  }

  /** A table of the same name from another program or an older layout would fail every insert: say so at open. */
  private checkColumns(db: Database.Database): void {
    const present = new Set((db.pragma(`table_info("${this.table}")`) as Array<{ name: string }>).map((column) => column.name));
    const missing = EVENT_COLUMN_NAMES.filter((name) => !present.has(name));
    if (missing.length > 0) {
      throw new Error(`table "${this.table}" already exists without the columns ${missing.join(", ")}; choose another "table" name or move the old table away`);
    }
  }

  get stats(): SqliteWriterStats {
    return { ...this.counters, pending: this.queue.length };
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Queues the events; `onCommitted` runs after the transaction holding them commits, never inside this call.
   * Throws a TypeError (queuing nothing) when an event lacks eventId, sensorId, timestamp or readings.
   */
  write(events: readonly SensorEvent[], onCommitted: CommitCallback): void {
    if (this.closed) {
      process.nextTick(onCommitted, new Error(`the SQLite writer for ${this.path} is closed`));
      return;
    }
    if (events.length === 0) {
      process.nextTick(onCommitted, null, { inserted: 0, duplicates: 0 });
      return;
    }
    // Build every row before queuing any, so a bad event leaves the queue as it was.
    const rows: RowValue[][] = new Array(events.length);
    for (let index = 0; index < events.length; index++) {
      try {
        rows[index] = eventRow(events[index]);
      } catch (error) {
        throw new TypeError(`event [${index}]: ${(error as Error).message}`, { cause: error });
      }
    }
    const queue = this.queue;
    for (let index = 0; index < rows.length; index++) queue.push(rows[index]);
    this.waiting.push({ callback: onCommitted, rowCount: rows.length });

    if (queue.length >= this.batchSize) {
      // Commit right after the current handler returns, before the interval timer.
      this.flushImmediate ??= setImmediate(() => this.flush());
    } else if (this.flushTimer === undefined) {
      this.flushTimer = setTimeout(() => this.flush(), this.flushIntervalMs);
    }
  }

  /**
   * Commits every queued row now, in one transaction, then calls the callbacks of that batch (with the error if the
   * commit failed: the rows are not stored and the callers are told). The writer stays usable either way.
   */
  flush(): void {
    this.cancelScheduledFlush();
    if (this.queue.length === 0) return;
    const rows = this.queue;
    const waiting = this.waiting;
    // Swap first: a callback may write() again while we call them.
    this.queue = [];
    this.waiting = [];

    const inserted = new Uint8Array(rows.length);
    let failure: SqliteWriteError | null = null;
    try {
      // BEGIN IMMEDIATE takes the write lock up front, so a busy database waits in busy_timeout instead of failing
      // half-way through the batch.
      this.commitRows.immediate(rows, inserted, this.now());
    } catch (error) {
      failure = new SqliteWriteError(this.path, rows.length, error as Error);
      this.counters.failedBatches++;
      this.counters.lastError = failure;
    }

    let callbackError: unknown;
    let offset = 0;
    for (const { callback, rowCount } of waiting) {
      let result: WriteResult | undefined;
      if (failure === null) {
        let added = 0;
        let anomalies = 0;
        for (let index = offset; index < offset + rowCount; index++) {
          if (inserted[index] === 1) {
            added++;
            if (rows[index][4] === 1) anomalies++;
          }
        }
        result = { inserted: added, duplicates: rowCount - added };
        this.counters.stored += added;
        this.counters.duplicates += rowCount - added;
        this.counters.anomalies += anomalies;
      }
      offset += rowCount;
      // One throwing callback must not keep the others from hearing about their rows.
      try {
        callback(failure, result);
      } catch (error) {
        callbackError ??= error;
      }
    }
    if (callbackError !== undefined) throw callbackError;
  }

  /** Deletes rows older than retentionDays; returns how many. 0 when retention is off. */
  deleteExpired(): number {
    if (this.retentionDays <= 0 || this.closed) return 0;
    const cutoff = this.now() - this.retentionDays * DAY_MS;
    const deleted = this.deleteOlder.run(Math.trunc(cutoff)).changes;
    this.counters.retentionDeleted += deleted;
    return deleted;
  }

  private runRetention(): void {
    let deleted = 0;
    let failure: Error | null = null;
    try {
      deleted = this.deleteExpired();
    } catch (error) {
      failure = new Error(`retention in ${this.path} failed: ${(error as Error).message}`, { cause: error });
      this.counters.lastError = failure;
    }
    this.onRetention?.(failure, deleted);
  }

  private cancelScheduledFlush(): void {
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    if (this.flushImmediate !== undefined) clearImmediate(this.flushImmediate);
    this.flushTimer = undefined;
    this.flushImmediate = undefined;
  }

  /** Commits what is queued, then closes the database. Safe to call more than once. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.retentionTimer !== undefined) clearInterval(this.retentionTimer);
    try {
      this.flush();
    } finally {
      this.db.close();
    }
  }
}
