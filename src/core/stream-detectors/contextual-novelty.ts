// Contextual novelty detector, in the spirit of NAB's CAD OSE (written from its published description, not from
// its code): each value is cut into a few levels of the value range, on several grids; the detector remembers
// which level followed each context (the levels of the rows just before, and the time of day) and scores a row by
// the share of its contexts that never led to its level before. A pattern is learnt the first time it is seen, so
// a repeated pattern stops scoring, while a level, a step or a time-of-day behaviour the series never showed
// scores high. The patterns seen are kept in pattern-memory.ts: a bitset of every possible pattern for the usual
// grids, text keys where there would be too many possible patterns.
import { MAX_PATTERN_BITS, PatternBits, PatternKeys, type PatternMemory } from "./pattern-memory";
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
  /** 1: patterns as text keys (`seen`); 2: as a bitset (`seenBits`). Version 1 is still read by a bitset detector. */
  version: 1 | 2;
  /** The grids' level counts it learnt with: patterns of other grids mean nothing to this one. */
  grids: number[];
  range: RangeEstimateSnapshot;
  recent: number[][];
  seen?: string[];
  /** Base64 of one bit per possible pattern (pattern-memory.ts). */
  seenBits?: string;
  /** null before the first value (JSON has no Infinity). */
  runningMin: number | null;
  runningMax: number | null;
}

export class ContextualNovelty implements StreamDetector {
  private readonly range: RangeEstimate;
  private readonly grids: number[];
  /** Per grid, the levels of the last maxOrder rows, most recent last. */
  private readonly recent: number[][];
  /** Context-and-level patterns seen so far. */
  private patterns: PatternMemory;
  private runningMin = Number.POSITIVE_INFINITY;
  private runningMax = Number.NEGATIVE_INFINITY;

  /** `maxPatternBits`: the largest pattern space kept as a bitset (replaceable in tests, to compare with text keys). */
  constructor(private readonly options: ContextualNoveltyOptions, context: SeriesContext, private readonly maxPatternBits = MAX_PATTERN_BITS) {
    this.range = new RangeEstimate(options.range, context, options.rangePadding);
    this.grids = typeof options.levels === "number" ? [options.levels] : [...options.levels];
    this.recent = this.grids.map(() => []);
    this.patterns = this.newPatterns();
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
      unseen += this.patterns.learnTransitions(grid, level, recent, order);
      contexts += order;
      if (dayPart >= 0) {
        if (this.patterns.learnDayPart(grid, dayPart, level)) unseen++;
        contexts++;
      }
      recent.push(level);
      if (recent.length > maxOrder) recent.shift();
    }
    if (order < maxOrder) return 0; // no full context yet
    return onAlertScale(unseen / contexts, this.options.alertNovelty);
  }

  snapshot(): ContextualNoveltySnapshot {
    const patterns = this.patterns.toState();
    return {
      version: "seenBits" in patterns ? 2 : 1,
      grids: [...this.grids],
      range: this.range.snapshot(),
      recent: this.recent.map((levels) => [...levels]),
      ...patterns,
      runningMin: Number.isFinite(this.runningMin) ? this.runningMin : null,
      runningMax: Number.isFinite(this.runningMax) ? this.runningMax : null,
    };
  }

  /** Takes over what a snapshot learnt; throws, changing nothing, when it is malformed or was learnt on other grids
   * (another `levels`) or another order or range mode. */
  restore(snapshot: ContextualNoveltySnapshot): void {
    if (snapshot === null || typeof snapshot !== "object" || (snapshot.version !== 1 && snapshot.version !== 2)) {
      throw new TypeError("contextual-novelty snapshot is not a version 1 or 2 snapshot");
    }
    const { grids, recent, seen, runningMin, runningMax } = snapshot;
    if (!Array.isArray(grids) || grids.join(",") !== this.grids.join(",")) {
      throw new TypeError(`contextual-novelty snapshot was learnt with levels ${JSON.stringify(grids)}, this detector uses ${JSON.stringify(this.grids)}`);
    }
    // A level is -1 (below the range) to the grid's level count (above it); anything else could not have been learnt.
    const levelList = (levels: unknown, grid: number) =>
      Array.isArray(levels) && levels.length <= this.options.maxOrder &&
      levels.every((level) => Number.isInteger(level) && level >= -1 && level <= this.grids[grid]);
    if (!Array.isArray(recent) || recent.length !== this.grids.length || !recent.every(levelList) ||
      new Set(recent.map((levels) => levels.length)).size > 1) {
      throw new TypeError(`contextual-novelty snapshot has malformed recent levels (order ${this.options.maxOrder} expected)`);
    }
    if (snapshot.version === 1 && (!Array.isArray(seen) || !seen.every((key) => typeof key === "string"))) {
      throw new TypeError("contextual-novelty snapshot has malformed patterns");
    }
    const bound = (value: unknown) => value === null || (typeof value === "number" && Number.isFinite(value));
    if (!bound(runningMin) || !bound(runningMax)) throw new TypeError("contextual-novelty snapshot has a malformed running range");
    const patterns = this.patternsFrom(snapshot);
    this.range.restore(snapshot.range); // validates first, before anything of this detector changes
    for (let grid = 0; grid < this.grids.length; grid++) this.recent[grid] = [...recent[grid]];
    this.patterns = patterns;
    this.runningMin = runningMin ?? Number.POSITIVE_INFINITY;
    this.runningMax = runningMax ?? Number.NEGATIVE_INFINITY;
  }

  private newPatterns(): PatternBits | PatternKeys {
    const layout = { grids: this.grids, maxOrder: this.options.maxOrder, dayParts: this.options.dayParts };
    return PatternBits.forLayout(layout, this.maxPatternBits) ?? new PatternKeys();
  }

  /** The patterns of a snapshot in this detector's form; throws when they are malformed or of another layout. */
  private patternsFrom(snapshot: ContextualNoveltySnapshot): PatternMemory {
    const patterns = this.newPatterns();
    if (patterns instanceof PatternKeys) {
      if (snapshot.version !== 1) throw new TypeError("contextual-novelty snapshot holds its patterns as a bitset, this detector keeps text keys");
      return new PatternKeys(snapshot.seen);
    }
    if (snapshot.version === 1) patterns.loadKeys(snapshot.seen!);
    else patterns.loadBits(snapshot.seenBits);
    return patterns;
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
