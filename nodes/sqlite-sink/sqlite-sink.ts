// Node-RED glue for the SQLite sink: config -> SqliteEventWriter (commits in its own thread), each message's events
// -> one write whose commit completes the message (done() means the rows are durable), counts on the status, and on
// redeploy a close that waits for the queued rows to be committed and the thread to exit.
import { isAbsolute, resolve } from "node:path";
import type { Node, NodeAPI, NodeDef, NodeMessage } from "node-red";
import { DEFAULT_MAX_PENDING_ROWS, SqliteEventWriter, type WriteResult } from "../../src/core/sqlite-writer";
import { isFullCode } from "../../src/core/sqlite-worker";
import { readEventMessage, reportInvalidInput, withEvents } from "../../src/runtime/event-message";
import { NodeMetrics, recordSqliteCommit, serveMetrics } from "../../src/runtime/metrics";
import { compactCount, failed, idle, running, shorten, warming } from "../../src/runtime/status";

interface SqliteSinkNodeDef extends NodeDef {
  /** Database file; relative to the Node-RED user directory. */
  path?: string;
  table?: string;
  batchSize?: number | string;
  /** Milliseconds a row may wait before a commit. */
  flushInterval?: number | string;
  /** 0 keeps every row. */
  retentionDays?: number | string;
  /** Also store every detector's full result as JSON (the `detectors` column). */
  storeDetails?: boolean | string;
  /** Most rows waiting for the database before new messages fail at once; blank (a flow from before) -> default. */
  maxPending?: number | string;
}

/** What the output carries: the message, its stored events as payload, and the commit outcome. */
type StoredMessage = NodeMessage & { stored?: WriteResult };

const STATUS_INTERVAL_MS = 500;

/** Blank -> default; a number-like text -> number; anything else is passed on so the core error quotes it. */
function numberSetting(value: number | string | undefined, fallback: number): number {
  if (value === undefined || value === null || String(value).trim() === "") return fallback;
  const number = Number(value);
  return (Number.isFinite(number) ? number : value) as number;
}

/** Relative paths live in the Node-RED user directory, beside flows and context, so they are backed up with them. */
function databasePath(RED: NodeAPI, path: string): string {
  if (path === ":memory:" || isAbsolute(path)) return path;
  const userDir = (RED.settings as unknown as { userDir?: string }).userDir;
  return resolve(userDir ?? process.cwd(), path);
}

