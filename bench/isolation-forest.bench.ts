// Isolation Forest: scoring throughput (one point per call, and 1000-point batches through scoreFlat) and fit time,
// 4 features, 100 trees, 256 samples per tree. Target: >= 150k points/s on the 2-core machines.
import { IsolationForest } from "../src/core/isolation-forest";
import { printFigure, ratePerSecond, repeat } from "./measure";

const REPETITIONS = 7;
const FEATURES = 4;
const POINTS = 200_000;
const BATCH = 1000;

/** Deterministic normal rows (Box-Muller over a Park-Miller generator), row-major; 1 in 500 rows is shifted. */
function gaussianMatrix(rows: number, seed: number): Float64Array {
  const values = new Float64Array(rows * FEATURES);
  let state = seed;
  const uniform = () => {
    state = (state * 16807) % 2147483647;
    return state / 2147483647;
  };
  for (let i = 0; i < values.length; i++) values[i] = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  for (let row = 0; row < rows; row += 500) values[row * FEATURES] += 6;
  return values;
}

function asRows(values: Float64Array, rows: number): number[][] {
  return Array.from({ length: rows }, (_, row) => Array.from(values.subarray(row * FEATURES, (row + 1) * FEATURES)));
}

export async function main(): Promise<void> {
  const training = asRows(gaussianMatrix(1000, 7), 1000);
  const forest = new IsolationForest({ nEstimators: 100, maxSamples: 256, seed: 42 }).fit(training);
  const points = gaussianMatrix(POINTS, 11);
  const pointRows = Array.from({ length: POINTS }, (_, row) => points.subarray(row * FEATURES, (row + 1) * FEATURES));

  let sink = 0;
  printFigure(
    await repeat("iforest scoreOne: 4 features, 100 trees, psi 256", "points/s", REPETITIONS, () =>
      ratePerSecond(POINTS, () => {
        for (let i = 0; i < POINTS; i++) sink += forest.scoreOne(pointRows[i]);
      }),
    ),
  );

  const scores = new Float64Array(BATCH);
  printFigure(
    await repeat(`iforest scoreFlat: batches of ${BATCH}, same model`, "points/s", REPETITIONS, () =>
      ratePerSecond(POINTS, () => {
        for (let start = 0; start < POINTS; start += BATCH) {
          forest.scoreFlat(points.subarray(start * FEATURES, (start + BATCH) * FEATURES), BATCH, scores);
          sink += scores[0];
        }
      }),
    ),
  );

  for (const rows of [1000, 10_000]) {
    const data = asRows(gaussianMatrix(rows, 3), rows);
    let seed = 0;
    printFigure(
      await repeat(`iforest fit: ${rows} rows (includes scoring them for the threshold)`, "ms", REPETITIONS, () => {
        const started = process.hrtime.bigint();
        new IsolationForest({ nEstimators: 100, maxSamples: 256, seed: seed++ }).fit(data);
        return Number(process.hrtime.bigint() - started) / 1e6;
      }),
    );
  }

  const json = JSON.stringify(forest);
  console.log(`iforest model size: ${forest.toJSON().trees.feature.length} nodes, ${(json.length / 1024).toFixed(0)} KB of JSON`);
  if (!Number.isFinite(sink)) console.log("(non-finite score sum?)");
}
