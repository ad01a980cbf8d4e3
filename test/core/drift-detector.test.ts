import assert from "node:assert/strict";
import { DriftDetector, referenceSampleOf, type DriftCheck } from "../../src/core/drift-detector";
import { gaussian } from "../support/seeded-noise";

const T0 = Date.UTC(2025, 0, 1);

/** Rows of two features: vibration ~ N(2.5 + shift, 0.25), temperature ~ N(45, 1.5). */
function rows(count: number, seed: number, shift = 0): number[][] {
  const noise = gaussian(seed);
  return Array.from({ length: count }, () => [2.5 + shift + 0.25 * noise(), 45 + 1.5 * noise()]);
}

/** Feeds rows one per second of event time from `start`; returns the checks that ran. */
function feed(detector: DriftDetector, data: number[][], start = T0): DriftCheck[] {
  const checks: DriftCheck[] = [];
  data.forEach((row, index) => {
    const check = detector.add(row, 0, start + index * 1000);
    if (check) checks.push(check);
  });
  return checks;
}

describe("DriftDetector (core)", () => {
  const options = { features: ["vibration", "temperature"], windowSize: 200, checkEveryEvents: 100, checkEveryMs: 0, alpha: 0.05 };

  it("checks every N rows once the window is full, and finds no drift in data like the reference", () => {
    const detector = new DriftDetector(options);
    detector.setReference(rows(1000, 1));
    const checks = feed(detector, rows(1000, 2));
    // Window full at row 200 (100 rows since the start, so due), then every 100 rows: 200, 300, …, 1000.
    assert.equal(checks.length, 9);
    assert.ok(checks.every((check) => !check.drift), `p-values ${checks.map((check) => check.pValue.toFixed(3)).join(", ")}`);
    assert.equal(checks[0].window.events, 200);
    assert.equal(checks[0].threshold, 0.025, "Bonferroni: alpha / 2 features");
    assert.deepEqual(checks[0].features.map((feature) => feature.feature), ["vibration", "temperature"]);
  });

  it("flags a mean shift of one feature, naming it, with the tested window's time range", () => {
    const detector = new DriftDetector(options);
    detector.setReference(rows(1000, 1));
    feed(detector, rows(200, 3)); // first check, no drift
    const checks = feed(detector, rows(100, 4, 1), T0 + 200_000);
    assert.equal(checks.length, 1);
    const [check] = checks;
    assert.equal(check.drift, true);
    assert.equal(check.feature, "vibration");
    assert.ok(check.pValue < 1e-10, `p ${check.pValue}`);
    assert.ok(check.features[1].pValue > 0.025, "temperature did not move");
    assert.deepEqual(check.window, { events: 200, from: T0 + 100_000, to: T0 + 299_000 });
  });

  it("checks by event time when configured so, counting from the last check", () => {
    const detector = new DriftDetector({ ...options, checkEveryEvents: 0, checkEveryMs: 60_000 });
    detector.setReference(rows(500, 1));
    const data = rows(400, 5);
    const checks: number[] = [];
    // 2 s per row: the window (200 rows) is full at 398 s; then a check every 60 s of event time.
    data.forEach((row, index) => {
      const check = detector.add(row, 0, T0 + index * 2000);
      if (check) checks.push((check.at - T0) / 1000);
    });
    assert.deepEqual(checks, [398, 458, 518, 578, 638, 698, 758]);
  });

  it("does not check without a reference, before the window is full, or when told not to", () => {
    const detector = new DriftDetector(options);
    assert.equal(feed(detector, rows(300, 6)).length, 0, "no reference");
    detector.setReference(rows(500, 1));
    detector.clearWindow();
    assert.equal(feed(detector, rows(199, 7)).length, 0, "window not full");
    assert.equal(detector.add([2.5, 45], 0, T0, false), null, "allowCheck false only fills");
    assert.equal(detector.windowFull, true);
    assert.equal(new DriftDetector({ ...options, checkEveryEvents: 0 }).enabled, false);
  });

  it("returns the window oldest first with its time range, and the reference as sorted arrays", () => {
    const detector = new DriftDetector({ ...options, windowSize: 10 });
    for (let i = 0; i < 13; i++) detector.add([i, -i], 0, T0 + i, false);
    const { rows: window, from, to } = detector.windowRows();
    assert.deepEqual(window.map((row) => row[0]), [3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    assert.deepEqual([from, to], [T0 + 3, T0 + 12]);
    detector.setReference([[3, 1], [1, 2], [2, 0]]);
    assert.deepEqual(detector.referenceSample(), [[1, 2, 3], [0, 1, 2]]);
    const restored = new DriftDetector({ ...options, windowSize: 10 });
    restored.setReferenceSample(detector.referenceSample());
    assert.deepEqual(restored.referenceSample(), [[1, 2, 3], [0, 1, 2]]);
  });

  it("caps the reference at referenceSize evenly spaced rows", () => {
    const data = Array.from({ length: 10_000 }, (_, i) => [i]);
    const [column] = referenceSampleOf(data, 1, 100);
    assert.equal(column.length, 100);
    assert.deepEqual([column[0], column[1], column[99]], [0, 100, 9900]);
  });

  it("rejects bad options and a damaged reference, naming them", () => {
    assert.throws(() => new DriftDetector({ ...options, windowSize: 5 }), /"windowSize" must be an integer of at least 10 \(got 5\)/);
    assert.throws(() => new DriftDetector({ ...options, alpha: 0 }), /"alpha" must be a number between 0 and 1 \(got 0\)/);
    assert.throws(() => new DriftDetector({ ...options, checkEveryEvents: -1 }), /"checkEveryEvents"/);
    assert.throws(() => new DriftDetector({ ...options, checkEveryMs: Number.NaN }), /"checkEveryMs"/);
    const detector = new DriftDetector(options);
    assert.throws(() => detector.setReferenceSample([[1, 2]]), /one array per feature \(2\), got 1/);
    assert.throws(() => detector.setReferenceSample([[1, 2], [1, Number.NaN]]), /reference of "temperature"/);
    assert.throws(() => detector.setReference([[1, 2]]), /at least 2 rows \(got 1\)/);
  });
});
