// Contextual novelty detector, in the spirit of NAB's CAD OSE (written from its published description, not from
// its code): each value is cut into a few levels of the value range, on several grids; the detector remembers
// which level followed each context (the levels of the rows just before, and the time of day) and scores a row by
// the share of its contexts that never led to its level before. A pattern is learnt the first time it is seen, so
// a repeated pattern stops scoring, while a level, a step or a time-of-day behaviour the series never showed
// scores high. Memory grows with the number of distinct patterns, bounded by grids × levels² × (maxOrder, dayParts).
import { onAlertScale, type SeriesContext, type StreamDetector } from "./types";
import { RangeEstimate, type RangeMode } from "./value-range";

const DAY_MS = 86_400_000;

export interface ContextualNoveltyOptions {
  /**
   * Levels the value range is cut into, one grid per entry (values outside the range get a level of their own on
   * each side). Several grids make the score graded and less dependent on where one grid's boundaries fall.
   */
  levels: number | number[];
  /** Longest context of previous rows' levels (1: the row before only). */
  maxOrder: number;
  /**
   * Parts of the (UTC) day a level is also remembered for (0: none): "this level at this time of day" is a context
   * too, so a normal level at an abnormal hour, as on a holiday in a daily rhythm, is new.
   */
  dayParts: number;
  /** Share of unseen contexts (0 to 1) at which the detector alerts. */
  alertNovelty: number;
  range: RangeMode;
  /** Warm-up range estimate widened by this fraction of its width on each side. */
  rangePadding: number;
}

export class ContextualNovelty implements StreamDetector {
  private readonly range: RangeEstimate;
  private readonly grids: number[];
  /** Per grid, the levels of the last maxOrder rows, most recent last. */
  private readonly recent: number[][];
  /** Context-and-level pairs seen so far, as text keys. */
  private readonly seen = new Set<string>();
  private runningMin = Number.POSITIVE_INFINITY;
  private runningMax = Number.NEGATIVE_INFINITY;

  constructor(private readonly options: ContextualNoveltyOptions, context: SeriesContext) {
    this.range = new RangeEstimate(options.range, context, options.rangePadding);
    this.grids = typeof options.levels === "number" ? [options.levels] : [...options.levels];
    this.recent = this.grids.map(() => []);
  }

  score(timestampMs: number, value: number): number {
    this.range.observe(value);
    if (value < this.runningMin) this.runningMin = value;
    if (value > this.runningMax) this.runningMax = value;
    const { maxOrder, dayParts } = this.options;
    const order = this.recent[0].length;
    const dayPart = dayParts > 0 ? Math.floor((((timestampMs % DAY_MS) + DAY_MS) % DAY_MS) / (DAY_MS / dayParts)) : -1;
    let unseen = 0;
    let contexts = 0;
    for (let grid = 0; grid < this.grids.length; grid++) {
      const recent = this.recent[grid];
      const level = this.levelOf(value, this.grids[grid]);
      let key = `${grid}|${level}`;
      for (let length = 1; length <= order; length++) {
        key = `${recent[order - length]},${key}`;
        if (this.learn(key)) unseen++;
        contexts++;
      }
      if (dayPart >= 0) {
        if (this.learn(`${grid}@${dayPart}|${level}`)) unseen++;
        contexts++;
      }
      recent.push(level);
      if (recent.length > maxOrder) recent.shift();
    }
    if (order < maxOrder) return 0; // no full context yet
    return onAlertScale(unseen / contexts, this.options.alertNovelty);
  }

  /** Remembers a pattern; true when it is new. */
  private learn(key: string): boolean {
    if (this.seen.has(key)) return false;
    this.seen.add(key);
    return true;
  }

  private levelOf(value: number, levels: number): number {
    // Mode "none": the range seen so far (it only widens, so early levels are coarse).
    const range = this.range.range ?? { min: this.runningMin, max: this.runningMax };
    if (value < range.min) return -1;
    if (value > range.max) return levels;
    const width = range.max - range.min;
    return width > 0 ? Math.min(levels - 1, Math.floor(((value - range.min) / width) * levels)) : 0;
  }
}
