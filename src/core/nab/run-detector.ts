// Runs a stream detector configuration over every series of a NAB corpus, telling it what NAB tells its detectors:
// the probationary length (its warm-up) and the series' min and max (its range, used only in range mode "configured").
import { scoreSeries } from "../stream-detectors/score-series";
import type { DetectorSpec } from "../stream-detectors/spec";
import type { SeriesContext } from "../stream-detectors/types";
import type { NabCorpus, NabSeries } from "./corpus";
import { probationaryLength } from "./row-weights";
import type { ScoredSeries } from "./scorer";

export function nabSeriesContext(values: Float64Array): SeriesContext {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const value of values) {
    if (value < min) min = value;
    if (value > max) max = value;
  }
  return { warmupRows: probationaryLength(values.length), range: { min, max } };
}

export function runDetectorOnSeries(spec: DetectorSpec, series: Pick<NabSeries, "table">): Float64Array {
  const { times, values } = series.table;
  return scoreSeries(spec, times, values, nabSeriesContext(values));
}

export function runDetectorOnCorpus(spec: DetectorSpec, corpus: NabCorpus): ScoredSeries[] {
  return corpus.series.map((series) => ({ series, scores: runDetectorOnSeries(spec, series) }));
}
