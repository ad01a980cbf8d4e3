// Node-RED glue for the Isolation Forest: warm up on the first N events, then score every event (batches in one
// call), send anomalies on a second output, and keep the trained model across restarts.
import { unlinkSync } from "node:fs";
import type { Node, NodeAPI, NodeDef, NodeMessage, NodeMessageInFlow } from "node-red";
import { isFlaggedByAnyDetector, readPayloadEvents, summariseErrors, type ForestResult, type SensorEvent } from "../../src/core/event";
import { IsolationForest, type IsolationForestJSON, type IsolationForestOptions } from "../../src/core/isolation-forest";
import { copyWithEvents, readEventMessage, reportInvalidInput, withEvents } from "../../src/runtime/event-message";
import { PeriodicSnapshot } from "../../src/runtime/periodic-snapshot";
import { stateFile } from "../../src/runtime/state-directory";
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
}

/** The result this node writes to `event.detectors.isolationForest`. */
interface NodeForestResult extends ForestResult {
  /** Features absent from the event; the event was forwarded unscored. */
  missing?: string[];
}

interface Settings {
  features: string[];
  trainingSize: number;
  thresholdMode: "score" | "contamination";
  /** Fixed score threshold in "score" mode. */
  scoreThreshold: number;
  forest: Required<IsolationForestOptions>;
}

interface SavedModel {
  version: number;
  rows: number;
  trainedAt: string;
  thresholdMode: Settings["thresholdMode"];
  scoreThreshold: number;
  contamination: IsolationForestOptions["contamination"];
  forest: IsolationForestJSON;
}

/** What survives a restart: the model, the highest version ever trained, and warm-up progress. */
interface SavedState {
  format: "iot-isolation-forest-node";
  features: string[];
  lastVersion: number;
  model: SavedModel | null;
  warmupRows: number[][];
}

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
  return { features, trainingSize, thresholdMode, scoreThreshold, forest };
}

/** Why a saved model does not fit the current settings, or null when it does. */
function mismatch(saved: SavedState, settings: Settings): string | null {
  if (saved.features.join(",") !== settings.features.join(",")) {
    return `it was trained on features "${saved.features.join(", ")}" but the node now uses "${settings.features.join(", ")}"`;
  }
  if (!saved.model) return null;
  const savedOptions = saved.model.forest.options as unknown as Record<string, unknown>;
  for (const [option, value] of Object.entries(settings.forest)) {
    if (savedOptions[option] !== value) return `it was trained with ${option} ${JSON.stringify(savedOptions[option])}, the node now uses ${JSON.stringify(value)}`;
  }
  return null;
}

/**
 * Warm-up, training, batch scoring and persistence of one node, without Node-RED messages: the input handler
 * only reads the payload, calls `process`, and sends.
 */
class ForestDetector {
  model: IsolationForest | null = null;
  savedModel: SavedModel | null = null;
  lastVersion = 0;
  warmupRows: number[][] = [];
  scored = 0;
  anomalies = 0;
  /** Reused per batch: rows to score (row-major), their events, and their scores. */
  private rowBuffer = new Float64Array(0);
  private scoreBuffer = new Float64Array(0);
  private readonly pending: SensorEvent[] = [];

  constructor(readonly settings: Settings) {}

  get version(): number | null {
    return this.savedModel?.version ?? null;
  }

  get threshold(): number | null {
    if (!this.model) return null;
    return this.settings.thresholdMode === "score" ? this.settings.scoreThreshold : this.model.threshold;
  }