export = function register(RED: NodeAPI) {
  function SqliteSinkNode(this: Node, config: SqliteSinkNodeDef) {
    RED.nodes.createNode(this, config);
    const node = this;
    const metrics = new NodeMetrics(node, "iot-sqlite-sink");
    let writer: SqliteEventWriter | null = null;
    let openError: Error | null = null;
    let closing = false;
    let statusTimer: NodeJS.Timeout | undefined;
    let lastStatusAt = 0;
    /** Attempts of the batch now waiting for another program's lock or for disk space (0: not waiting). */
    let waitingAttempts = 0;
    const table = config.table || "events";

    try {
      writer = new SqliteEventWriter({
        path: databasePath(RED, config.path ?? "anomalies.db"),
        table,
        batchSize: numberSetting(config.batchSize, 500),
        flushIntervalMs: numberSetting(config.flushInterval, 200),
        retentionDays: numberSetting(config.retentionDays, 0),
        maxPendingRows: numberSetting(config.maxPending, DEFAULT_MAX_PENDING_ROWS),
        storeDetails: config.storeDetails === true || config.storeDetails === "true",
        onCommit: (_rows, seconds) => {
          recordSqliteCommit(table, seconds);
          if (waitingAttempts > 0) {
            node.log(RED._("iot-sqlite-sink.log.unlocked", { attempts: waitingAttempts }));
            waitingAttempts = 0;
          }
        },
        // Another program holds the write lock, or the disk is full: the batch waits and is tried again, nothing is
        // failed. Say so once in the log, and on the status while it lasts.
        onRetry: (error, attempt, delayMs) => {
          if (closing) return;
          const reason = isFullCode(error.code) ? "full" : "locked";
          if (waitingAttempts === 0) node.warn(RED._(`iot-sqlite-sink.errors.${reason}`, { error: error.cause instanceof Error ? error.cause.message : error.message }));
          waitingAttempts = attempt;
          cancelCounts();
          const waiting = writer === null ? 0 : writer.stats.pending;
          node.status(warming(RED._(`iot-sqlite-sink.status.${reason}`, { seconds: (delayMs / 1000).toFixed(1), waiting: compactCount(waiting) })));
        },
        onRetention: (error, deleted) => {
          if (error) node.warn(error.message);
          else if (deleted > 0) node.log(RED._("iot-sqlite-sink.log.retention", { deleted, days: String(config.retentionDays) }));
        },
        // The messages it had not confirmed already went to Catch with the error; say what happened to the thread.
        onWorkerExit: (error, restarted) => {
          if (restarted) {
            node.warn(RED._("iot-sqlite-sink.errors.threadRestarted", { error: error.message }));
          } else {
            node.error(error.message);
            cancelCounts();
            if (!closing) node.status(failed(shorten(error.message)));
          }
        },
      });
      node.log(RED._("iot-sqlite-sink.log.writing", { path: writer.path }));
      if (writer.journalMode !== "wal") node.warn(RED._("iot-sqlite-sink.errors.noWal", { mode: writer.journalMode }));
      node.status(idle(RED._("iot-sqlite-sink.status.waiting")));
    } catch (error) {
      openError = error as Error;
      node.error(openError.message);
      node.status(failed(shorten(openError.message)));
    }

    const paintCounts = () => {
      statusTimer = undefined;
      if (closing || writer === null) return;
      lastStatusAt = Date.now();
      const { stored, anomalies } = writer.stats;
      node.status(running(RED._("iot-sqlite-sink.status.stored", { stored: compactCount(stored), anomalies: compactCount(anomalies) })));
    };
    // Status calls cost: at most one every STATUS_INTERVAL_MS, the last one always shown.
    const showCounts = () => {
      if (statusTimer !== undefined || closing) return;
      const wait = lastStatusAt + STATUS_INTERVAL_MS - Date.now();
      if (wait <= 0) paintCounts();
      else statusTimer = setTimeout(paintCounts, wait);
    };
    const cancelCounts = () => {
      if (statusTimer !== undefined) clearTimeout(statusTimer);
      statusTimer = undefined;
    };

    node.on("input", (msg: StoredMessage, send, trackedDone) => {
      const done = metrics.track(trackedDone);
      if (writer === null) return done(openError ?? new Error("the database is not open"));
      const { events, batch, error } = readEventMessage(msg);
      metrics.received(events.length);
      if (events.length === 0 && error) {
        cancelCounts();
        return reportInvalidInput(node, error, done);
      }
      const onCommitted = (commitError: Error | null, result?: WriteResult) => {
        if (commitError) {
          // The rows of this message are not stored: say so to Catch nodes, keep running for the next message.
          cancelCounts();
          const reason = (commitError.cause as Error | undefined)?.message ?? commitError.message;
          if (!closing) node.status(failed(shorten(RED._("iot-sqlite-sink.status.failed", { error: reason }))));
          return done(commitError);
        }
        const out = (withEvents(msg, events, batch) ?? msg) as StoredMessage;
        out.stored = result;
        metrics.sent(result?.inserted ?? 0);
        send(out);
        if (error) {
          cancelCounts();
          reportInvalidInput(node, error, done);
        } else {
          showCounts();
          done();
        }
      };
      try {
        writer.write(events, onCommitted);
      } catch (error) {
        // Only an event the validator let through but the table cannot hold gets here; report it, keep running.
        reportInvalidInput(node, error as Error, done);
      }
    });

    node.on("close", (removed: boolean, done: () => void) => {
      if (removed) metrics.remove();
      // Commit what is queued before the database closes: a redeploy loses nothing, and each message's done() runs.
      // Node-RED waits for done() (up to its nodeCloseTimeout, 15 s by default) before starting the new flow.
      closing = true;
      cancelCounts();
      if (writer === null) return done();
      writer.close().then(
        () => done(),
        (error: Error) => {
          node.error(error.message);
          done();
        },
      );
    });
  }

  RED.nodes.registerType("iot-sqlite-sink", SqliteSinkNode);
  serveMetrics(RED);
};
