// NAB's scorer: one threshold per profile for the whole corpus, chosen by sweeping every distinct anomaly score
// (nab/optimizer.py), the raw score of each series at that threshold, and the score normalised so the null
// detector gets 0 and a perfect one 100 (nab/runner.py). Window-level precision and recall come on top.
import type { NabSeries } from "./corpus";
import type { NabProfile } from "./profiles";
import { probationaryLength, rowPositions, rowWeight, type RowPositions } from "./row-weights";

/** A series with one anomaly score per row. */
export interface ScoredSeries {
  series: NabSeries;
  scores: ArrayLike<number>;
}

/** One series under one profile at the profile's threshold. */
export interface SeriesScore {
  rawScore: number;
  /** Windows with at least one scored row (a window entirely in the probationary period is not scored). */
  windows: number;
  detectedWindows: number;
  /** Detections outside every window. */
  falsePositives: number;
  /** Detected windows over detected windows plus false positives (each window counts once); null without detections. */
  precision: number | null;
  /** Detected windows over scored windows; null for a series without windows. */
  recall: number | null;
}

export interface ProfileScore {
  profile: NabProfile;
  /** Rows scoring at or above it are detections. */
  threshold: number;
  rawScore: number;
  /** Raw score of the null detector (a constant score) and of a perfect one (A_tp per labelled window). */
  nullRawScore: number;
  perfectRawScore: number;
  /** 100 · (raw − null) / (perfect − null). */
  score: number;
  series: Record<string, SeriesScore>;
}

export interface NabScore {
  profiles: Record<string, ProfileScore>;
}

/** Per-series data reused by every profile. */
interface Prepared {
  name: string;
  scores: ArrayLike<number>;
  positions: RowPositions;
  probation: number;
  windowCount: number;
  /** Per window: whether it has a row past the probationary period (only those are scored). */
  windowScored: boolean[];
  scoredWindows: number;
}

function prepare(entries: readonly ScoredSeries[]): Prepared[] {
  return entries.map(({ series, scores }) => {
    const rowCount = series.table.times.length;
    if (scores.length !== rowCount) {
      throw new Error(`${series.name}: ${scores.length} anomaly scores for ${rowCount} rows`);
    }
    for (let row = 0; row < rowCount; row++) {
      if (!Number.isFinite(scores[row])) throw new Error(`${series.name}: the anomaly score of row ${row + 1} is not a finite number`);
    }
    const probation = probationaryLength(rowCount);
    const windowScored = series.windows.map((window) => window.last >= probation);
    return {
      name: series.name,
      scores,
      positions: rowPositions(rowCount, series.windows),
      probation,
      windowCount: series.windows.length,
      windowScored,
      scoredWindows: windowScored.filter(Boolean).length,
    };
  });
}

/** The score that stands for "detect nothing": NAB uses 1.1, above any score in [0, 1]. */
function thresholdAboveAll(prepared: readonly Prepared[]): number {
  let highest = Number.NEGATIVE_INFINITY;
  for (const entry of prepared) for (let row = 0; row < entry.scores.length; row++) highest = Math.max(highest, entry.scores[row]);
  return highest < 1.1 ? 1.1 : highest + 1;
}

/**
 * The threshold with the best summed raw score over the corpus: every scored row of every series sorted by anomaly
 * score, high to low; lowering the threshold past each distinct score adds that score's rows as detections. A
 * window is worth the weight of its best (earliest) detected row, or −A_fn while undetected. Ties go to the
 * higher threshold, as NAB's stable sort does.
 */
export function sweepThreshold(entries: readonly ScoredSeries[], profile: NabProfile): { threshold: number; rawScore: number } {
  return sweepPrepared(prepare(entries), profile);
}

