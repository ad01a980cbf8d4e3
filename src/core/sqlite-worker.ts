// The SQLite thread of SqliteEventWriter: owns the connection, the prepared insert, the transactions and retention,
// so that a commit (or a wait on another program's lock, up to busy_timeout) never blocks the main thread.
// Started by sqlite-writer.ts with workerData; does nothing when imported anywhere else.
import { isMainThread, parentPort, workerData } from "node:worker_threads";
import type Database from "better-sqlite3";
import { BatchDecoder, type EncodedBatch } from "./sqlite-batch";
import { openEventDatabase } from "./sqlite-database";
import { EVENT_COLUMN_NAMES, insertStatement, type RowValue } from "./sqlite-schema";

export const WORKER_ROLE = "iot-anomaly-sqlite-writer";

export interface WorkerConfig {
  path: string;
  table: string;
  busyTimeoutMs: number;
  storeDetails: boolean;
}

/** A failure as it crosses the thread boundary: message and SQLite code (SQLITE_BUSY, SQLITE_FULL, …). */
export interface WorkerError {
  message: string;
  code?: string;
}

export type ToWorker =
  /** `storedAt`: commit time in the writer's clock (replaceable in tests), in ms. */
  | { type: "batch"; id: number; batch: EncodedBatch; clockOffsetMs: number }
  | { type: "retention"; id: number; cutoff: number }
  | { type: "close" };

export type FromWorker =
  /** `inserted[i]` is 1 when row i was added, 0 for a duplicate; `anomalies` counts added rows with anomaly = 1. */
  | { type: "committed"; id: number; inserted: Uint8Array; anomalies: number; commitSeconds: number }
  /** The batch found the database locked for longer than busy_timeout, or the disk full; it is tried again in `delayMs`. */
  | { type: "retrying"; id: number; error: WorkerError; attempt: number; delayMs: number }
  | { type: "failed"; id: number; error: WorkerError }
  | { type: "retention"; id: number; deleted: number; error?: WorkerError }
  | { type: "closed"; error?: WorkerError };

const toWorkerError = (error: unknown): WorkerError => {
  const { message, code } = error as { message?: unknown; code?: unknown };
  return { message: String(message ?? error), ...(typeof code === "string" ? { code } : {}) };
};

/** Another connection holds the lock (SQLITE_BUSY, SQLITE_LOCKED and their extended codes): waiting may help. */
export const isLockCode = (code: string | undefined): boolean => /^SQLITE_(BUSY|LOCKED)/.test(code ?? "");

/** The disk (or a quota) holding the database is full: waiting helps once space is freed (log rotation, a clean-up). */
export const isFullCode = (code: string | undefined): boolean => code === "SQLITE_FULL";

/** A failure the SQLite thread waits out, trying the batch again, rather than failing its events. */
export const isWaitableCode = (code: string | undefined): boolean => isLockCode(code) || isFullCode(code);

/** Pause before the next attempt of a batch that found the database locked or the disk full: 0.5 s, doubling, at most 5 s. */
export const retryDelayMs = (attempt: number): number => Math.min(5000, 500 * 2 ** Math.max(0, attempt - 1));

