import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  NAB_DEFAULT_PROFILES,
  probationaryLength,
  readNabCorpus,
  readNabResultsFolder,
  rowPositions,
  rowWeight,
  scaledSigmoid,
  scoreNab,
  type NabSeries,
  type WindowRows,
} from "../../src/core/nab";
import { requireSharedData } from "../support/shared-data";

const standard = NAB_DEFAULT_PROFILES[0];

/** A series of `rowCount` rows, one minute apart, with windows given as row ranges. */
function series(name: string, rowCount: number, windows: WindowRows[]): NabSeries {
  const times = new Float64Array(rowCount).map((_, row) => Date.UTC(2024, 0, 1) + row * 60_000);
  const timestamps = Array.from(times, (time) => new Date(time).toISOString());
  return { name, path: name, table: { timestamps, times, values: new Float64Array(rowCount) }, windows };
}

function scoresWithDetections(rowCount: number, rows: number[]): Float64Array {
  const scores = new Float64Array(rowCount);
  for (const row of rows) scores[row] = 1;
  return scores;
}

describe("NAB scorer", () => {
  it("leaves the first 15% of rows unscored, at most 750 (0.15 · 5000)", () => {
    assert.equal(probationaryLength(4032), 604);
    assert.equal(probationaryLength(1538), 230);
    assert.equal(probationaryLength(22695), 750);
  });

  it("weighs a detection A_tp on a window's left edge, less towards its right edge, −A_fp outside", () => {
    const positions = rowPositions(100, [{ first: 40, last: 49 }]);
    assert.equal(rowWeight(positions, 40, standard), 1);
    assert.ok(rowWeight(positions, 45, standard) > 0 && rowWeight(positions, 45, standard) < 1);
    // right edge: position −1/w, sigmoid just above 0
    assert.ok(Math.abs(rowWeight(positions, 49, standard) - scaledSigmoid(-1 / 10) / scaledSigmoid(-1)) < 1e-12);
    assert.equal(rowWeight(positions, 10, standard), -0.11);
    // right after the window a late detection costs little, far after it the full A_fp
    assert.ok(rowWeight(positions, 50, standard) > -0.11 * 0.3);
    assert.ok(Math.abs(rowWeight(positions, 99, standard) + 0.11) < 1e-12);
  });

  it("rewards an early detection, forgives nothing for a missed window, and normalises null to 0, perfect to 100", () => {
    const labelled = series("a/one.csv", 400, [{ first: 200, last: 219 }]);
    const perfect = scoreNab([{ series: labelled, scores: scoresWithDetections(400, [200]) }], NAB_DEFAULT_PROFILES);
    for (const profile of Object.values(perfect.profiles)) assert.ok(Math.abs(profile.score - 100) < 1e-9, profile.profile.name);
    const silent = scoreNab([{ series: labelled, scores: new Float64Array(400) }], NAB_DEFAULT_PROFILES);
    for (const profile of Object.values(silent.profiles)) assert.equal(profile.score, 0, profile.profile.name);
    assert.equal(silent.profiles.reward_low_FN_rate.nullRawScore, -2);
    const late = scoreNab([{ series: labelled, scores: scoresWithDetections(400, [215, 100]) }], NAB_DEFAULT_PROFILES);
    const lateStandard = late.profiles.standard;
    assert.ok(lateStandard.score > 0 && lateStandard.score < 100);
    assert.equal(lateStandard.series["a/one.csv"].falsePositives, 1);
    assert.equal(lateStandard.series["a/one.csv"].recall, 1);
    assert.equal(lateStandard.series["a/one.csv"].precision, 0.5);
  });

  it("counts only the best detection in a window and ignores detections in the probationary period", () => {
    const labelled = series("a/one.csv", 400, [{ first: 200, last: 219 }]);
    const once = scoreNab([{ series: labelled, scores: scoresWithDetections(400, [205]) }], [standard]);
    const many = scoreNab([{ series: labelled, scores: scoresWithDetections(400, [205, 206, 210, 219, 10, 20]) }], [standard]);
    assert.equal(many.profiles.standard.rawScore, once.profiles.standard.rawScore);
    assert.equal(many.profiles.standard.series["a/one.csv"].falsePositives, 0);
  });

  it("sweeps one threshold for the whole corpus, keeping the best raw score", () => {
    const first = series("a/first.csv", 400, [{ first: 200, last: 219 }]);
    const second = series("a/second.csv", 400, []);
    const scoresFirst = new Float64Array(400).fill(0.1);
    scoresFirst[201] = 0.8;
    const scoresSecond = new Float64Array(400).fill(0.1);
    scoresSecond[300] = 0.9; // a false positive scoring above the true one: a threshold of 0.9 is worse than 0.8
    const result = scoreNab([{ series: first, scores: scoresFirst }, { series: second, scores: scoresSecond }], [standard]);
    assert.equal(result.profiles.standard.threshold, 0.8);
    assert.equal(result.profiles.standard.series["a/second.csv"].falsePositives, 1);
  });

  it("reproduces NAB's own scores, thresholds and raw scores for the published results of null, numenta and windowedGaussian", function () {
    const root = requireSharedData(this, "nab");
    const reference = JSON.parse(readFileSync(join(root, "reference_scores.json"), "utf8"));
    const corpus = readNabCorpus(root);
    for (const detector of ["null", "numenta", "windowedGaussian"]) {
      const result = scoreNab(readNabResultsFolder(join(root, "results", detector), corpus), corpus.profiles);
      for (const profile of ["standard", "reward_low_FP_rate", "reward_low_FN_rate"]) {
        const ours = result.profiles[profile];
        const theirs = reference.optimized_thresholds_and_raw_scores[detector][profile];
        const label = `${detector} ${profile}`;
        assert.ok(Math.abs(ours.score - reference.normalized_scores[detector][profile]) < 0.5, `${label}: ${ours.score}`);
        assert.ok(Math.abs(ours.rawScore - theirs.score) < 1e-6, `${label} raw: ${ours.rawScore} vs ${theirs.score}`);
        assert.equal(ours.threshold, theirs.threshold, `${label} threshold`);
      }
    }
  });
});
