// Batched, idempotent storage of events in SQLite (better-sqlite3) without blocking the caller's thread: rows are
// queued here in a compact form, each batch is committed in one transaction by a worker thread that owns the
// connection, and each write's callback runs only after its rows are durable (or with the error that lost them).
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { Worker } from "node:worker_threads";
import type { SensorEvent } from "./event";
import { BatchEncoder } from "./sqlite-batch";
import { openEventDatabase } from "./sqlite-database";
import { checkTableName } from "./sqlite-schema";
import { isWaitableCode, WORKER_ROLE, type FromWorker, type ToWorker, type WorkerConfig, type WorkerError } from "./sqlite-worker";

export { EVENT_COLUMNS, EVENT_COLUMN_NAMES, DETAILS_COLUMN, anomaliesViewName, checkTableName } from "./sqlite-schema";

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
  /**
   * How long one commit attempt waits for another connection's write lock. A batch that still finds the database
   * locked is tried again after a pause (0.5 s, doubling, at most 5 s) until it commits, with onRetry told each time:
   * a lock delays writes instead of losing them. A full disk (SQLITE_FULL) is waited out the same way, until space
   * is freed. Only once close() has been called does such a batch fail (SqliteWriteError, code SQLITE_BUSY or
   * SQLITE_FULL), so a redeploy never waits on a lock or for space that may never come.
   */
  busyTimeoutMs?: number;
  /**
   * Most rows queued or being committed at once. A write that would go over it fails at once with a retriable
   * SqliteWriteError (code "BACKLOG_FULL"), so a database locked for minutes, or a disk slower than the input, costs
   * errors a Catch node sees instead of memory until the process dies. A single write larger than the limit is still
   * taken when nothing is pending.
   */
  maxPendingRows?: number;
  /** Also store every detector's full result as JSON in a `detectors` column (added to the table if missing). */
  storeDetails?: boolean;
  /** Told the outcome of every retention pass (at open, then hourly). */
  onRetention?: (error: Error | null, deleted: number) => void;
  /**
   * Told when the SQLite thread died (the writes it had not confirmed already got the error): `restarted` is true
   * when a new thread took over, false when the writer gave up (every later write fails with `error`).
   */
  onWorkerExit?: (error: Error, restarted: boolean) => void;
  /** Told of every committed batch: its rows and how long its transaction took in the SQLite thread. */
  onCommit?: (rows: number, commitSeconds: number) => void;
  /** Told when a batch found the database locked or the disk full (error.code says which) and will be tried again in `delayMs` (attempt 1, 2, ...). */
  onRetry?: (error: SqliteWriteError, attempt: number, delayMs: number) => void;
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
  /** Rows queued or being committed, not yet confirmed. */
  pending: number;
  retentionDeleted: number;
  /** Times the SQLite thread died and was replaced. */
  workerRestarts: number;
  lastError: Error | null;
}

/**
 * A commit that failed: every write of the batch receives it. `retriable` when writing the same events again may
 * succeed (the database was busy or the disk full, or the writer thread died before confirming). `unconfirmed` when the outcome is
 * unknown: the thread died during the commit, so the rows may or may not be stored; writing them again is safe
 * because replays are ignored.
 */
export class SqliteWriteError extends Error {
  readonly code: string | undefined;
  readonly retriable: boolean;
  readonly unconfirmed: boolean;
  readonly path: string;
  readonly rows: number;
  constructor(path: string, rows: number, cause: Error & { code?: string }, unconfirmed = false) {
    const events = `${rows} event${rows === 1 ? "" : "s"}`;
    super(
      unconfirmed
        ? `SQLite could not confirm ${events} in ${path}: ${cause.message}; they may or may not be stored, and writing them again is safe`
        : `SQLite could not store ${events} in ${path}: ${cause.message}${cause.code ? ` (${cause.code})` : ""}`,
      { cause },
    );
    this.name = "SqliteWriteError";
    this.code = cause.code;
    this.unconfirmed = unconfirmed;
    // A lock or a full disk is what the SQLite thread waits out (isWaitableCode), so the same test says "retriable" here.
    this.retriable = unconfirmed || isWaitableCode(cause.code) || cause.code === BACKLOG_FULL;
    this.path = path;
    this.rows = rows;
  }
}

