// Data drift between a model's training data and what the sensors send now: a sorted reference sample per feature,
// a ring of the most recent rows, and a per-feature two-sample KS test every N events and/or T ms of event time.
//
// Several features are several tests: with "drift when any feature has p < alpha" the false-alarm rate per check
// grows with the feature count (1 - 0.95^3 = 14% for three features at alpha 0.05). So the decision is Bonferroni:
// drift when the smallest p-value is below alpha / features, which keeps the rate per check at most alpha.
// The KS test assumes independent readings; sensor series are often autocorrelated, which makes p-values too small
// on stationary data. Choose alpha and the check interval with that in mind (see the README's "Model lifecycle").
import { ksTwoSampleSorted } from "./ks-test";

export interface DriftDetectorOptions {
  /** Feature names, in row order; used in the reports. */
  features: readonly string[];
  /** Rows in the recent window that is compared with the reference. */
  windowSize: number;
  /** Check after this many new rows (once the window is full); 0 = not by count. */
  checkEveryEvents: number;
  /** Check when the event time has advanced this many ms since the last check; 0 = not by time. */
  checkEveryMs: number;
  /** Significance level of the whole check (split over the features, Bonferroni). */
  alpha: number;
  /** Largest reference sample kept per feature (evenly spaced rows of the training data). Default 2000. */
  referenceSize?: number;
}

export interface FeatureDrift {
  feature: string;
  /** KS statistic D. */
  statistic: number;
  pValue: number;
}

export interface DriftCheck {
  /** True when the smallest p-value is below `threshold`. */
  drift: boolean;
  /** Smallest p-value over the features, and the feature it belongs to. */
  pValue: number;
  feature: string;
  alpha: number;
  /** alpha / number of features. */
  threshold: number;
  features: FeatureDrift[];
  /** The recent window that was tested: its size and event-time range. */
  window: { events: number; from: number; to: number };
  referenceSize: number;
  /** Latest event time seen when the check ran. */
  at: number;
}

export const DEFAULT_REFERENCE_SIZE = 2000;

/**
 * The reference sample of training rows: at most `size` evenly spaced rows (every row when fewer), one sorted
 * column per feature. Evenly spaced rather than random so the same rows give the same reference.
 */
export function referenceSampleOf(rows: ArrayLike<ArrayLike<number>>, width: number, size = DEFAULT_REFERENCE_SIZE): Float64Array[] {
  if (rows.length < 2) throw new RangeError(`the drift reference needs at least 2 rows (got ${rows.length})`);
  const count = Math.min(rows.length, size);
  const step = rows.length / count;
  const reference = Array.from({ length: width }, () => new Float64Array(count));
  for (let i = 0; i < count; i++) {
    const row = rows[Math.floor(i * step)];
    for (let f = 0; f < width; f++) reference[f][i] = row[f];
  }
  for (const column of reference) column.sort();
  return reference;
}

function checkOptions(options: DriftDetectorOptions): Required<DriftDetectorOptions> {
  const { features, windowSize, checkEveryEvents, checkEveryMs, alpha } = options;
  const referenceSize = options.referenceSize ?? DEFAULT_REFERENCE_SIZE;
  if (!Array.isArray(features) || features.length === 0) throw new RangeError(`drift detector needs at least one feature name`);
  if (!Number.isInteger(windowSize) || windowSize < 10) throw new RangeError(`"windowSize" must be an integer of at least 10 (got ${String(windowSize)})`);
  if (!Number.isInteger(checkEveryEvents) || checkEveryEvents < 0) throw new RangeError(`"checkEveryEvents" must be 0 or a positive integer (got ${String(checkEveryEvents)})`);
  if (typeof checkEveryMs !== "number" || !Number.isFinite(checkEveryMs) || checkEveryMs < 0) throw new RangeError(`"checkEveryMs" must be 0 or a positive number (got ${String(checkEveryMs)})`);
  if (typeof alpha !== "number" || !(alpha > 0 && alpha < 1)) throw new RangeError(`"alpha" must be a number between 0 and 1 (got ${String(alpha)})`);
  if (!Number.isInteger(referenceSize) || referenceSize < 10) throw new RangeError(`"referenceSize" must be an integer of at least 10 (got ${String(referenceSize)})`);
  return { features, windowSize, checkEveryEvents, checkEveryMs, alpha, referenceSize };
}

export class DriftDetector {
  readonly options: Readonly<Required<DriftDetectorOptions>>;
  /** The last check that ran, or null. */
  lastCheck: DriftCheck | null = null;

  private readonly width: number;
  private reference: Float64Array[] | null = null;
  /** Ring of recent rows (row-major) and their event times. */
  private readonly ring: Float64Array;
  private readonly times: Float64Array;
  private next = 0;
  private count = 0;
  private sinceCheck = 0;
  /** Event time the time-based interval counts from: the last check, or the first row after a clear. */
  private intervalStart = NaN;
  private latest = -Infinity;
  private readonly column: Float64Array;

  constructor(options: DriftDetectorOptions) {
    this.options = Object.freeze(checkOptions(options));
    this.width = this.options.features.length;
    this.ring = new Float64Array(this.options.windowSize * this.width);
    this.times = new Float64Array(this.options.windowSize);
    this.column = new Float64Array(this.options.windowSize);
  }

  /** True when checks run at all (by count or by time). */
  get enabled(): boolean {
    return this.options.checkEveryEvents > 0 || this.options.checkEveryMs > 0;
  }