  /** Adds results to each event in place; returns the anomalous ones. `onTrained` runs when warm-up completes. */
  process(events: SensorEvent[], onTrained: () => void): SensorEvent[] {
    const { features } = this.settings;
    const width = features.length;
    const pending = this.pending;
    pending.length = 0;
    if (this.rowBuffer.length < events.length * width) {
      this.rowBuffer = new Float64Array(events.length * width);
      this.scoreBuffer = new Float64Array(events.length);
    }
    for (const event of events) {
      const detectors = event.detectors ?? (event.detectors = {});
      const missing = this.missingFeatures(event);
      if (missing !== null) {
        const result: NodeForestResult = { score: null, anomaly: false, threshold: this.threshold, modelVersion: this.version, missing };
        detectors.isolationForest = result;
        continue;
      }
      if (this.model === null) {
        this.warmupRows.push(features.map((name) => event.readings[name]));
        detectors.isolationForest = { score: null, anomaly: false, threshold: null, modelVersion: null };
        if (this.warmupRows.length >= this.settings.trainingSize) {
          this.train(this.warmupRows);
          onTrained();
        }
        continue;
      }
      const offset = pending.length * width;
      for (let f = 0; f < width; f++) this.rowBuffer[offset + f] = event.readings[features[f]];
      pending.push(event);
    }
    const anomalous: SensorEvent[] = [];
    if (pending.length === 0 || this.model === null) return anomalous;
    this.model.scoreFlat(this.rowBuffer, pending.length, this.scoreBuffer);
    const threshold = this.threshold as number;
    const modelVersion = this.version;
    for (let i = 0; i < pending.length; i++) {
      const score = this.scoreBuffer[i];
      const anomaly = score > threshold;
      (pending[i].detectors as NonNullable<SensorEvent["detectors"]>).isolationForest = { score, anomaly, threshold, modelVersion };
      if (anomaly) anomalous.push(pending[i]);
    }
    this.scored += pending.length;
    this.anomalies += anomalous.length;
    pending.length = 0;
    return anomalous;
  }

  /** Fits a new model version on `rows` (throws with the core's message on bad rows). */
  train(rows: number[][]): SavedModel {
    const forest = new IsolationForest(this.settings.forest).fit(rows);
    const version = this.lastVersion + 1;
    this.model = forest;
    this.lastVersion = version;
    this.savedModel = {
      version,
      rows: rows.length,
      trainedAt: new Date().toISOString(),
      thresholdMode: this.settings.thresholdMode,
      scoreThreshold: this.settings.scoreThreshold,
      contamination: this.settings.forest.contamination,
      forest: forest.toJSON(),
    };
    this.warmupRows = [];
    this.scored = 0;
    this.anomalies = 0;
    return this.savedModel;
  }

  reset(): void {
    this.model = null;
    this.savedModel = null;
    this.warmupRows = [];
    this.scored = 0;
    this.anomalies = 0;
  }

  /**
   * Rows for a "train" message: an array of number rows (one value per feature, in order) or of events
   * (those lacking a feature are skipped). Throws naming the problem.
   */
  trainingRows(payload: unknown): number[][] {
    const { features } = this.settings;
    if (Array.isArray(payload) && payload.length > 0 && payload.every(Array.isArray)) {
      (payload as unknown[][]).forEach((row, index) => {
        if (row.length !== features.length) {
          throw new Error(`train: row ${index} has ${row.length} values but the node has ${features.length} features (${features.join(", ")})`);
        }
      });
      return payload as number[][];
    }
    if (payload === undefined || payload === null || (Array.isArray(payload) && payload.length === 0)) {
      // No data given: train now on what warm-up has gathered so far.
      if (this.warmupRows.length < 2) throw new Error(`train: the payload holds no rows and warm-up has only ${this.warmupRows.length} rows; send an array of events or number rows`);
      return this.warmupRows;
    }
    const { events, errors } = readPayloadEvents(payload);
    const error = summariseErrors(errors);
    if (error) throw new Error(`train: ${error.message}`);
    const rows: number[][] = [];
    for (const event of events) if (this.missingFeatures(event) === null) rows.push(features.map((name) => event.readings[name]));
    if (rows.length < 2) throw new Error(`train: needs at least 2 events with every feature (${features.join(", ")}); got ${rows.length}`);
    return rows;
  }

