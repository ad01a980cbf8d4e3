// What a stream detector is: something that scores one univariate series row by row, causally (a row's score
// depends on that row and the rows before it only), on the scale every detector here shares.

/**
 * Anomaly score scale of every stream detector: in [0, 1], and the detector's own alert (what a node would flag)
 * is exactly `score >= ALERT_LEVEL`. Below it the score still ranks rows, so a benchmark may sweep a threshold.
 */
export const ALERT_LEVEL = 0.5;

/** A sensor's physical range (a configured range, or on NAB the series' min and max as NAB hands its detectors). */
export interface ValueRange {
  min: number;
  max: number;
}

/** What a detector knows about the series before its first row. */
export interface SeriesContext {
  /** Rows the detector learns from before its alerts matter (NAB's probationary period; a node's warm-up). */
  warmupRows: number;
  /** The configured physical range, when there is one; detectors with `range: "configured"` need it. */
  range?: ValueRange;
}

export interface StreamDetector {
  /** Score of the next row of the series, in [0, 1] (see ALERT_LEVEL). Rows must come in order. */
  score(timestampMs: number, value: number): number;
}

/** Maps a strength with its own alert level onto the shared scale: [0, level) → [0, 0.5), [level, 1] → [0.5, 1]. */
export function onAlertScale(strength: number, level: number): number {
  if (!(strength > 0)) return 0;
  if (strength >= 1) return 1;
  return strength < level ? (ALERT_LEVEL * strength) / level : ALERT_LEVEL + ((1 - ALERT_LEVEL) * (strength - level)) / (1 - level);
}
