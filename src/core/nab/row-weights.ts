// NAB's weight of a detection at each row of a series (nab/sweeper.py): inside a labelled window an early
// detection earns up to A_tp, a late one less (a scaled sigmoid of the position in the window); outside, a false
// positive costs A_fp, less right after a window (a detection just late is almost forgiven).
import type { WindowRows } from "./corpus";
import type { NabProfile } from "./profiles";

/** NAB's probationary period: the first rows of a series, which are not scored (the detector is still learning). */
export function probationaryLength(rowCount: number, probationPercent = 0.15): number {
  return Math.min(Math.floor(probationPercent * rowCount), probationPercent * 5000);
}

/** 2·sigmoid(−5p) − 1: +1 far before the right edge of a window, 0 at it, towards −1 after; exactly −1 beyond p = 3. */
export function scaledSigmoid(position: number): number {
  if (position > 3) return -1;
  return 2 / (1 + Math.exp(5 * position)) - 1;
}

/** Reward of a detection on the left edge of a window before scaling; dividing by it makes that reward A_tp. */
const LEFT_EDGE = scaledSigmoid(-1);

/** Profile-independent part of the weights: the sigmoid value of each row and the window it belongs to. */
export interface RowPositions {
  /** Scaled sigmoid of the row's position (−1 before the first window). */
  sigmoid: Float64Array;
  /** Index of the row's window in the series' window list, or −1 outside every window. */
  window: Int32Array;
}

export function rowPositions(rowCount: number, windows: readonly WindowRows[]): RowPositions {
  const sigmoid = new Float64Array(rowCount);
  const window = new Int32Array(rowCount).fill(-1);
  let next = 0;
  let previousRight = -1;
  let previousWidth = 0;
  for (let row = 0; row < rowCount; row++) {
    const current = windows[next];
    if (current !== undefined && row >= current.first && row <= current.last) {
      const width = current.last - current.first + 1;
      sigmoid[row] = scaledSigmoid(-(current.last - row + 1) / width);
      window[row] = next;
      if (row === current.last) {
        previousRight = current.last;
        previousWidth = width;
        next++;
      }
    } else if (previousRight < 0) {
      sigmoid[row] = -1;
    } else {
      // A one-row window has no width to scale by: anything after it is a plain false positive.
      const position = previousWidth > 1 ? Math.abs(previousRight - row) / (previousWidth - 1) : Number.POSITIVE_INFINITY;
      sigmoid[row] = scaledSigmoid(position);
    }
  }
  return { sigmoid, window };
}

/** Weight of a detection at `row` under `profile` (positive inside a window, negative outside). */
export function rowWeight(positions: RowPositions, row: number, profile: NabProfile): number {
  const value = positions.sigmoid[row];
  return positions.window[row] >= 0 ? (value * profile.tpWeight) / LEFT_EDGE : value * profile.fpWeight;
}
