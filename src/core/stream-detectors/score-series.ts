// Runs a detector configuration over a whole series held in memory, row by row in order, as a flow would feed it.
import { createStreamDetector, type DetectorSpec } from "./spec";
import type { SeriesContext } from "./types";

export function scoreSeries(spec: DetectorSpec, times: ArrayLike<number>, values: ArrayLike<number>, context: SeriesContext): Float64Array {
  const detector = createStreamDetector(spec, context);
  const scores = new Float64Array(values.length);
  for (let row = 0; row < values.length; row++) scores[row] = detector.score(times[row], values[row]);
  return scores;
}
