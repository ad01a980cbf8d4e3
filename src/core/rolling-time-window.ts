// Moving mean and standard deviation over the readings of the last `spanMs` milliseconds of event time, capped at
// `capacity` readings, in amortised O(1) per reading: an arrival-order ring of (value, timestamp) and Welford updates.
import * as internals from "./rolling-internals";
import { WINDOW_SIZE_LIMITS } from "./rolling-stats";

// Module-local copies: esbuild's CommonJS output reads an imported binding through a getter call (see rolling-stats.ts).
const EXACT_RECOMPUTE_EVERY_WINDOWS = internals.EXACT_RECOMPUTE_EVERY_WINDOWS;
const SIGNIFICANCE_LOSS_LIMIT = internals.SIGNIFICANCE_LOSS_LIMIT;
const { decodeFloat64, encodeFloat64 } = internals;

/** First ring allocation; the ring doubles up to `capacity`, so a window pays only for the readings it holds. */
const INITIAL_RING = 16;

/** Persisted form of a RollingTimeWindow: values and timestamps oldest-arrival-first, base64 little-endian float64. */
export interface RollingTimeWindowState {
  capacity: number;
  spanMs: number;
  count: number;
  mean: number;
  m2: number;
  sinceExact: number;
  values: string;
  times: string;
}

/**
 * Mean and sample standard deviation of the readings whose event time lies within `spanMs` of the newest reading.
 *
 * - A reading at time t belongs to the window at time `now` while `t > now - spanMs`; `now` is the timestamp of the
 *   reading being added (or given to `advance`), so equal timestamps all stay together.
 * - At most `capacity` readings are kept: when a reading arrives and the window is full, the earliest-arrived one
 *   leaves early. That bounds memory whatever the data rate.
 * - Readings leave in arrival order. A late reading (older than readings already in the window) is counted and
 *   leaves once the readings that arrived before it have left: it may stay up to `spanMs` longer than its own
 *   timestamp alone would allow. Time never runs backwards for the window: a late timestamp evicts nothing.
 * - Non-finite values are ignored (`add` returns false) like RollingWindow; `mean`, `std` null as there.
 *
 * Memory: two float64 rings of at most `capacity` entries (16 bytes per reading held, up to twice that after a
 * doubling) plus a few numbers.
 */
export class RollingTimeWindow {
  readonly capacity: number;
  readonly spanMs: number;
  private values: Float64Array;
  private times: Float64Array;
  /** Ring position of the earliest-arrived reading. */
  private head = 0;
  private filled = 0;
  private runningMean = 0;
  private m2 = 0;
  /** Additions and removals since the last exact recomputation. */
  private sinceExact = 0;

  constructor(capacity: number, spanMs: number) {
    if (!Number.isInteger(capacity) || capacity < WINDOW_SIZE_LIMITS.min || capacity > WINDOW_SIZE_LIMITS.max) {
      throw new RangeError(
        `"windowSize" must be an integer from ${WINDOW_SIZE_LIMITS.min} to ${WINDOW_SIZE_LIMITS.max} (got ${String(capacity)})`,
      );
    }
    if (typeof spanMs !== "number" || !Number.isFinite(spanMs) || spanMs <= 0) {
      throw new RangeError(`the time span must be a positive number of milliseconds (got ${String(spanMs)})`);
    }
    this.capacity = capacity;
    this.spanMs = spanMs;
    const initial = Math.min(capacity, INITIAL_RING);
    this.values = new Float64Array(initial);
    this.times = new Float64Array(initial);
  }

  get count(): number {
    return this.filled;
  }

  get mean(): number | null {
    return this.filled === 0 ? null : this.runningMean;
  }

  /** Sample variance (n - 1), never negative; null with fewer than 2 readings. */
  get variance(): number | null {
    return this.filled < 2 ? null : this.m2 / (this.filled - 1);
  }

  get std(): number | null {
    return this.filled < 2 ? null : Math.sqrt(this.m2 / (this.filled - 1));
  }

  /** Timestamp of the earliest-arrived reading still in the window, or null when empty. */
  get oldestTime(): number | null {
    return this.filled === 0 ? null : this.times[this.head];
  }

  /** Lets event time reach `nowMs`: readings at or before `nowMs - spanMs` leave, earliest-arrived first. */
  advance(nowMs: number): void {
    const cutoff = nowMs - this.spanMs;
    while (this.filled > 0 && this.times[this.head] <= cutoff) this.removeOldest();
  }

  /**
   * Advances to `timestampMs`, makes room if the window holds `capacity` readings, and adds the reading.
   * Returns false (and changes nothing) when the value or the timestamp is not finite.
   */
  add(value: number, timestampMs: number): boolean {
    if (value - value !== 0 || timestampMs - timestampMs !== 0) return false; // NaN and ±Infinity
    this.advance(timestampMs);
    if (this.filled === this.capacity) this.removeOldest();
    else if (this.filled === this.values.length) this.grow();
    const ring = this.values.length;
    let position = this.head + this.filled;
    if (position >= ring) position -= ring;
    this.values[position] = value;
    this.times[position] = timestampMs;
    // Welford: grow the statistics by one.
    const n = ++this.filled;
    const delta = value - this.runningMean;
    this.runningMean += delta / n;
    this.m2 += delta * (value - this.runningMean);
    if (++this.sinceExact >= EXACT_RECOMPUTE_EVERY_WINDOWS * Math.max(n, INITIAL_RING)) this.recomputeExactly();
    return true;
  }

