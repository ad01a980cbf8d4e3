// The value range a detector scales by, in one of three modes: none, the sensor's configured range, or one
// estimated from the warm-up rows (padded, since later values will stray past what the warm-up saw).
import type { SeriesContext, ValueRange } from "./types";

export type RangeMode = "none" | "configured" | "warmup";
export const RANGE_MODES: readonly RangeMode[] = ["none", "configured", "warmup"];

/** What a RangeEstimate has learnt, as JSON (no Infinity: null before the first value). */
export interface RangeEstimateSnapshot {
  mode: RangeMode;
  low: number | null;
  high: number | null;
  seen: number;
  frozen: ValueRange | null;
}

const finiteOrNull = (value: number): number | null => (Number.isFinite(value) ? value : null);

/** Tracks the range a detector uses: fixed when configured; in warm-up mode the running range until the warm-up
 * ends, then the warm-up's range widened by `padding` of its width on each side. */
export class RangeEstimate {
  private low = Number.POSITIVE_INFINITY;
  private high = Number.NEGATIVE_INFINITY;
  private seen = 0;
  private frozen: ValueRange | undefined;

  constructor(readonly mode: RangeMode, private readonly context: SeriesContext, private readonly padding: number) {
    if (mode === "configured") {
      const range = context.range;
      if (range === undefined || !Number.isFinite(range.min) || !Number.isFinite(range.max) || range.max < range.min) {
        throw new Error(`"range": "configured" needs the sensor's range (min ≤ max); none was given for this series`);
      }
      this.frozen = { min: range.min, max: range.max };
    }
  }

  /** Call with each value before using `range`. */
  observe(value: number): void {
    if (this.mode !== "warmup" || this.frozen !== undefined) return;
    if (value < this.low) this.low = value;
    if (value > this.high) this.high = value;
    if (++this.seen >= this.context.warmupRows) {
      const pad = (this.high - this.low) * this.padding;
      this.frozen = { min: this.low - pad, max: this.high + pad };
    }
  }

  /** The range to use now; undefined in mode "none" (and before the first value). */
  get range(): ValueRange | undefined {
    if (this.mode === "none") return undefined;
    if (this.frozen !== undefined) return this.frozen;
    return this.seen === 0 ? undefined : { min: this.low, max: this.high };
  }

  snapshot(): RangeEstimateSnapshot {
    return { mode: this.mode, low: finiteOrNull(this.low), high: finiteOrNull(this.high), seen: this.seen, frozen: this.frozen === undefined ? null : { ...this.frozen } };
  }

  /** Takes over what a snapshot learnt; throws (changing nothing) when it is malformed or of another mode. A
   * configured range stays the one given now: the snapshot's is only checked for shape. */
  restore(snapshot: RangeEstimateSnapshot): void {
    const number = (value: unknown): value is number => typeof value === "number" && Number.isFinite(value);
    const bound = (value: unknown): boolean => value === null || number(value);
    const frozen = snapshot?.frozen;
    if (snapshot === null || typeof snapshot !== "object" || !bound(snapshot.low) || !bound(snapshot.high) ||
      !Number.isInteger(snapshot.seen) || snapshot.seen < 0 ||
      (frozen !== null && (typeof frozen !== "object" || !number(frozen.min) || !number(frozen.max)))) {
      throw new TypeError("value range snapshot is malformed");
    }
    if (snapshot.mode !== this.mode) throw new TypeError(`value range snapshot is of mode "${String(snapshot.mode)}", this range's is "${this.mode}"`);
    this.low = snapshot.low ?? Number.POSITIVE_INFINITY;
    this.high = snapshot.high ?? Number.NEGATIVE_INFINITY;
    this.seen = snapshot.seen;
    if (this.mode !== "configured") this.frozen = frozen === null ? undefined : { min: frozen.min, max: frozen.max };
  }

  /** Width of the range, or undefined (mode "none", no value yet, or a constant series so far). */
  get width(): number | undefined {
    const range = this.range;
    return range === undefined || range.max <= range.min ? undefined : range.max - range.min;
  }
}