  get hasReference(): boolean {
    return this.reference !== null;
  }

  /** Rows in the recent window (at most windowSize). */
  get windowCount(): number {
    return this.count;
  }

  get windowFull(): boolean {
    return this.count === this.options.windowSize;
  }

  /** Takes the training rows as the reference: at most referenceSize evenly spaced rows, sorted per feature. */
  setReference(rows: ArrayLike<ArrayLike<number>>): void {
    this.reference = referenceSampleOf(rows, this.width, this.options.referenceSize);
  }

  /** The reference as plain arrays (one sorted array per feature), to store with the model; null when none. */
  referenceSample(): number[][] | null {
    return this.reference ? this.reference.map((column) => Array.from(column)) : null;
  }

  /** Restores a sample saved with referenceSample(); checks its shape so a damaged record fails here. */
  setReferenceSample(sample: unknown): void {
    if (!Array.isArray(sample) || sample.length !== this.width) {
      throw new Error(`a drift reference must hold one array per feature (${this.width}), got ${Array.isArray(sample) ? sample.length : typeof sample}`);
    }
    this.reference = sample.map((values, f) => {
      if (!Array.isArray(values) || values.length < 2 || !values.every(Number.isFinite)) {
        throw new Error(`the drift reference of "${this.options.features[f]}" is not an array of at least 2 finite numbers`);
      }
      return Float64Array.from(values as number[]).sort();
    });
  }

  clearReference(): void {
    this.reference = null;
  }

  /** Empties the recent window; checks start again once it is full. */
  clearWindow(): void {
    this.next = 0;
    this.count = 0;
    this.sinceCheck = 0;
    this.intervalStart = NaN;
  }

  /**
   * Adds the row of `width` values at `offset` in `values` (event time `timestamp`, ms) to the recent window and
   * runs a check when one is due, the window is full and a reference exists; returns that check, else null.
   * `allowCheck` false only fills the window (while a retrain collects fresh rows).
   */
  add(values: ArrayLike<number>, offset: number, timestamp: number, allowCheck = true): DriftCheck | null {
    const { windowSize, checkEveryEvents, checkEveryMs } = this.options;
    const base = this.next * this.width;
    for (let f = 0; f < this.width; f++) this.ring[base + f] = values[offset + f];
    this.times[this.next] = timestamp;
    this.next = this.next + 1 === windowSize ? 0 : this.next + 1;
    if (this.count < windowSize) this.count++;
    this.sinceCheck++;
    // Events of several sensors interleave slightly out of order: time only ever advances to the latest seen.
    if (timestamp > this.latest) this.latest = timestamp;
    if (Number.isNaN(this.intervalStart)) this.intervalStart = this.latest;
    if (!allowCheck || this.reference === null || this.count < windowSize) return null;
    const dueByCount = checkEveryEvents > 0 && this.sinceCheck >= checkEveryEvents;
    const dueByTime = checkEveryMs > 0 && this.latest - this.intervalStart >= checkEveryMs;
    return dueByCount || dueByTime ? this.check() : null;
  }

  /** Tests the current window against the reference now (the window must be full enough: at least 2 rows). */
  check(): DriftCheck {
    if (this.reference === null) throw new Error("the drift detector has no reference sample yet");
    if (this.count < 2) throw new Error(`the recent window holds ${this.count} rows; a drift check needs at least 2`);
    const { alpha, features } = this.options;
    const results: FeatureDrift[] = [];
    let smallest = 1;
    let smallestFeature = features[0];
    const column = this.count === this.column.length ? this.column : this.column.subarray(0, this.count);
    for (let f = 0; f < this.width; f++) {
      for (let i = 0; i < this.count; i++) column[i] = this.ring[i * this.width + f];
      column.sort();
      const { statistic, pValue } = ksTwoSampleSorted(this.reference[f], column);
      results.push({ feature: features[f], statistic, pValue });
      if (pValue < smallest || f === 0) {
        smallest = pValue;
        smallestFeature = features[f];
      }
    }
    const threshold = alpha / this.width;
    let from = Infinity;
    let to = -Infinity;
    for (let i = 0; i < this.count; i++) {
      if (this.times[i] < from) from = this.times[i];
      if (this.times[i] > to) to = this.times[i];
    }
    this.sinceCheck = 0;
    this.intervalStart = this.latest;
    this.lastCheck = {
      drift: smallest < threshold,
      pValue: smallest,
      feature: smallestFeature,
      alpha,
      threshold,
      features: results,
      window: { events: this.count, from, to },
      referenceSize: this.reference[0].length,
      at: this.latest,
    };
    return this.lastCheck;
  }

  /** The recent window's rows, oldest first, with the event-time range they cover (for retraining on them). */
  windowRows(): { rows: number[][]; from: number | null; to: number | null } {
    const rows: number[][] = [];
    let from = Infinity;
    let to = -Infinity;
    const start = this.count < this.options.windowSize ? 0 : this.next;
    for (let k = 0; k < this.count; k++) {
      const slot = (start + k) % this.options.windowSize;
      rows.push(Array.from(this.ring.subarray(slot * this.width, slot * this.width + this.width)));
      if (this.times[slot] < from) from = this.times[slot];
      if (this.times[slot] > to) to = this.times[slot];
    }
    return { rows, from: rows.length ? from : null, to: rows.length ? to : null };
  }
}
