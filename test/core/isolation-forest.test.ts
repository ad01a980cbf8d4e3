import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { requireSharedData } from "../support/shared-data";
import { IsolationForest, averagePathLength, type IsolationForestJSON } from "../../src/core/isolation-forest";

// Reference data made with scikit-learn (see reference.json beside it); in CI shared/ sits next to the repo clone.
const PARITY_SEEDS = [0, 1, 2, 3, 4];

function readCsv(dir: string, file: string): { header: string[]; rows: number[][] } {
  const [headerLine, ...lines] = readFileSync(path.join(dir, file), "utf8").trim().split(/\r?\n/);
  return { header: headerLine.split(","), rows: lines.map((line) => line.split(",").map(Number)) };
}

/** Ranks with ties sharing their mean rank, for Spearman's correlation. */
function ranks(values: number[]): number[] {
  const order = values.map((value, index) => ({ value, index })).sort((a, b) => a.value - b.value);
  const result = new Array<number>(values.length);
  for (let start = 0; start < order.length; ) {
    let end = start;
    while (end + 1 < order.length && order[end + 1].value === order[start].value) end++;
    for (let k = start; k <= end; k++) result[order[k].index] = (start + end) / 2;
    start = end + 1;
  }
  return result;
}

function pearson(a: number[], b: number[]): number {
  const meanA = a.reduce((sum, x) => sum + x, 0) / a.length;
  const meanB = b.reduce((sum, x) => sum + x, 0) / b.length;
  let covariance = 0;
  let varianceA = 0;
  let varianceB = 0;
  for (let i = 0; i < a.length; i++) {
    covariance += (a[i] - meanA) * (b[i] - meanB);
    varianceA += (a[i] - meanA) ** 2;
    varianceB += (b[i] - meanB) ** 2;
  }
  return covariance / Math.sqrt(varianceA * varianceB);
}

const spearman = (a: number[], b: number[]): number => pearson(ranks(a), ranks(b));