export function isSqliteWriteError(error: unknown): error is SqliteWriteError {
  return error instanceof SqliteWriteError;
}

/** Code of the error a write gets when maxPendingRows rows are already waiting for the database. */
export const BACKLOG_FULL = "BACKLOG_FULL";
/**
 * Default maxPendingRows: 20 s of input at 5k events/s, some 30-60 MB of queued rows. While another program holds
 * the write lock, the SQLite thread keeps trying the oldest batch and new batches keep arriving every flush interval.
 */
export const DEFAULT_MAX_PENDING_ROWS = 100_000;

const DAY_MS = 86_400_000;
const RETENTION_INTERVAL_MS = 3_600_000;
/** A thread that dies this often within RESTART_WINDOW_MS is not restarted again: something is wrong for good. */
const MAX_RESTARTS = 3;
const RESTART_WINDOW_MS = 60_000;

/** A config value as the user typed it: strings quoted, NaN as NaN. */
const shown = (value: unknown): string => (typeof value === "string" ? JSON.stringify(value) : String(value));

interface Waiting {
  callback: CommitCallback;
  rowCount: number;
}

interface InFlight {
  waiting: Waiting[];
  rows: number;
}

function integerOption(options: SqliteWriterOptions, name: keyof SqliteWriterOptions, fallback: number, min: number, max: number): number {
  const value = options[name] ?? fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`"${name}" must be an integer from ${min} to ${max} (got ${shown(value)})`);
  }
  return value;
}

const fromWorkerError = (error: WorkerError): Error & { code?: string } => Object.assign(new Error(error.message), error.code ? { code: error.code } : {});

/**
 * The thread's code: the compiled sqlite-worker.js beside this file (the built package), else the TypeScript source
 * run through tsx (tests and benches run the sources with tsx; a worker does not inherit a loader by itself).
 */
function workerEntry(): { file: string; execArgv?: string[] } {
  const compiled = join(__dirname, "sqlite-worker.js");
  if (existsSync(compiled)) return { file: compiled };
  const source = join(__dirname, "sqlite-worker.ts");
  if (existsSync(source)) {
    try {
      // tsx's require hook: Node 20 does not apply `--import tsx` loader hooks to a worker's own entry file.
      return { file: source, execArgv: ["--require", require.resolve("tsx/cjs")] };
    } catch {
      throw new Error(`cannot start the SQLite writer thread: ${compiled} is missing (build the package) and tsx is not installed to run ${source}`);
    }
  }
  throw new Error(`cannot start the SQLite writer thread: ${compiled} is missing`);
}

export class SqliteEventWriter {
  /** Absolute path of the database file. */
  readonly path: string;
  readonly table: string;
  readonly batchSize: number;
  readonly flushIntervalMs: number;
  readonly retentionDays: number;
  readonly busyTimeoutMs: number;
  readonly maxPendingRows: number;
  readonly storeDetails: boolean;
  /** "wal" unless the file system refused WAL. */
  readonly journalMode: string;

