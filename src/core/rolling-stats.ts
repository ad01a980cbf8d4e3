// Moving mean and standard deviation over the last `windowSize` values of one sensor metric, in O(1) per value:
// a preallocated Float64Array ring plus a running mean and M2 updated by adding the new value and removing the old.
import * as internals from "./rolling-internals";

// Module-local copies: the CommonJS output of esbuild (tsx, tsup) reads an imported binding through a getter call,
// which on this hot path cost 40 % of check() throughput.
const EXACT_RECOMPUTE_EVERY_WINDOWS = internals.EXACT_RECOMPUTE_EVERY_WINDOWS;
const SIGNIFICANCE_LOSS_LIMIT = internals.SIGNIFICANCE_LOSS_LIMIT;
const { decodeFloat64, encodeFloat64 } = internals;

export const WINDOW_SIZE_LIMITS = { min: 2, max: 100_000 } as const;

/** Numbers before a window's values in its packed form: count, mean, M2, additions since the exact recomputation. */
export const PACKED_WINDOW_HEADER = 4;

/** Persisted form of a RollingWindow. `values` is the window oldest-first, as base64 of little-endian float64s
 * (exact, and about 30x faster to write and read than a JSON number array for thousands of windows). */
export interface RollingWindowState {
  windowSize: number;
  count: number;
  /** Running mean and M2 as they were, so a restored window continues bit-for-bit like the original. */
  mean: number;
  m2: number;
  /** Additions since the last exact recomputation. */
  sinceExact: number;
  values: string;
}

/**
 * Moving mean and sample standard deviation of the last `windowSize` finite values.
 *
 * - `mean` is null before the first value; `std` and `variance` are null before the second.
 * - `std` is the sample standard deviation (divides by n - 1), like stdlib-js `incrmmeanstdev` and pandas `rolling().std()`.
 * - Non-finite values (NaN, ±Infinity) are ignored: `add` returns false and the window is unchanged, because one NaN
 *   would otherwise poison the running sums for a whole window.
 *
 * Memory: the ring (8 bytes × windowSize) and seven numbers; at window 100 about 1 KB with V8's object headers.
 */
export class RollingWindow {
  readonly windowSize: number;
  private readonly ring: Float64Array;
  /** Ring position the next value is written to. */
  private next = 0;
  private filled = 0;
  private runningMean = 0;
  /** Sum of squared deviations from the mean over the window. */
  private m2 = 0;
  private sinceExact = 0;

  constructor(windowSize: number) {
    if (!Number.isInteger(windowSize) || windowSize < WINDOW_SIZE_LIMITS.min || windowSize > WINDOW_SIZE_LIMITS.max) {
      throw new RangeError(
        `"windowSize" must be an integer from ${WINDOW_SIZE_LIMITS.min} to ${WINDOW_SIZE_LIMITS.max} (got ${String(windowSize)})`,
      );
    }
    this.windowSize = windowSize;
    this.ring = new Float64Array(windowSize);
  }

  /** Values currently in the window, at most `windowSize`. */
  get count(): number {
    return this.filled;
  }

  get mean(): number | null {
    return this.filled === 0 ? null : this.runningMean;
  }

  /** Sample variance (n - 1), never negative; null with fewer than 2 values. */
  get variance(): number | null {
    return this.filled < 2 ? null : this.m2 / (this.filled - 1);
  }

  /** Sample standard deviation (n - 1); null with fewer than 2 values. */
  get std(): number | null {
    return this.filled < 2 ? null : Math.sqrt(this.m2 / (this.filled - 1));
  }

  /** Adds a value, dropping the oldest once the window is full. Returns false (and changes nothing) for NaN/±Infinity. */
  add(value: number): boolean {
    if (value - value !== 0) return false; // NaN and ±Infinity, without a function call
    const ring = this.ring;
    const size = this.windowSize;
    const position = this.next;
    if (this.filled < size) {
      // Welford: grow the window by one.
      const n = ++this.filled;
      const delta = value - this.runningMean;
      this.runningMean += delta / n;
      this.m2 += delta * (value - this.runningMean);
    } else {
      // Replace the oldest value: mean moves by (new - old) / W; M2 by the product of the two deviations' sums.
      const oldest = ring[position];
      const previousMean = this.runningMean;
      const previousM2 = this.m2;
      const delta = value - oldest;
      this.runningMean = previousMean + delta / size;
      const m2 = previousM2 + delta * (value - this.runningMean + oldest - previousMean);
      // Cancellation can leave a tiny negative M2 on (near-)constant data; a variance is never negative.
      this.m2 = m2 < 0 ? 0 : m2;
      if (m2 < previousM2 * SIGNIFICANCE_LOSS_LIMIT) {
        // A dominant value (a 4294967295 error code among readings near 20) just left: without this the rest of
        // M2 would be rounding noise of the old one for up to 16 windows, e.g. a std 20x too large.
        ring[position] = value;
        this.next = position + 1 === size ? 0 : position + 1;
        this.recomputeExactly();
        return true;
      }
    }
    ring[position] = value;
    this.next = position + 1 === size ? 0 : position + 1;
    if (++this.sinceExact >= size * EXACT_RECOMPUTE_EVERY_WINDOWS) this.recomputeExactly();
    return true;
  }

  /** Empties the window; the ring is kept. */
  clear(): void {
    this.next = 0;
    this.filled = 0;
    this.runningMean = 0;
    this.m2 = 0;
    this.sinceExact = 0;
  }