  /** Empties the window; the rings are kept. */
  clear(): void {
    this.head = 0;
    this.filled = 0;
    this.runningMean = 0;
    this.m2 = 0;
    this.sinceExact = 0;
  }

  /** [values, timestamps], earliest-arrived first (copies). */
  readings(): [values: Float64Array, times: Float64Array] {
    return [this.unrolled(this.values), this.unrolled(this.times)];
  }

  /** Mean and M2 from the ring, shifted by the oldest value and with the corrected two-pass formula (as RollingWindow). */
  recomputeExactly(): void {
    this.sinceExact = 0;
    const n = this.filled;
    if (n === 0) {
      this.runningMean = 0;
      this.m2 = 0;
      return;
    }
    const ring = this.values;
    const size = ring.length;
    const shift = ring[this.head];
    let sum = 0;
    for (let i = 0, p = this.head; i < n; i++, p = p + 1 === size ? 0 : p + 1) sum += ring[p] - shift;
    const mean = shift + sum / n;
    let squares = 0;
    let residual = 0;
    for (let i = 0, p = this.head; i < n; i++, p = p + 1 === size ? 0 : p + 1) {
      const deviation = ring[p] - mean;
      squares += deviation * deviation;
      residual += deviation;
    }
    this.runningMean = mean;
    this.m2 = Math.max(0, squares - (residual * residual) / n);
  }

  toJSON(): RollingTimeWindowState {
    const [values, times] = this.readings();
    return {
      capacity: this.capacity,
      spanMs: this.spanMs,
      count: this.filled,
      mean: this.runningMean,
      m2: this.m2,
      sinceExact: this.sinceExact,
      values: encodeFloat64(values),
      times: encodeFloat64(times),
    };
  }

  /** Rebuilds a window from `toJSON()` output; throws an Error naming the field when the state is malformed. */
  static fromJSON(state: RollingTimeWindowState): RollingTimeWindow {
    if (state === null || typeof state !== "object") throw new Error(`time window state must be an object (got ${String(state)})`);
    const window = new RollingTimeWindow(state.capacity, state.spanMs);
    if (typeof state.values !== "string") throw new Error(`time window state "values" must be a base64 string`);
    if (typeof state.times !== "string") throw new Error(`time window state "times" must be a base64 string`);
    const values = decodeFloat64(state.values, 'time window state "values"');
    const times = decodeFloat64(state.times, 'time window state "times"');
    if (values.length !== times.length) {
      throw new Error(`time window state holds ${values.length} values but ${times.length} timestamps`);
    }
    if (values.length > window.capacity) {
      throw new Error(`time window state holds ${values.length} values, more than its capacity ${window.capacity}`);
    }
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i])) throw new Error(`time window state "values" holds a non-finite value at ${i}`);
      if (!Number.isFinite(times[i])) throw new Error(`time window state "times" holds a non-finite timestamp at ${i}`);
    }
    const ring = Math.min(window.capacity, Math.max(INITIAL_RING, values.length));
    window.values = new Float64Array(ring);
    window.times = new Float64Array(ring);
    window.values.set(values, 0);
    window.times.set(times, 0);
    window.filled = values.length;
    const consistent =
      state.count === values.length &&
      Number.isFinite(state.mean) &&
      Number.isFinite(state.m2) &&
      state.m2 >= 0 &&
      Number.isInteger(state.sinceExact) &&
      state.sinceExact >= 0;
    if (consistent && values.length > 0) {
      window.runningMean = state.mean;
      window.m2 = state.m2;
      window.sinceExact = state.sinceExact;
    } else {
      window.recomputeExactly();
    }
    return window;
  }

  /** Reverse Welford step for the earliest-arrived reading. */
  private removeOldest(): void {
    const ring = this.values;
    const value = ring[this.head];
    this.head = this.head + 1 === ring.length ? 0 : this.head + 1;
    const n = --this.filled;
    if (n === 0) {
      // Exact zeros, so an emptied window starts again without residue.
      this.runningMean = 0;
      this.m2 = 0;
      this.sinceExact = 0;
      return;
    }
    const previousMean = this.runningMean;
    const previousM2 = this.m2;
    this.runningMean = previousMean - (value - previousMean) / n;
    this.m2 = previousM2 - (value - previousMean) * (value - this.runningMean);
    // Removing a reading that dominated M2 (a 4294967295 error code among readings near 20) cancels nearly all of
    // it and leaves rounding noise as the variance: recompute from the ring. Happens at most once per such reading.
    if (this.m2 < previousM2 * SIGNIFICANCE_LOSS_LIMIT || n === 1) this.recomputeExactly();
    else if (++this.sinceExact >= EXACT_RECOMPUTE_EVERY_WINDOWS * Math.max(n, INITIAL_RING)) this.recomputeExactly();
  }

  private grow(): void {
    const size = Math.min(this.capacity, this.values.length * 2);
    const values = new Float64Array(size);
    const times = new Float64Array(size);
    values.set(this.unrolled(this.values), 0);
    times.set(this.unrolled(this.times), 0);
    this.values = values;
    this.times = times;
    this.head = 0;
  }

  private unrolled(ring: Float64Array): Float64Array {
    const out = new Float64Array(this.filled);
    const firstPart = Math.min(this.filled, ring.length - this.head);
    out.set(ring.subarray(this.head, this.head + firstPart), 0);
    if (firstPart < this.filled) out.set(ring.subarray(0, this.filled - firstPart), firstPart);
    return out;
  }
}