  private readonly onRetention: SqliteWriterOptions["onRetention"];
  private readonly onWorkerExit: SqliteWriterOptions["onWorkerExit"];
  private readonly onCommit: SqliteWriterOptions["onCommit"];
  private readonly onRetry: SqliteWriterOptions["onRetry"];
  private readonly now: () => number;
  private readonly workerConfig: WorkerConfig;
  private readonly workerStart: { file: string; execArgv?: string[] };
  private encoder: BatchEncoder;
  /** Writes whose rows are in the encoder, not yet sent. */
  private waiting: Waiting[] = [];
  private readonly inFlight = new Map<number, InFlight>();
  private inFlightRows = 0;
  private readonly retentionRequests = new Map<number, { resolve: (deleted: number) => void; reject: (error: Error) => void }>();
  private flushWaiters: Array<{ id: number; resolve: () => void }> = [];
  private nextId = 1;
  private worker: Worker | null = null;
  private workerError: Error | null = null;
  private restartTimes: number[] = [];
  /** Set when the thread cannot be kept alive: every write fails with it. */
  private broken: Error | null = null;
  private flushTimer: NodeJS.Timeout | undefined;
  private retentionTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private closing: { promise: Promise<void>; resolve: () => void; reject: (error: Error) => void; reply?: Extract<FromWorker, { type: "closed" }> } | null = null;
  private readonly counters: Omit<SqliteWriterStats, "pending"> = {
    stored: 0,
    duplicates: 0,
    anomalies: 0,
    failedBatches: 0,
    retentionDeleted: 0,
    workerRestarts: 0,
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
    this.maxPendingRows = integerOption(options, "maxPendingRows", DEFAULT_MAX_PENDING_ROWS, 1, 100_000_000);
    const retentionDays = options.retentionDays ?? 0;
    if (typeof retentionDays !== "number" || !Number.isFinite(retentionDays) || retentionDays < 0 || retentionDays > 36_500) {
      throw new RangeError(`"retentionDays" must be a number of days from 0 (keep everything) to 36500 (got ${shown(retentionDays)})`);
    }
    this.retentionDays = retentionDays;
    const storeDetails = options.storeDetails ?? false;
    if (typeof storeDetails !== "boolean") throw new TypeError(`"storeDetails" must be true or false (got ${shown(storeDetails)})`);
    this.storeDetails = storeDetails;
    this.onRetention = options.onRetention;
    this.onWorkerExit = options.onWorkerExit;
    this.onCommit = options.onCommit;
    this.onRetry = options.onRetry;
    this.now = options.now ?? Date.now;
    this.path = options.path === ":memory:" ? options.path : resolve(options.path);
    this.workerConfig = { path: this.path, table: this.table, busyTimeoutMs: this.busyTimeoutMs, storeDetails };
    this.workerStart = workerEntry();

    // Open once here, on the caller's thread, so a bad path or a foreign table of the same name is reported by the
    // constructor; this also creates or completes the schema. The thread then opens its own connection.
    const { db, journalMode } = openEventDatabase(this.workerConfig);
    db.close();
    this.journalMode = journalMode;

    this.encoder = new BatchEncoder(storeDetails);
    this.startWorker();
    if (this.retentionDays > 0) {
      this.runRetention();
      this.retentionTimer = setInterval(() => this.runRetention(), RETENTION_INTERVAL_MS);
      this.retentionTimer.unref();
    }
  }

  get stats(): SqliteWriterStats {
    return { ...this.counters, pending: this.encoder.rows + this.inFlightRows };
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
    if (this.broken !== null) {
      process.nextTick(onCommitted, this.broken);
      return;
    }
    if (events.length === 0) {
      process.nextTick(onCommitted, null, { inserted: 0, duplicates: 0 });
      return;
    }
    const pending = this.encoder.rows + this.inFlightRows;
    if (pending > 0 && pending + events.length > this.maxPendingRows) {
      const cause = Object.assign(
        new Error(`${pending} rows are already waiting for the database (limit ${this.maxPendingRows}): it is locked by another program, the disk is full, or it is slower than the input`),
        { code: BACKLOG_FULL },
      );
      const error = new SqliteWriteError(this.path, events.length, cause);
      this.counters.lastError = error;
      process.nextTick(onCommitted, error);
      return;
    }
    this.encoder.add(events);
    this.waiting.push({ callback: onCommitted, rowCount: events.length });
    if (this.encoder.rows >= this.batchSize) this.send();
    else this.flushTimer ??= setTimeout(() => this.send(), this.flushIntervalMs);
  }

  /**
   * Sends every queued row to be committed now, in one transaction. Resolves once every batch sent so far has been
   * committed or has failed (each write's callback has run by then, with the error if its commit failed); never
   * rejects. The writer stays usable either way.
   */
  flush(): Promise<void> {
    this.send();
    if (this.inFlight.size === 0) return Promise.resolve();
    const id = this.nextId - 1;
    return new Promise((resolve) => this.flushWaiters.push({ id, resolve }));
  }

  /** Deletes rows older than retentionDays (in the SQLite thread); resolves with how many. 0 when retention is off. */
  deleteExpired(): Promise<number> {
    if (this.retentionDays <= 0 || this.closed) return Promise.resolve(0);
    if (this.worker === null) return Promise.reject(this.broken ?? new Error(`the SQLite writer for ${this.path} has no thread`));
    const id = this.nextId++;
    const cutoff = this.now() - this.retentionDays * DAY_MS;
    const outcome = new Promise<number>((resolve, reject) => this.retentionRequests.set(id, { resolve, reject }));
    this.post({ type: "retention", id, cutoff });
    return outcome;
  }