function medianOf(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Seeded standard normal rows (Box-Muller over a Park-Miller generator), so tests do not depend on Math.random. */
function gaussianRows(count: number, width: number, seed: number): number[][] {
  let state = seed;
  const uniform = () => {
    state = (state * 16807) % 2147483647;
    return state / 2147483647;
  };
  const normal = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  return Array.from({ length: count }, () => Array.from({ length: width }, normal));
}

describe("IsolationForest (core)", () => {
  const training = gaussianRows(1000, 4, 7);

  describe("parity with scikit-learn 1.2 on shared/data/iforest-parity", () => {
    it(`ranks and scores the test rows like sklearn (mean over ${PARITY_SEEDS.length} seeds)`, function () {
      const parityDir = requireSharedData(this, "iforest-parity");
      const reference = JSON.parse(readFileSync(path.join(parityDir, "reference.json"), "utf8"));
      assert.deepEqual(reference.params, { n_estimators: 100, max_samples: 256, contamination: "auto" });
      const train = readCsv(parityDir, "train.csv");
      const test = readCsv(parityDir, "test.csv");
      const featureCount = train.header.length;
      assert.deepEqual(test.header.slice(0, featureCount), train.header);
      const sklearnColumn = test.header.indexOf("sklearn_score");
      const features = test.rows.map((row) => row.slice(0, featureCount));
      const sklearnScores = test.rows.map((row) => row[sklearnColumn]);

      const ours = new Array<number>(features.length).fill(0);
      for (const seed of PARITY_SEEDS) {
        const scores = new IsolationForest({ nEstimators: 100, maxSamples: 256, seed }).fit(train.rows).score(features);
        for (let i = 0; i < ours.length; i++) ours[i] += scores[i] / PARITY_SEEDS.length;
      }
      const rankCorrelation = spearman(ours, sklearnScores);
      const medianAbsDiff = medianOf(ours.map((score, i) => Math.abs(score - sklearnScores[i])));
      console.log(
        `      iforest parity: Spearman ${rankCorrelation.toFixed(4)}, median |ours - sklearn| ${medianAbsDiff.toFixed(4)} ` +
          `(${features.length} test rows, ours averaged over seeds ${PARITY_SEEDS.join(",")}, sklearn over ${reference.seeds})`,
      );
      assert.ok(rankCorrelation >= 0.98, `Spearman ${rankCorrelation} < 0.98`);
      assert.ok(medianAbsDiff <= 0.02, `median abs diff ${medianAbsDiff} > 0.02`);
    });

    it("c(n) follows sklearn's _average_path_length (c(1) = 0, c(2) = 1, formula above 2)", () => {
      assert.equal(averagePathLength(1), 0);
      assert.equal(averagePathLength(2), 1);
      // 2 (ln(n - 1) + Euler's gamma) - 2 (n - 1) / n, worked out by hand for n = 10 and n = 256.
      assert.ok(Math.abs(averagePathLength(10) - 3.7488804844755) < 1e-12);
      assert.ok(Math.abs(averagePathLength(256) - 10.2447709201199) < 1e-12);
    });
  });

  describe("behaviour", () => {
    it("gives the same model and scores for the same seed, and a different one for another seed", () => {
      const probe = gaussianRows(50, 4, 99);
      const first = new IsolationForest({ seed: 3 }).fit(training).score(probe);
      const again = new IsolationForest({ seed: 3 }).fit(training).score(probe);
      const other = new IsolationForest({ seed: 4 }).fit(training).score(probe);
      assert.deepEqual(again, first);
      assert.notDeepEqual(other, first);
    });

    it("round-trips through JSON text with exactly the same scores and threshold", () => {
      const forest = new IsolationForest({ nEstimators: 50, contamination: 0.05 }).fit(training);
      const restored = IsolationForest.fromJSON(JSON.parse(JSON.stringify(forest)) as IsolationForestJSON);
      const probe = gaussianRows(200, 4, 5);
      assert.deepEqual(restored.score(probe), forest.score(probe));
      assert.equal(restored.threshold, forest.threshold);
      assert.deepEqual(restored.trainingSummary, forest.trainingSummary);
      assert.deepEqual(restored.options, forest.options);
    });

    it("scoreFlat and scoreOne give exactly the scores of score", () => {
      const forest = new IsolationForest({ nEstimators: 20 }).fit(training);
      const probe = gaussianRows(31, 4, 11);
      const flat = Float64Array.from(probe.flat());
      const out = new Float64Array(probe.length);
      forest.scoreFlat(flat, probe.length, out);
      const expected = forest.score(probe);
      probe.forEach((row, i) => {
        assert.equal(forest.scoreOne(Float64Array.from(row)), expected[i]);
        assert.equal(out[i], expected[i]);
      });
    });

    it("scores exactly as a plain walk of the saved node arrays (the complete-tree scoring layout loses nothing)", () => {
      const forest = new IsolationForest({ nEstimators: 30, maxSamples: 64 }).fit(training);
      const { trees, sampleSize } = forest.toJSON();
      const walk = (row: number[]) => {
        let total = 0;
        for (const root of trees.roots) {
          let node = root;
          while (trees.feature[node] >= 0) node = row[trees.feature[node]] <= trees.threshold[node] ? trees.left[node] : trees.right[node];
          total += trees.pathLength[node];
        }
        return 2 ** (-total / trees.roots.length / averagePathLength(sampleSize));
      };
      for (const row of [...gaussianRows(300, 4, 21), [9, 9, -9, 0], [0, 0, 0, 0]]) {
        assert.ok(Math.abs(forest.scoreOne(row) - walk(row)) < 1e-12);
      }
    });

    it("flags about `contamination` of the training rows when the threshold comes from contamination", () => {
      for (const contamination of [0.01, 0.05, 0.1]) {
        const forest = new IsolationForest({ contamination }).fit(training);
        const flagged = forest.score(training).filter((score) => forest.isAnomaly(score)).length;
        assert.ok(Math.abs(flagged / training.length - contamination) <= 0.002, `${flagged} of ${training.length} flagged at ${contamination}`);
      }
      assert.equal(new IsolationForest().fit(training).threshold, 0.5);
    });

    it("scores an obvious outlier above 0.6 and inliers below 0.5", () => {
      const forest = new IsolationForest().fit(training);
      const [outlier, ...inliers] = forest.score([[8, -8, 8, -8], [0, 0, 0, 0], [0.3, -0.2, 0.1, 0], [-0.5, 0.4, 0.2, -0.1]]);
      assert.ok(outlier > 0.6, `outlier scored ${outlier}`);
      assert.ok(forest.isAnomaly(outlier));
      for (const score of inliers) {
        assert.ok(score < 0.5, `inlier scored ${score}`);
        assert.equal(forest.isAnomaly(score), false);
      }
    });

    it("summarises the training scores", () => {
      const summary = new IsolationForest().fit(training).trainingSummary;
      assert.ok(summary);
      assert.equal(summary.n, training.length);
      assert.ok(summary.min <= summary.p50 && summary.p50 <= summary.p99 && summary.p99 <= summary.max);
      assert.ok(summary.mean > summary.min && summary.mean < summary.max);
    });

    it("handles constant features and duplicate rows without splitting on them", () => {
      const rows = training.map((row) => [row[0], 5, row[1]]);
      const forest = new IsolationForest({ nEstimators: 20 }).fit(rows);
      const [inside, outside] = forest.score([[0, 5, 0], [9, 5, 9]]);
      assert.ok(outside > inside);
      // All rows identical: nothing can be split, every point is as normal as the others.
      const same = new IsolationForest({ nEstimators: 5 }).fit(Array.from({ length: 10 }, () => [1, 2]));
      assert.equal(same.scoreOne([1, 2]), same.scoreOne([100, -100]));
    });

    it("caps the subsample at the number of training rows", () => {
      const forest = new IsolationForest({ maxSamples: 256 }).fit(training.slice(0, 20));
      assert.equal(forest.toJSON().sampleSize, 20);
      assert.ok(forest.scoreOne([6, 6, 6, 6]) > forest.scoreOne([0, 0, 0, 0]));
    });
  });

  describe("errors name the problem", () => {
    it("rejects bad options naming the option", () => {
      assert.throws(() => new IsolationForest({ nEstimators: 0 }), /"nEstimators" must be a positive integer \(got 0\)/);
      assert.throws(() => new IsolationForest({ nEstimators: 2.5 }), /"nEstimators"/);
      assert.throws(() => new IsolationForest({ nEstimators: 20_000 }), /"nEstimators" must be at most 10000 \(got 20000\)/);
      assert.throws(() => new IsolationForest({ maxSamples: 1 }), /"maxSamples" must be an integer between 2 and 4096 \(got 1\)/);
      assert.throws(() => new IsolationForest({ maxSamples: 5000 }), /"maxSamples"/);
      assert.throws(() => new IsolationForest({ seed: -1 }), /"seed"/);
      assert.throws(() => new IsolationForest({ contamination: 0.7 }), /"contamination" must be "auto" or a number in \(0, 0.5\] \(got 0.7\)/);
      assert.throws(() => new IsolationForest({ contamination: "high" as "auto" }), /"contamination".*"high"/);
    });

    it("rejects empty, ragged and non-finite training rows", () => {
      const forest = new IsolationForest();
      assert.throws(() => forest.fit([]), /at least one row \(got an empty array\)/);
      assert.throws(() => forest.fit([[1, 2]]), /at least 2 rows \(got 1\)/);
      assert.throws(() => forest.fit([[1, 2], [3, 4], [5]]), /row 2 has 1 values but row 0 has 2/);
      assert.throws(() => forest.fit([[1, 2], [3, NaN]]), /row 1, column 1 is not a finite number \(got NaN\)/);
      assert.throws(() => forest.fit([[1, 2], [3, "4" as unknown as number]]), /row 1, column 1 is not a finite number \(got "4"\)/);
      assert.throws(() => forest.fit([[1, 2], [Infinity, 4]]), /row 1, column 0/);
      assert.equal(forest.fitted, false);
    });

    it("refuses to score before fit and rows of the wrong width", () => {
      assert.throws(() => new IsolationForest().score([[1]]), /not trained yet/);
      const forest = new IsolationForest({ nEstimators: 5 }).fit(training);
      assert.throws(() => forest.score([[1, 2, 3]]), /row 0 has 3 values but the model expects 4/);
      assert.throws(() => forest.scoreOne([1, 2]), /row has 2 values but the model expects 4/);
    });

    it("rejects a damaged saved model", () => {
      const json = new IsolationForest({ nEstimators: 5 }).fit(training).toJSON();
      assert.throws(() => IsolationForest.fromJSON({ ...json, format: "other" } as unknown as IsolationForestJSON), /"format" is "other"/);
      const badChild = { ...json, trees: { ...json.trees, right: json.trees.right.map((child) => (child > 0 ? 0 : child)) } };
      assert.throws(() => IsolationForest.fromJSON(badChild), /has child 0 outside the tree/);
      const short = { ...json, trees: { ...json.trees, threshold: json.trees.threshold.slice(1) } };
      assert.throws(() => IsolationForest.fromJSON(short), /"trees.threshold" must be an array of/);
    });
  });
});
