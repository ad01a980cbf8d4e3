// Node-RED glue for the Isolation Forest: warm up on the first N events, then score every event (batches in one
// call), send anomalies on a second output and lifecycle events (trained, drift, promoted, …) on a third, and keep
// the model versions across restarts (models table in SQLite + the node's state file). The lifecycle itself
// (versions, drift checks, retraining, control operations) is src/core/model-lifecycle.ts.
import { unlinkSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import type { Node, NodeAPI, NodeDef, NodeMessage, NodeMessageInFlow } from "node-red";
import { isFlaggedByAnyDetector } from "../../src/core/event";
import { ForestDetector } from "../../src/core/forest-scoring";
import { IsolationForest, type IsolationForestOptions } from "../../src/core/isolation-forest";
import { ModelLifecycle, type LifecycleDriftOptions, type LifecycleEvent, type LifecycleState } from "../../src/core/model-lifecycle";
import { checkModelsTableName, ModelRegistry } from "../../src/core/model-registry";
import { copyWithEvents, readEventMessage, reportInvalidInput, withEvents } from "../../src/runtime/event-message";
import { PeriodicSnapshot } from "../../src/runtime/periodic-snapshot";
import { stateDirectory, stateFile } from "../../src/runtime/state-directory";
import { NodeMetrics, recordDetections, serveMetrics } from "../../src/runtime/metrics";
import { compactCount, failed, running, shorten, warming } from "../../src/runtime/status";

interface IsolationForestNodeDef extends NodeDef {
  /** Comma-separated metric names, in the order the model sees them. */
  features: string;
  trainingSize: string | number;
  nEstimators: string | number;
  maxSamples: string | number;
  thresholdMode: "score" | "contamination";
  threshold: string | number;
  contamination: string | number;
  seed: string | number;
  /** What output 2 carries: events this forest flagged ("self", default) or events flagged by any detector ("any"),
   * so a flow can route every anomaly once, e.g. to an anomalies topic, whichever detector found it. */
  anomalyOutput?: "self" | "any";
  // Model lifecycle. Absent in flows made before it existed: drift checks off, models table in the state folder.
  /** SQLite file of the models table; blank = iot-anomaly-models.db in the state folder; relative = in userDir. */
  modelsDatabase?: string;
  modelsTable?: string;
  /** Drift check every N scored events (0 = not by count). */
  driftEvery?: string | number;
  /** Drift check every S seconds of event time (0 = not by time). */
  driftSeconds?: string | number;
  driftAlpha?: string | number;
  /** Recent window: events tested against the training data, and what a drift retrain learns from. */
  driftWindow?: string | number;
  retrainOnDrift?: boolean | string;
  /** Versions kept in the models table (0 = all). */
  keepVersions?: string | number;
}

interface Settings {
  features: string[];
  trainingSize: number;
  thresholdMode: "score" | "contamination";
  /** Fixed score threshold in "score" mode. */
  scoreThreshold: number;
  forest: Required<IsolationForestOptions>;
  drift: LifecycleDriftOptions;
  /** As configured (blank = default file in the state folder). */
  modelsDatabase: string;
  modelsTable: string;
  keepVersions: number;
}

/** Control messages (msg.topic); anything else is events. */
const CONTROL_TOPICS = new Set(["train", "load", "rollback", "reset"]);
const MODELS_FILE = "iot-anomaly-models.db";

const MAX_TRAINING_SIZE = 100_000;
const STATUS_INTERVAL_MS = 500;
const SNAPSHOT_INTERVAL_MS = 5_000;

function toNumber(value: unknown, field: string, rule: string, accept: (n: number) => boolean): number {
  const number = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  if (typeof number !== "number" || !accept(number)) throw new Error(`"${field}" must be ${rule} (got ${JSON.stringify(value)})`);
  return number;
}

/** Reads the node's configuration once; errors name the field. */
function readSettings(config: IsolationForestNodeDef): Settings {
  const features = String(config.features ?? "")
    .split(",")
    .map((name) => name.trim())
    .filter((name) => name.length > 0);
  if (features.length === 0) throw new Error(`"features" is required: list the metric names to use, separated by commas (e.g. "vibration, temperature")`);
  const duplicate = features.find((name, index) => features.indexOf(name) !== index);
  if (duplicate !== undefined) throw new Error(`"features" lists "${duplicate}" twice`);
  const tooLong = features.find((name) => name.length > 64);
  if (tooLong !== undefined) throw new Error(`"features": metric name "${tooLong.slice(0, 20)}…" is longer than 64 characters`);
  const trainingSize = toNumber(config.trainingSize ?? 1000, "trainingSize", `an integer between 2 and ${MAX_TRAINING_SIZE}`, (n) => Number.isInteger(n) && n >= 2 && n <= MAX_TRAINING_SIZE);
  const thresholdMode = config.thresholdMode ?? "score";
  if (thresholdMode !== "score" && thresholdMode !== "contamination") throw new Error(`"thresholdMode" must be "score" or "contamination" (got ${JSON.stringify(thresholdMode)})`);
  const scoreThreshold =
    thresholdMode === "score" ? toNumber(config.threshold ?? 0.5, "threshold", "a score between 0 and 1", (n) => n > 0 && n < 1) : 0.5;
  const contamination =
    thresholdMode === "contamination" ? toNumber(config.contamination ?? 0.01, "contamination", "a rate in (0, 0.5]", (n) => n > 0 && n <= 0.5) : "auto";
  const options: IsolationForestOptions = {
    nEstimators: toNumber(config.nEstimators ?? 100, "nEstimators", "a positive integer", Number.isFinite),
    maxSamples: toNumber(config.maxSamples ?? 256, "maxSamples", "an integer of at least 2", Number.isFinite),
    seed: toNumber(config.seed ?? 42, "seed", "an integer between 0 and 4294967295", Number.isFinite),
    contamination,
  };
  // The core validates ranges with messages naming the option.
  const forest = new IsolationForest(options).options;

  // Model lifecycle; blank fields take the defaults.
  const blank = (value: unknown) => value === undefined || value === null || String(value).trim() === "";
  const checkEveryEvents = blank(config.driftEvery) ? 0 : toNumber(config.driftEvery, "driftEvery", "0 (off) or a positive integer", (n) => Number.isInteger(n) && n >= 0);
  const checkEverySeconds = blank(config.driftSeconds) ? 0 : toNumber(config.driftSeconds, "driftSeconds", "0 (off) or a positive number of seconds", (n) => Number.isFinite(n) && n >= 0);
  const alpha = blank(config.driftAlpha) ? 0.05 : toNumber(config.driftAlpha, "driftAlpha", "a significance level between 0 and 0.5", (n) => n > 0 && n <= 0.5);
  const windowSize = blank(config.driftWindow) ? 1000 : toNumber(config.driftWindow, "driftWindow", `an integer between 10 and ${MAX_TRAINING_SIZE}`, (n) => Number.isInteger(n) && n >= 10 && n <= MAX_TRAINING_SIZE);
  const retrainOnDrift = config.retrainOnDrift !== false && config.retrainOnDrift !== "false";
  const keepVersions = blank(config.keepVersions) ? 20 : toNumber(config.keepVersions, "keepVersions", "0 (keep all) or a positive integer", (n) => Number.isInteger(n) && n >= 0);
  const modelsTable = checkModelsTableName(blank(config.modelsTable) ? "iot_models" : String(config.modelsTable).trim());
  const modelsDatabase = blank(config.modelsDatabase) ? "" : String(config.modelsDatabase).trim();
  const drift: LifecycleDriftOptions = { windowSize, checkEveryEvents, checkEveryMs: checkEverySeconds * 1000, alpha, retrainOnDrift };
  return { features, trainingSize, thresholdMode, scoreThreshold, forest, drift, modelsDatabase, modelsTable, keepVersions };
}

/** Blank: a file in the state folder (follows IOT_ANOMALY_STATE_DIR); relative: in the Node-RED user directory. */
function modelsDatabasePath(RED: NodeAPI, configured: string): string {
  if (configured === "") return join(stateDirectory(RED), MODELS_FILE);
  if (configured === ":memory:" || isAbsolute(configured)) return configured;
  const userDir = (RED.settings as unknown as { userDir?: string }).userDir;
  return resolve(userDir ?? process.cwd(), configured);
}

/** "0.42", "0.003", "2e-9": short enough for a status text. */
function formatP(p: number): string {
  if (p >= 0.01) return p.toFixed(2);
  if (p >= 0.001) return p.toFixed(3);
  return p.toExponential(0);
}

export = function register(RED: NodeAPI) {
  function IsolationForestNode(this: Node, config: IsolationForestNodeDef) {
    RED.nodes.createNode(this, config);
    const node = this;
    const metrics = new NodeMetrics(node, "iot-isolation-forest");
    const text = (key: string, substitutions?: Record<string, string | number>) => RED._(`iot-isolation-forest.${key}`, substitutions);

    let settings: Settings;
    try {
      settings = readSettings(config);
    } catch (error) {
      const reason = (error as Error).message;
      node.error(text("errors.config", { error: reason }));
      node.status(failed(shorten(reason)));
      // Messages still reach Catch nodes with the reason, instead of vanishing into a misconfigured node.
      node.on("input", (_msg: NodeMessageInFlow, _send, done) => reportInvalidInput(node, new Error(reason), done));
      return;
    }
    // The models table; without it the node still scores and keeps its model in the state file (load and rollback
    // then fail, saying why).
    const modelsPath = modelsDatabasePath(RED, settings.modelsDatabase);
    let registry: ModelRegistry | null = null;
    let registryProblem: string | undefined;
    try {
      registry = new ModelRegistry({ path: modelsPath, table: settings.modelsTable });
      if (registry.journalMode !== "wal") node.warn(text("errors.noWal", { path: modelsPath, mode: registry.journalMode }));
    } catch (error) {
      registryProblem = (error as Error).message;
      node.error(text("errors.registry", { error: registryProblem }));
    }
    const lifecycle = new ModelLifecycle({
      detectorId: node.id,
      features: settings.features,
      trainingSize: settings.trainingSize,
      forest: settings.forest,
      parameters: { thresholdMode: settings.thresholdMode, scoreThreshold: settings.scoreThreshold },
      drift: settings.drift,
      registry,
      registryProblem,
      keepVersions: settings.keepVersions,
    });
    const detector = new ForestDetector(settings, lifecycle);
    const path = stateFile(RED, node.id, "iforest-model");
    const snapshot = new PeriodicSnapshot<LifecycleState>(
      path,
      () => lifecycle.toState(),
      (error) => node.warn(text("errors.save", { path, error: error.message })),
    );

    /** Logs lifecycle events, saves the state file after a change, and returns the messages for output 3. */
    const announce = (changes: LifecycleEvent[]): NodeMessage[] | null => {
      if (changes.length === 0) return null;
      for (const change of changes) {
        const { details } = change;
        if (change.event === "trained") {
          node.log(text("log.trained", { version: change.version ?? 0, rows: String(details.rows), threshold: (detector.threshold as number).toFixed(4), mode: settings.thresholdMode, reason: String(details.reason), ms: String(details.trainingMs) }));
        } else if (change.event === "drift") {
          node.log(text("log.drift", { version: change.version ?? 0, feature: String(details.feature), p: formatP(details.pValue as number) }));
        } else if (change.event !== "promoted") {
          const key = change.event === "loaded" ? "log.loadedVersion" : change.event === "rolled-back" ? "log.rolledBack" : "log.reset";
          node.log(text(key, { version: change.version ?? "-", previous: change.previousVersion ?? "-" }));
        }
      }
      snapshot.save();
      detector.noteVersion();
      return changes.map((change) => ({ topic: "lifecycle", payload: change }));
    };

    restore();
    snapshot.start(SNAPSHOT_INTERVAL_MS);

    // Status at most every STATUS_INTERVAL_MS; the last change always shows once the interval has passed.
    let statusTimer: NodeJS.Timeout | undefined;
    let lastStatusAt = 0;
    const showStatus = () => {
      clearTimeout(statusTimer);
      statusTimer = undefined;
      lastStatusAt = Date.now();
      if (!detector.model) {
        node.status(warming(text("status.warming", { count: lifecycle.warmupRows.length, total: settings.trainingSize })));
        return;
      }
      const counts = { version: detector.version ?? 0, scored: compactCount(detector.scored), anomalies: compactCount(detector.anomalies) };
      const p = lifecycle.lastPValue === null ? "" : formatP(lifecycle.lastPValue);
      switch (lifecycle.driftState) {
        case "stable":
          return node.status(running(text("status.scoringDrift", { ...counts, p })));
        case "confirming":
          return node.status(warming(text("status.confirming", { ...counts, p, count: lifecycle.confirmProgress, total: settings.drift.windowSize })));
        case "drift":
          return node.status(warming(text("status.drift", { ...counts, p })));
        default:
          return node.status(running(text("status.scoring", counts)));
      }
    };
    const refreshStatus = () => {
      const wait = lastStatusAt + STATUS_INTERVAL_MS - Date.now();
      if (wait <= 0) showStatus();
      else statusTimer ??= setTimeout(showStatus, wait);
    };
    const reportError = (error: Error, done: (err?: Error) => void) => {
      // Keep the red status until the next message is handled.
      clearTimeout(statusTimer);
      statusTimer = undefined;
      lastStatusAt = Date.now();
      reportInvalidInput(node, error, done);
    };
    showStatus();

    node.on("input", (msg: NodeMessageInFlow, send, trackedDone) => {
      const done = metrics.track(trackedDone);
      if (typeof msg.topic === "string" && CONTROL_TOPICS.has(msg.topic)) {
        // A control message is not an event: it changes the model, reports that on output 3, and completes.
        const command = msg.topic;
        let changes: LifecycleEvent[];
        try {
          changes = control(command, msg.payload);
        } catch (error) {
          const message = (error as Error).message;
          return reportError(message.startsWith(`${command}:`) ? (error as Error) : new Error(`${command}: ${message}`), done);
        }
        send([null, null, announce(changes)]);
        showStatus();
        return done();
      }
      const { events, batch, error } = readEventMessage(msg);
      const driftStateBefore = lifecycle.driftState;
      if (events.length > 0) {
        const warmingUp = detector.model === null;
        const changes: LifecycleEvent[] = [];
        const retrainErrors: Error[] = [];
        const anomalous = detector.process(events, changes, retrainErrors);
        if (warmingUp) snapshot.touch();
        const forSecondOutput = config.anomalyOutput === "any" ? events.filter(isFlaggedByAnyDetector) : anomalous;
        const anomalies = copyWithEvents(msg as NodeMessage, forSecondOutput, batch);
        metrics.received(events.length);
        metrics.sent(events.length);
        recordDetections(events, "isolation_forest");
        send([withEvents(msg as NodeMessage, events, batch), anomalies, announce(changes)]);
        // The events were scored and sent; a retrain the database refused is the node's problem, not this message's.
        for (const retrainError of retrainErrors) node.error(text("errors.retrain", { error: retrainError.message }));
      }
      if (error) return reportError(error, done);
      // A change of drift state (suspected, confirmed, retrained) shows at once; counts at most every 500 ms.
      if (lifecycle.driftState !== driftStateBefore) showStatus();
      else refreshStatus();
      done();
    });

    /** Runs one control message; throws with a message naming the problem (and changes nothing then). */
    function control(command: string, payload: unknown): LifecycleEvent[] {
      switch (command) {
        case "train": {
          const { rows, from, to } = detector.trainingRows(payload);
          return lifecycle.train(rows, "train", from, to);
        }
        case "load": {
          const version = payload !== null && typeof payload === "object" ? (payload as { version?: unknown }).version : payload;
          const number = typeof version === "string" && version.trim() !== "" ? Number(version) : version;
          if (typeof number !== "number" || !Number.isInteger(number) || number < 1) {
            throw new Error(`load: "payload.version" must be a positive integer, the version to load (got ${JSON.stringify(version) ?? "nothing"})`);
          }
          return lifecycle.load(number);
        }
        case "rollback":
          return lifecycle.rollback();
        default:
          return lifecycle.reset();
      }
    }

    node.on("close", (removed: boolean, done: () => void) => {
      if (removed) metrics.remove();
      clearTimeout(statusTimer);
      snapshot.stop();
      // The node's versions stay in the models table when it is deleted: they are its audit trail.
      registry?.close();
      if (removed) {
        // Like Node-RED's node context: a deleted node's state goes with it.
        try {
          unlinkSync(path);
        } catch {
          // never saved: nothing to delete
        }
      }
      done();
    });

    function restore(): void {
      let saved: LifecycleState | undefined;
      try {
        saved = snapshot.load();
      } catch (error) {
        // A damaged state file: the models table may still have the active version.
        node.warn(text("errors.load", { error: (error as Error).message }));
      }
      try {
        // The registry's active version wins; the state file serves without a registry (and is imported into an
        // empty one), and holds the warm-up progress.
        const outcome = lifecycle.restore(saved);
        if (outcome.ignored) node.log(text("log.ignored", { reason: outcome.ignored }));
        if (outcome.source !== "none") {
          node.log(text("log.loaded", { version: outcome.version ?? 0, rows: outcome.rows ?? 0, source: outcome.source === "state" ? path : modelsPath }));
        }
        // Nothing is wired yet while the flow starts: a warm-up completed by restored rows is only logged.
        announce(outcome.events);
      } catch (error) {
        node.warn(text("errors.load", { error: (error as Error).message }));
      }
      detector.noteVersion();
    }
  }

  RED.nodes.registerType("iot-isolation-forest", IsolationForestNode);
  serveMetrics(RED);
};