function sweepPrepared(prepared: readonly Prepared[], profile: NabProfile, constantScore?: number): { threshold: number; rawScore: number } {
  let rowCount = 0;
  let windowCount = 0;
  for (const entry of prepared) rowCount += entry.scores.length - entry.probation;
  const scores = new Float64Array(rowCount);
  const weights = new Float64Array(rowCount);
  const windows = new Int32Array(rowCount);
  let at = 0;
  let startingScore = 0;
  for (const entry of prepared) {
    for (let row = entry.probation; row < entry.scores.length; row++, at++) {
      scores[at] = constantScore ?? entry.scores[row];
      weights[at] = rowWeight(entry.positions, row, profile);
      const window = entry.positions.window[row];
      windows[at] = window < 0 ? -1 : windowCount + window;
    }
    windowCount += entry.windowCount;
    startingScore -= profile.fnWeight * entry.scoredWindows;
  }
  const order = Array.from({ length: rowCount }, (_, index) => index);
  order.sort((a, b) => scores[b] - scores[a] || a - b);

  const windowScore = new Float64Array(windowCount).fill(-profile.fnWeight);
  let current = startingScore;
  let best = { threshold: thresholdAboveAll(prepared), rawScore: current };
  for (let i = 0; i < order.length; ) {
    const threshold = scores[order[i]];
    for (; i < order.length && scores[order[i]] === threshold; i++) {
      const row = order[i];
      const window = windows[row];
      if (window < 0) current += weights[row];
      else if (weights[row] > windowScore[window]) {
        current += weights[row] - windowScore[window];
        windowScore[window] = weights[row];
      }
    }
    if (current > best.rawScore) best = { threshold, rawScore: current };
  }
  return best;
}

function scoreSeriesAt(entry: Prepared, profile: NabProfile, threshold: number): SeriesScore {
  const windowScore = new Float64Array(entry.windowCount).fill(Number.NaN);
  let rawScore = 0;
  let falsePositives = 0;
  for (let row = entry.probation; row < entry.scores.length; row++) {
    if (!(entry.scores[row] >= threshold)) continue;
    const window = entry.positions.window[row];
    const weight = rowWeight(entry.positions, row, profile);
    if (window < 0) {
      rawScore += weight;
      falsePositives++;
    } else if (!(windowScore[window] >= weight)) {
      windowScore[window] = weight;
    }
  }
  let detectedWindows = 0;
  for (let window = 0; window < entry.windowCount; window++) {
    if (!entry.windowScored[window]) continue;
    if (Number.isNaN(windowScore[window])) rawScore -= profile.fnWeight;
    else {
      rawScore += windowScore[window];
      detectedWindows++;
    }
  }
  const detections = detectedWindows + falsePositives;
  return {
    rawScore,
    windows: entry.scoredWindows,
    detectedWindows,
    falsePositives,
    precision: detections === 0 ? null : detectedWindows / detections,
    recall: entry.scoredWindows === 0 ? null : detectedWindows / entry.scoredWindows,
  };
}

export interface ScoreNabOptions {
  /** Score every profile at this threshold instead of the best one NAB's sweep finds (e.g. a detector's own alert level). */
  threshold?: number;
  /** Labelled windows that set the perfect score, A_tp each (default: the windows of the given series). */
  labelledWindows?: number;
}

/** Scores a detector's output over a corpus for each profile. */
export function scoreNab(entries: readonly ScoredSeries[], profiles: readonly NabProfile[], options: ScoreNabOptions = {}): NabScore {
  const prepared = prepare(entries);
  const windowTotal = options.labelledWindows ?? prepared.reduce((sum, entry) => sum + entry.windowCount, 0);
  const result: NabScore = { profiles: {} };
  for (const profile of profiles) {
    const threshold = options.threshold ?? sweepPrepared(prepared, profile).threshold;
    const series: Record<string, SeriesScore> = {};
    let rawScore = 0;
    for (const entry of prepared) {
      const score = scoreSeriesAt(entry, profile, threshold);
      series[entry.name] = score;
      rawScore += score.rawScore;
    }
    // NAB's null detector scores 0.5 on every row; its best threshold is its raw score.
    const nullRawScore = sweepPrepared(prepared, profile, 0.5).rawScore;
    const perfectRawScore = windowTotal * profile.tpWeight;
    const span = perfectRawScore - nullRawScore;
    result.profiles[profile.name] = {
      profile,
      threshold,
      rawScore,
      nullRawScore,
      perfectRawScore,
      score: span === 0 ? 0 : (100 * (rawScore - nullRawScore)) / span,
      series,
    };
  }
  return result;
}