  private missingFeatures(event: SensorEvent): string[] | null {
    let missing: string[] | null = null;
    for (const name of this.settings.features) {
      if (typeof event.readings[name] !== "number") (missing ??= []).push(name);
    }
    return missing;
  }
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
    const detector = new ForestDetector(settings);
    const path = stateFile(RED, node.id, "iforest-model");
    const snapshot = new PeriodicSnapshot<SavedState>(
      path,
      () => ({ format: "iot-isolation-forest-node", features: settings.features, lastVersion: detector.lastVersion, model: detector.savedModel, warmupRows: detector.warmupRows }),
      (error) => node.warn(text("errors.save", { path, error: error.message })),
    );

    const logTrained = (model: SavedModel) => {
      node.log(text("log.trained", { version: model.version, rows: model.rows, threshold: (detector.threshold as number).toFixed(4), mode: settings.thresholdMode }));
      snapshot.save();
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
      node.status(
        detector.model
          ? running(text("status.scoring", { version: detector.version ?? 0, scored: compactCount(detector.scored), anomalies: compactCount(detector.anomalies) }))
          : warming(text("status.warming", { count: detector.warmupRows.length, total: settings.trainingSize })),
      );
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
      if (msg.topic === "train" || msg.topic === "reset") {
        try {
          if (msg.topic === "reset") {
            detector.reset();
            snapshot.save();
          } else {
            logTrained(detector.train(detector.trainingRows(msg.payload)));
          }
        } catch (error) {
          const message = (error as Error).message;
          return reportError(message.startsWith("train:") ? (error as Error) : new Error(`train: ${message}`), done);
        }
        showStatus();
        return done();
      }
      const { events, batch, error } = readEventMessage(msg);
      if (events.length > 0) {
        const warmingUp = detector.model === null;
        const anomalous = detector.process(events, () => logTrained(detector.savedModel as SavedModel));
        if (warmingUp) snapshot.touch();
        const forSecondOutput = config.anomalyOutput === "any" ? events.filter(isFlaggedByAnyDetector) : anomalous;
        const anomalies = copyWithEvents(msg as NodeMessage, forSecondOutput, batch);
        metrics.received(events.length);
        metrics.sent(events.length);
        recordDetections(events, "isolation_forest");
        send([withEvents(msg as NodeMessage, events, batch), anomalies]);
      }
      if (error) return reportError(error, done);
      refreshStatus();
      done();
    });

    node.on("close", (removed: boolean, done: () => void) => {
      if (removed) metrics.remove();
      clearTimeout(statusTimer);
      snapshot.stop();
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
      let saved: SavedState | undefined;
      try {
        saved = snapshot.load();
      } catch (error) {
        node.warn(text("errors.load", { error: (error as Error).message }));
        return;
      }
      if (!saved || saved.format !== "iot-isolation-forest-node") return;
      detector.lastVersion = Number.isInteger(saved.lastVersion) ? saved.lastVersion : 0;
      const reason = mismatch(saved, settings);
      if (reason) {
        node.log(text("log.ignored", { reason }));
        return;
      }
      if (saved.model) {
        try {
          detector.model = IsolationForest.fromJSON(saved.model.forest);
          detector.savedModel = saved.model;
          node.log(text("log.loaded", { version: saved.model.version, rows: saved.model.rows }));
        } catch (error) {
          node.warn(text("errors.load", { error: (error as Error).message }));
        }
        return;
      }
      if (Array.isArray(saved.warmupRows)) {
        detector.warmupRows = saved.warmupRows.filter((row) => Array.isArray(row) && row.length === settings.features.length && row.every(Number.isFinite));
        if (detector.warmupRows.length >= settings.trainingSize) {
          try {
            logTrained(detector.train(detector.warmupRows.slice(0, settings.trainingSize)));
          } catch (error) {
            node.warn(text("errors.load", { error: (error as Error).message }));
            detector.warmupRows = [];
          }
        }
      }
    }
  }

  RED.nodes.registerType("iot-isolation-forest", IsolationForestNode);
  serveMetrics(RED);
};