function run(config: WorkerConfig): void {
  const port = parentPort!;
  // Failing here throws out of the thread: the writer sees an "error" then "exit" and fails what was sent.
  const { db } = openEventDatabase(config);
  const insert = db.prepare<[RowValue[]]>(insertStatement(config.table, config.storeDetails));
  const deleteOlder = db.prepare<[number]>(`DELETE FROM "${config.table}" WHERE ts < ?`);
  const decoder = new BatchDecoder(config.storeDetails);
  const anomalyColumn = EVENT_COLUMN_NAMES.indexOf("anomaly");

  const commit: Database.Transaction<(batch: EncodedBatch, inserted: Uint8Array, storedAt: number) => number> = db.transaction(
    (batch: EncodedBatch, inserted: Uint8Array, storedAt: number) => {
      let anomalies = 0;
      decoder.decode(batch, storedAt, (row, index) => {
        const added = insert.run(row).changes;
        inserted[index] = added;
        if (added === 1 && row[anomalyColumn] === 1) anomalies++;
      });
      return anomalies;
    },
  );

  // Messages are handled in order from this queue. A batch that finds the database locked for longer than
  // busy_timeout (another program holds a write transaction), or the disk full, stays at its head and is tried again
  // after a pause, so a lock or a full disk costs time, not events; what arrives meanwhile waits behind it, bounded by
  // the writer's maxPendingRows. (SQLite rolls the failed transaction back, so each attempt starts clean.) Once close
  // is queued, such a batch fails instead: a redeploy must not wait for a lock or for space that may never come.
  const queue: ToWorker[] = [];
  let retryTimer: NodeJS.Timeout | null = null;
  let attempts = 0;
  let closeQueued = false;

  /** Retention and close, in their turn. */
  const handle = (message: Exclude<ToWorker, { type: "batch" }>): void => {
    switch (message.type) {
      case "retention": {
        try {
          port.postMessage({ type: "retention", id: message.id, deleted: deleteOlder.run(Math.trunc(message.cutoff)).changes } satisfies FromWorker);
        } catch (error) {
          port.postMessage({ type: "retention", id: message.id, deleted: 0, error: toWorkerError(error) } satisfies FromWorker);
        }
        break;
      }
      case "close": {
        let error: WorkerError | undefined;
        try {
          db.close(); // the last connection to close checkpoints the WAL into the main file
        } catch (closeError) {
          error = toWorkerError(closeError);
        }
        port.postMessage({ type: "closed", ...(error ? { error } : {}) } satisfies FromWorker);
        // Nothing else keeps this thread alive: it ends, and the writer sees "exit" with code 0.
        port.close();
        break;
      }
    }
  };

  /** Commits one batch; false when it found the database locked or the disk full and will be tried again. */
  const storeBatch = (message: Extract<ToWorker, { type: "batch" }>): boolean => {
    const inserted = new Uint8Array(message.batch.rows);
    let reply: FromWorker;
    try {
      // BEGIN IMMEDIATE takes the write lock up front, so a busy database waits in busy_timeout instead of
      // failing half-way through the batch.
      const started = performance.now();
      const anomalies = commit.immediate(message.batch, inserted, Date.now() + message.clockOffsetMs);
      reply = { type: "committed", id: message.id, inserted, anomalies, commitSeconds: (performance.now() - started) / 1000 };
    } catch (caught) {
      const error = toWorkerError(caught);
      if (isWaitableCode(error.code) && !closeQueued) {
        attempts++;
        const delayMs = retryDelayMs(attempts);
        port.postMessage({ type: "retrying", id: message.id, error, attempt: attempts, delayMs } satisfies FromWorker);
        retryTimer = setTimeout(() => {
          retryTimer = null;
          drain();
        }, delayMs);
        return false;
      }
      reply = { type: "failed", id: message.id, error };
    }
    attempts = 0;
    port.postMessage(reply, reply.type === "committed" ? [inserted.buffer] : []);
    return true;
  };

  const drain = (): void => {
    while (queue.length > 0 && retryTimer === null) {
      const message = queue[0];
      if (message.type === "batch" && !storeBatch(message)) return;
      queue.shift();
      if (message.type !== "batch") handle(message);
    }
  };

  port.on("message", (message: ToWorker) => {
    queue.push(message);
    if (message.type !== "close") return drain();
    closeQueued = true;
    // A batch waiting for its next attempt gets its last one now.
    if (retryTimer !== null) {
      clearTimeout(retryTimer);
      retryTimer = null;
    }
    drain();
  });
}

if (!isMainThread && parentPort !== null && (workerData as { role?: unknown } | null)?.role === WORKER_ROLE) {
  run((workerData as { config: WorkerConfig }).config);
}
