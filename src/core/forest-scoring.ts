// Batch scoring of one isolation-forest node's events with the model its lifecycle holds: warm-up rows go to the
// lifecycle, events lacking a feature are forwarded unscored, the rest are scored in one call, and every scored row
// is then offered to the drift check. No Node-RED import: the node's input handler reads the payload, calls
// `process`, and sends.
import { readPayloadEvents, summariseErrors, type ForestResult, type SensorEvent } from "./event";
import type { IsolationForest } from "./isolation-forest";
import type { LifecycleEvent, ModelLifecycle } from "./model-lifecycle";

/** What scoring needs of the node's settings. */
export interface ForestScoringSettings {
  /** Metric names, in the order the model sees them. */
  features: string[];
  thresholdMode: "score" | "contamination";
  /** Fixed score threshold in "score" mode. */
  scoreThreshold: number;
}

/** Warm-up, training and batch scoring of one node's events. */
export class ForestDetector {
  /** Events scored and anomalies found by the active version (reset when the version changes). */
  scored = 0;
  anomalies = 0;
  private countedVersion: number | null = null;
  /** Reused per batch: rows to score (row-major), their events, and their scores. */
  private rowBuffer = new Float64Array(0);
  private scoreBuffer = new Float64Array(0);
  private readonly pending: SensorEvent[] = [];

  constructor(
    readonly settings: ForestScoringSettings,
    readonly lifecycle: ModelLifecycle,
  ) {}

  get model(): IsolationForest | null {
    return this.lifecycle.model;
  }

  get version(): number | null {
    return this.lifecycle.version;
  }

  /** Starts the counts again when another version took over. */
  noteVersion(): void {
    if (this.version === this.countedVersion) return;
    this.countedVersion = this.version;
    this.scored = 0;
    this.anomalies = 0;
  }

  get threshold(): number | null {
    if (!this.model) return null;
    return this.settings.thresholdMode === "score" ? this.settings.scoreThreshold : this.model.threshold;
  }

  /**
   * Adds results to each event in place; returns the anomalous ones. Lifecycle events (warm-up complete, drift,
   * retrain) and failed background retrains are appended to `changes` and `errors`. Every event is scored by the
   * model active when its turn comes: the batch's rows are scored first and fed to the drift check afterwards, so a
   * retrain triggered inside a batch takes over from the next message on.
   */
  process(events: SensorEvent[], changes: LifecycleEvent[], errors: Error[]): SensorEvent[] {
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
        const result: ForestResult = { score: null, anomaly: false, threshold: this.threshold, modelVersion: this.version, missing };
        detectors.isolationForest = result;
        continue;
      }
      if (this.model === null) {
        detectors.isolationForest = { score: null, anomaly: false, threshold: null, modelVersion: null };
        changes.push(...this.lifecycle.addWarmup(features.map((name) => event.readings[name]), event.timestamp));
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
    this.noteVersion();
    this.scored += pending.length;
    this.anomalies += anomalous.length;
    for (let i = 0; i < pending.length; i++) {
      const { events: observed, error } = this.lifecycle.observe(this.rowBuffer, i * width, pending[i].timestamp);
      if (observed.length > 0) changes.push(...observed);
      if (error) errors.push(error);
    }
    pending.length = 0;
    return anomalous;
  }

  /**
   * Rows for a "train" message, with their event-time range: an array of number rows (one value per feature, in
   * order) or of events (those lacking a feature are skipped); no payload: the warm-up gathered so far, or the recent
   * window once a model exists. Throws naming the problem.
   */
  trainingRows(payload: unknown): { rows: number[][]; from: number | null; to: number | null } {
    const { features } = this.settings;
    if (Array.isArray(payload) && payload.length > 0 && payload.every(Array.isArray)) {
      (payload as unknown[][]).forEach((row, index) => {
        if (row.length !== features.length) {
          throw new Error(`train: row ${index} has ${row.length} values but the node has ${features.length} features (${features.join(", ")})`);
        }
      });
      return { rows: payload as number[][], from: null, to: null };
    }
    if (payload === undefined || payload === null || payload === "" || (Array.isArray(payload) && payload.length === 0)) {
      const gathered = this.lifecycle.fallbackTrainingRows();
      if (gathered.rows.length < 2) {
        const source = this.model === null ? "warm-up has" : "the recent window holds";
        throw new Error(`train: the payload holds no rows and ${source} only ${gathered.rows.length} rows; send an array of events or number rows`);
      }
      return gathered;
    }
    const { events, errors } = readPayloadEvents(payload);
    const error = summariseErrors(errors);
    if (error) throw new Error(`train: ${error.message}`);
    const rows: number[][] = [];
    let from: number | null = null;
    let to: number | null = null;
    for (const event of events) {
      if (this.missingFeatures(event) !== null) continue;
      rows.push(features.map((name) => event.readings[name]));
      if (from === null || event.timestamp < from) from = event.timestamp;
      if (to === null || event.timestamp > to) to = event.timestamp;
    }
    if (rows.length < 2) throw new Error(`train: needs at least 2 events with every feature (${features.join(", ")}); got ${rows.length}`);
    return { rows, from, to };
  }

  private missingFeatures(event: SensorEvent): string[] | null {
    let missing: string[] | null = null;
    for (const name of this.settings.features) {
      if (typeof event.readings[name] !== "number") (missing ??= []).push(name);
    }
    return missing;
  }
}