  /** The values oldest-first (a copy). */
  values(): Float64Array {
    const out = new Float64Array(this.filled);
    const start = this.oldestPosition();
    const firstPart = Math.min(this.filled, this.windowSize - start);
    out.set(this.ring.subarray(start, start + firstPart), 0);
    if (firstPart < this.filled) out.set(this.ring.subarray(0, this.filled - firstPart), firstPart);
    return out;
  }

  /**
   * Mean and M2 recomputed from the ring, oldest-first (so the result does not depend on where the ring starts):
   * shifted by the oldest value, so large offsets (1e6 + noise) keep their precision, and with the corrected
   * two-pass formula that removes the rounding of the mean from M2.
   */
  recomputeExactly(): void {
    this.sinceExact = 0;
    const n = this.filled;
    if (n === 0) return;
    const ring = this.ring;
    const size = this.windowSize;
    const start = this.oldestPosition();
    const shift = ring[start];
    let sum = 0;
    for (let i = 0, p = start; i < n; i++, p = p + 1 === size ? 0 : p + 1) sum += ring[p] - shift;
    const mean = shift + sum / n;
    let squares = 0;
    let residual = 0;
    for (let i = 0, p = start; i < n; i++, p = p + 1 === size ? 0 : p + 1) {
      const deviation = ring[p] - mean;
      squares += deviation * deviation;
      residual += deviation;
    }
    this.runningMean = mean;
    this.m2 = Math.max(0, squares - (residual * residual) / n);
  }

  toJSON(): RollingWindowState {
    const values = this.values();
    return {
      windowSize: this.windowSize,
      count: this.filled,
      mean: this.runningMean,
      m2: this.m2,
      sinceExact: this.sinceExact,
      values: encodeFloat64(values),
    };
  }

  /** Numbers `packInto` writes for this window. */
  get packedLength(): number {
    return PACKED_WINDOW_HEADER + this.filled;
  }

  /**
   * The state of `toJSON()` as plain numbers at `target[at]`: count, mean, M2, sinceExact, then the values
   * oldest-first. Many windows packed into one array are saved as one base64 string, far quicker than one per
   * window. Returns the position after this window.
   */
  packInto(target: Float64Array, at: number): number {
    target[at] = this.filled;
    target[at + 1] = this.runningMean;
    target[at + 2] = this.m2;
    target[at + 3] = this.sinceExact;
    const first = at + PACKED_WINDOW_HEADER;
    const start = this.oldestPosition();
    const firstPart = Math.min(this.filled, this.windowSize - start);
    target.set(this.ring.subarray(start, start + firstPart), first);
    if (firstPart < this.filled) target.set(this.ring.subarray(0, this.filled - firstPart), first + firstPart);
    return first + this.filled;
  }

  /** Reads a window that `packInto` wrote at `source[at]`; `name` identifies it in errors. Returns it and the position after it. */
  static unpack(source: Float64Array, at: number, windowSize: number, name: string): { window: RollingWindow; next: number } {
    const count = source[at];
    if (!Number.isInteger(count) || count < 0 || at + PACKED_WINDOW_HEADER + count > source.length) {
      throw new Error(`window ${name}: the packed windows end before it, or its count is not a count`);
    }
    const values = source.subarray(at + PACKED_WINDOW_HEADER, at + PACKED_WINDOW_HEADER + count);
    const state = { count, mean: source[at + 1], m2: source[at + 2], sinceExact: source[at + 3] };
    return { window: RollingWindow.fromValues(windowSize, values, state, `window ${name}`), next: at + PACKED_WINDOW_HEADER + count };
  }

  /** Rebuilds a window from `toJSON()` output; throws an Error naming the field when the state is malformed. */
  static fromJSON(state: RollingWindowState): RollingWindow {
    if (state === null || typeof state !== "object") throw new Error(`window state must be an object (got ${String(state)})`);
    if (typeof state.values !== "string") throw new Error(`window state "values" must be a base64 string`);
    return RollingWindow.fromValues(state.windowSize, decodeFloat64(state.values, 'window state "values"'), state, "window state");
  }

  /**
   * A window holding `values` (oldest-first) with the saved running sums when they fit the values, else recomputed
   * from them. `label` starts the error messages.
   */
  private static fromValues(
    windowSize: number,
    values: Float64Array,
    state: Pick<RollingWindowState, "count" | "mean" | "m2" | "sinceExact">,
    label: string,
  ): RollingWindow {
    const window = new RollingWindow(windowSize);
    if (values.length > window.windowSize) {
      throw new Error(`${label} holds ${values.length} values, more than its windowSize ${window.windowSize}`);
    }
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i])) throw new Error(`${label} "values" holds a non-finite value at ${i}`);
    }
    window.ring.set(values, 0);
    window.filled = values.length;
    window.next = values.length === window.windowSize ? 0 : values.length;
    const consistent =
      state.count === values.length &&
      Number.isFinite(state.mean) &&
      Number.isFinite(state.m2) &&
      state.m2 >= 0 &&
      Number.isInteger(state.sinceExact) &&
      state.sinceExact >= 0;
    if (consistent) {
      window.runningMean = values.length === 0 ? 0 : state.mean;
      window.m2 = values.length === 0 ? 0 : state.m2;
      window.sinceExact = state.sinceExact;
    } else {
      window.recomputeExactly();
    }
    return window;
  }

  private oldestPosition(): number {
    return this.filled < this.windowSize ? 0 : this.next;
  }
}
