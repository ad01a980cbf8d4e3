// Isolation forest as a stream detector: each row is described by a small window of recent values (the value and
// the `lags` − 1 before it); the package's IsolationForest learns from the windows of past rows only (first at the
// end of the warm-up, then every `retrainEvery` rows on the latest `trainRows`) and scores the current window.
import { IsolationForest } from "../isolation-forest";
import { onAlertScale, type SeriesContext, type StreamDetector } from "./types";

export interface IsolationForestStreamOptions {
  /** Values per feature row: the current one and lags − 1 before it. */
  lags: number;
  /** "values": the raw window; "differences": the steps between consecutive values of the window (blind to the
   * level, so a shift that persists is one anomaly rather than a new normal the forest never saw). */
  features: "values" | "differences";
  /** Rows the forest learns from; "auto": the warm-up rows. */
  trainRows: number | "auto";
  /** Rows between refits on the latest trainRows (0: learn once, at the end of the warm-up). */
  retrainEvery: number;
  nEstimators: number;
  maxSamples: number;
  seed: number;
  /** Forest score (2^(−path/c)) at which the detector alerts; 0.5 is the paper's cut. */
  alertScore: number;
}

export class IsolationForestStream implements StreamDetector {
  private readonly trainRows: number;
  private readonly history: Float64Array;
  private readonly row: Float64Array;
  private seen = 0;
  private sinceFit = 0;
  private forest: IsolationForest | null = null;

  constructor(private readonly options: IsolationForestStreamOptions, context: SeriesContext) {
    this.trainRows = Math.max(2, options.trainRows === "auto" ? context.warmupRows : options.trainRows);
    // Values kept: the current row, the trainRows before it, and the lags before the oldest of those.
    this.history = new Float64Array(this.trainRows + options.lags + 1);
    this.row = new Float64Array(options.lags);
  }

  score(_timestampMs: number, value: number): number {
    this.history[this.seen % this.history.length] = value;
    this.seen++;
    // Rows 0 … lags − 1 lack a full window; the forest needs trainRows past rows with one.
    const pastRowsWithFeatures = this.seen - 1 - this.options.lags;
    if (this.forest === null || (this.options.retrainEvery > 0 && this.sinceFit >= this.options.retrainEvery)) {
      if (pastRowsWithFeatures >= this.trainRows) this.fit();
    }
    if (this.forest === null) return 0;
    this.sinceFit++;
    this.features(this.seen - 1, this.row);
    return onAlertScale(this.forest.scoreOne(this.row), this.options.alertScore);
  }

  /** Learns from the feature rows of the trainRows rows before the current one. */
  private fit(): void {
    const rows: Float64Array[] = [];
    for (let end = this.seen - 1 - this.trainRows; end < this.seen - 1; end++) {
      const row = new Float64Array(this.options.lags);
      this.features(end, row);
      rows.push(row);
    }
    const { nEstimators, maxSamples, seed } = this.options;
    this.forest = new IsolationForest({ nEstimators, maxSamples, seed }).fit(rows);
    this.sinceFit = 0;
  }

  /** Feature row of the row with index `end` (0-based in the series) into `out`. */
  private features(end: number, out: Float64Array): void {
    const lags = this.options.lags;
    const at = (index: number): number => this.history[index % this.history.length];
    if (this.options.features === "values") {
      for (let i = 0; i < lags; i++) out[i] = at(end - lags + 1 + i);
      return;
    }
    for (let i = 0; i < lags; i++) out[i] = at(end - lags + 1 + i) - at(end - lags + i);
  }
}
