// Contextual novelty detector, in the spirit of NAB's CAD OSE (written from its published description, not from
// its code): each value is cut into a few levels of the value range, on several grids; the detector remembers
// which level followed each context (the levels of the rows just before, and the time of day) and scores a row by
// the share of its contexts that never led to its level before. A pattern is learnt the first time it is seen, so
// a repeated pattern stops scoring, while a level, a step or a time-of-day behaviour the series never showed
// scores high. Memory grows with the number of distinct patterns, bounded by grids × levels² × (maxOrder, dayParts).
import { onAlertScale, type SeriesContext, type StreamDetector } from "./types";
import { RangeEstimate, type RangeEstimateSnapshot, type RangeMode } from "./value-range";

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

/** Everything a ContextualNovelty has learnt, as JSON, for a node's state file. */
export interface ContextualNoveltySnapshot {
  version: 1;
  /** The grids' level counts it learnt with: patterns of other grids mean nothing to this one. */
  grids: number[];
  range: RangeEstimateSnapshot;
  recent: number[][];
  seen: string[];
  /** null before the first value (JSON has no Infinity). */
  runningMin: number | null;
  runningMax: number | null;
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

  snapshot(): ContextualNoveltySnapshot {
    return {
      version: 1,
      grids: [...this.grids],
      range: this.range.snapshot(),
      recent: this.recent.map((levels) => [...levels]),
      seen: [...this.seen],
      runningMin: Number.isFinite(this.runningMin) ? this.runningMin : null,
      runningMax: Number.isFinite(this.runningMax) ? this.runningMax : null,
    };
  }

  /** Takes over what a snapshot learnt; throws, changing nothing, when it is malformed or was learnt on other grids
   * (another `levels`) or another order or range mode. */
  restore(snapshot: ContextualNoveltySnapshot): void {
    if (snapshot === null || typeof snapshot !== "object" || snapshot.version !== 1) {
      throw new TypeError("contextual-novelty snapshot is not a version 1 snapshot");
    }
    const { grids, recent, seen, runningMin, runningMax } = snapshot;
    if (!Array.isArray(grids) || grids.join(",") !== this.grids.join(",")) {
      throw new TypeError(`contextual-novelty snapshot was learnt with levels ${JSON.stringify(grids)}, this detector uses ${JSON.stringify(this.grids)}`);
    }
    const levelList = (levels: unknown) =>
      Array.isArray(levels) && levels.length <= this.options.maxOrder && levels.every((level) => Number.isInteger(level));
    if (!Array.isArray(recent) || recent.length !== this.grids.length || !recent.every(levelList) ||
      new Set(recent.map((levels) => levels.length)).size > 1) {
      throw new TypeError(`contextual-novelty snapshot has malformed recent levels (order ${this.options.maxOrder} expected)`);
    }
    if (!Array.isArray(seen) || !seen.every((key) => typeof key === "string")) {
      throw new TypeError("contextual-novelty snapshot has malformed patterns");
    }
    const bound = (value: unknown) => value === null || (typeof value === "number" && Number.isFinite(value));
    if (!bound(runningMin) || !bound(runningMax)) throw new TypeError("contextual-novelty snapshot has a malformed running range");
    this.range.restore(snapshot.range); // validates first, before anything of this detector changes
    for (let grid = 0; grid < this.grids.length; grid++) this.recent[grid] = [...recent[grid]];
    this.seen.clear();
    for (const key of seen) this.seen.add(key);
    this.runningMin = runningMin ?? Number.POSITIVE_INFINITY;
    this.runningMax = runningMax ?? Number.NEGATIVE_INFINITY;
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