  /**
   * Commits what is queued, then closes the database and ends the thread. Resolves when the thread has exited;
   * rejects if it died first (the writes it had not confirmed got the error too) or could not close the database.
   * Safe to call more than once: every call returns the same promise.
   */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing.promise;
    this.closed = true;
    if (this.retentionTimer !== undefined) clearInterval(this.retentionTimer);
    this.send();
    let settle!: { resolve: () => void; reject: (error: Error) => void };
    const promise = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    this.closing = { promise, ...settle };
    if (this.worker === null) settle.resolve();
    else this.post({ type: "close" });
    return promise;
  }

  private runRetention(): void {
    this.deleteExpired().then(
      (deleted) => this.onRetention?.(null, deleted),
      (error: Error) => this.onRetention?.(error, 0),
    );
  }

  private startWorker(): void {
    const worker = new Worker(this.workerStart.file, {
      workerData: { role: WORKER_ROLE, config: this.workerConfig },
      ...(this.workerStart.execArgv ? { execArgv: this.workerStart.execArgv } : {}),
    });
    this.worker = worker;
    this.workerError = null;
    worker.on("message", (message: FromWorker) => {
      if (worker === this.worker) this.received(message);
    });
    worker.on("error", (error: Error) => {
      if (worker === this.worker) this.workerError = error;
    });
    worker.on("exit", (code: number) => {
      if (worker === this.worker) this.exited(code);
    });
    this.updateRef();
  }

  /** The thread keeps the process alive only while it has work we wait for, so a script can end without close(). */
  private updateRef(): void {
    if (this.worker === null) return;
    if (this.inFlight.size > 0 || this.retentionRequests.size > 0 || this.closing !== null) this.worker.ref();
    else this.worker.unref();
  }

  private post(message: ToWorker): void {
    const worker = this.worker!;
    this.updateRef();
    // The numbers move to the thread without a copy; the encoder starts a new buffer.
    if (message.type === "batch") worker.postMessage(message, [message.batch.numbers.buffer]);
    else worker.postMessage(message);
  }

  /** Hands the queued rows to the thread as one batch (or fails them at once when there is no thread). */
  private send(): void {
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.encoder.rows === 0) return;
    const batch = this.encoder.take();
    const waiting = this.waiting;
    this.waiting = [];
    if (this.worker === null) {
      const error = this.broken ?? new Error(`the SQLite writer for ${this.path} has no thread`);
      process.nextTick(() => this.deliver(waiting, error, null));
      return;
    }
    const id = this.nextId++;
    this.inFlight.set(id, { waiting, rows: batch.rows });
    this.inFlightRows += batch.rows;
    const clockOffsetMs = this.now === Date.now ? 0 : this.now() - Date.now();
    this.post({ type: "batch", id, batch, clockOffsetMs });
  }

  private received(message: FromWorker): void {
    switch (message.type) {
      case "committed":
      case "failed": {
        const batch = this.inFlight.get(message.id);
        if (batch === undefined) return;
        this.inFlight.delete(message.id);
        this.inFlightRows -= batch.rows;
        this.updateRef();
        if (message.type === "committed") {
          this.counters.anomalies += message.anomalies;
          this.onCommit?.(batch.rows, message.commitSeconds);
          this.settle(message.id, () => this.deliver(batch.waiting, null, message.inserted));
        } else {
          const failure = new SqliteWriteError(this.path, batch.rows, fromWorkerError(message.error));
          this.counters.failedBatches++;
          this.counters.lastError = failure;
          this.settle(message.id, () => this.deliver(batch.waiting, failure, null));
        }
        return;
      }
      case "retrying": {
        const batch = this.inFlight.get(message.id);
        if (batch === undefined) return;
        const error = new SqliteWriteError(this.path, batch.rows, fromWorkerError(message.error));
        this.counters.lastError = error;
        this.onRetry?.(error, message.attempt, message.delayMs);
        return;
      }
      case "retention": {
        const request = this.retentionRequests.get(message.id);
        if (request === undefined) return;
        this.retentionRequests.delete(message.id);
        this.updateRef();
        if (message.error) {
          const failure = new Error(`retention in ${this.path} failed: ${message.error.message}`, { cause: fromWorkerError(message.error) });
          this.counters.lastError = failure;
          request.reject(failure);
        } else {
          this.counters.retentionDeleted += message.deleted;
          request.resolve(message.deleted);
        }
        return;
      }
      case "closed":
        if (this.closing !== null) this.closing.reply = message;
        return;
    }
  }

  /** Runs the callbacks of one batch, then resolves the flush() calls waiting for it (even if a callback throws). */
  private settle(id: number, callBack: () => void): void {
    try {
      callBack();
    } finally {
      const ready = this.flushWaiters.filter((waiter) => waiter.id <= id || this.inFlight.size === 0);
      this.flushWaiters = this.flushWaiters.filter((waiter) => !ready.includes(waiter));
      for (const waiter of ready) waiter.resolve();
    }
  }

  /** Calls each write's callback with its share of the outcome. */
  private deliver(waiting: Waiting[], failure: Error | null, inserted: Uint8Array | null): void {
    let callbackError: unknown;
    let offset = 0;
    for (const { callback, rowCount } of waiting) {
      let result: WriteResult | undefined;
      if (failure === null && inserted !== null) {
        let added = 0;
        for (let index = offset; index < offset + rowCount; index++) added += inserted[index];
        result = { inserted: added, duplicates: rowCount - added };
        this.counters.stored += added;
        this.counters.duplicates += rowCount - added;
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

  /** The thread ended: on close as asked, or it died. Nothing it had not confirmed is left without an answer. */
  private exited(code: number): void {
    this.worker = null;
    const closing = this.closing;
    const cleanClose = closing?.reply !== undefined && code === 0;
    let failure: Error | null = null;
    if (!cleanClose) {
      const reason = this.workerError?.message ?? `it exited with code ${code}`;
      failure = new Error(`the SQLite writer thread stopped (${reason})`, { cause: this.workerError ?? undefined });
      this.counters.lastError = failure;
      const batches = [...this.inFlight.values()];
      this.inFlight.clear();
      this.inFlightRows = 0;
      const requests = [...this.retentionRequests.values()];
      this.retentionRequests.clear();
      for (const request of requests) request.reject(new Error(`retention in ${this.path} failed: ${failure.message}`, { cause: failure }));
      let callbackError: unknown;
      for (const batch of batches) {
        this.counters.failedBatches++;
        try {
          this.deliver(batch.waiting, new SqliteWriteError(this.path, batch.rows, failure, true), null);
        } catch (error) {
          callbackError ??= error;
        }
      }
      if (!this.closed) this.restartOrGiveUp(failure);
      this.settle(Number.MAX_SAFE_INTEGER, () => {
        if (callbackError !== undefined) throw callbackError;
      });
    } else {
      this.settle(Number.MAX_SAFE_INTEGER, () => undefined);
    }
    if (closing !== null) {
      const closeError = closing.reply?.error;
      if (failure !== null) closing.reject(new Error(`closing the SQLite writer for ${this.path} failed: ${failure.message}`, { cause: failure }));
      else if (closeError) closing.reject(new Error(`closing the SQLite database ${this.path} failed: ${closeError.message}`));
      else closing.resolve();
    }
  }

  private restartOrGiveUp(failure: Error): void {
    const now = Date.now();
    this.restartTimes = this.restartTimes.filter((time) => now - time < RESTART_WINDOW_MS);
    if (this.restartTimes.length < MAX_RESTARTS) {
      this.restartTimes.push(now);
      this.counters.workerRestarts++;
      try {
        this.startWorker();
        this.onWorkerExit?.(failure, true);
        return;
      } catch (error) {
        failure = error as Error;
      }
    }
    this.broken = new Error(
      `the SQLite writer for ${this.path} stopped: its thread failed ${this.restartTimes.length + 1} times within a minute (last: ${failure.message}); redeploy to try again`,
      { cause: failure },
    );
    this.counters.lastError = this.broken;
    // Rows queued but not sent would wait for ever: fail them now.
    this.send();
    this.onWorkerExit?.(this.broken, false);
  }
}
