import assert from "node:assert/strict";
import {
  ALERT_LEVEL,
  NAMED_DETECTORS,
  createStreamDetector,
  parseDetectorSpec,
  resolveDetectorSpec,
  scoreSeries,
  type DetectorSpec,
  type SeriesContext,
} from "../../src/core/stream-detectors";
import { gaussian } from "../support/seeded-noise";

const MINUTE = 60_000;

/** A daily-cycle signal with noise, one row every 5 minutes, and a burst at rows 1500–1503. */
function signal(rowCount: number, seed = 7): { times: Float64Array; values: Float64Array } {
  const noise = gaussian(seed);
  const times = new Float64Array(rowCount);
  const values = new Float64Array(rowCount);
  for (let row = 0; row < rowCount; row++) {
    times[row] = Date.UTC(2024, 0, 1) + row * 5 * MINUTE;
    values[row] = 20 + 3 * Math.sin((2 * Math.PI * row) / 288) + 0.3 * noise() + (row >= 1500 && row < 1504 ? 12 : 0);
  }
  return { times, values };
}

const CONTEXT: SeriesContext = { warmupRows: 300, range: { min: 10, max: 40 } };

describe("stream detectors", () => {
  for (const [name, spec] of Object.entries(NAMED_DETECTORS)) {
    it(`"${name}" scores in [0, 1], alerts on a burst and is causal (a row's score ignores later rows)`, () => {
      const { times, values } = signal(2000);
      const scores = scoreSeries(spec, times, values, CONTEXT);
      assert.ok(scores.every((score) => score >= 0 && score <= 1));
      assert.ok(Math.max(...scores.subarray(1500, 1504)) >= ALERT_LEVEL, `${name} misses the burst`);
      // Same rows up to 1499, different afterwards: scores up to row 1499 must not change.
      const changed = Float64Array.from(values, (value, row) => (row >= 1500 ? value * 3 - 7 : value));
      const rescored = scoreSeries(spec, times, changed, CONTEXT);
      assert.deepEqual(rescored.subarray(0, 1500), scores.subarray(0, 1500));
    });
  }

  it("rolling sigma reaches the alert level exactly at |z| = k", () => {
    const detector = createStreamDetector({ type: "rolling-sigma", windowSize: 4, minSamples: 4, k: 2 }, CONTEXT);
    for (const value of [1, 3, 1, 3]) detector.score(0, value);
    // mean 2, sample std 1.1547: z = 2 at 2 + 2·1.1547
    assert.ok(Math.abs(detector.score(0, 2 + 2 * Math.sqrt(4 / 3)) - ALERT_LEVEL) < 1e-12);
  });

  it("the cool-down holds back alerts for the given rows after one", () => {
    const spec: DetectorSpec = { type: "rolling-sigma", windowSize: 50, minSamples: 10, k: 3, sigmaFloor: 0.1, cooldownRows: 20 };
    const values = Float64Array.from({ length: 200 }, (_, row) => (row === 100 || row === 110 || row === 130 ? 50 : 10));
    const scores = scoreSeries(spec, new Float64Array(200), values, CONTEXT);
    const alerts = [...scores].flatMap((score, row) => (score >= ALERT_LEVEL ? [row] : []));
    assert.deepEqual(alerts, [100, 130]);
  });

  it("a contextual-novelty detector learns a repeated pattern and flags a level it never saw at that time of day", () => {
    const spec: DetectorSpec = { type: "contextual-novelty", range: "configured" };
    const rows = 288 * 6;
    const times = Float64Array.from({ length: rows }, (_, row) => Date.UTC(2024, 0, 1) + row * 5 * MINUTE);
    const daily = (row: number) => 25 + 10 * Math.sin((2 * Math.PI * row) / 288);
    // Day 5: the afternoon stays at the morning's level (a normal level, at the wrong hour).
    const values = Float64Array.from({ length: rows }, (_, row) => (row >= 288 * 5 + 144 && row < 288 * 5 + 200 ? 25 : daily(row)));
    const scores = scoreSeries(spec, times, values, CONTEXT);
    assert.ok(Math.max(...scores.subarray(288 * 3, 288 * 5)) < ALERT_LEVEL, "days 4-5 repeat days 1-3");
    assert.ok(Math.max(...scores.subarray(288 * 5 + 144, 288 * 5 + 200)) >= ALERT_LEVEL);
  });

  it('"range": "configured" needs a range; "warmup" estimates one', () => {
    const spec: DetectorSpec = { type: "contextual-novelty", range: "configured" };
    assert.throws(() => createStreamDetector(spec, { warmupRows: 100 }), /"range": "configured" needs the sensor's range/);
    const { times, values } = signal(2000);
    const scores = scoreSeries({ ...spec, range: "warmup" }, times, values, { warmupRows: 300 });
    assert.ok(Math.max(...scores.subarray(1500, 1504)) >= ALERT_LEVEL);
  });

  it("config errors name the option, its path in a combination, and the allowed values", () => {
    assert.throws(() => parseDetectorSpec({ type: "rolling-sigma", windowSize: 1 }), /config "windowSize" must be an integer from 2 to 100000 \(got 1\)/);
    assert.throws(() => parseDetectorSpec({ type: "rolling-sigma", windowsize: 10 }), /config "windowsize" is not an option of a "rolling-sigma" detector/);
    assert.throws(() => parseDetectorSpec({ type: "ewma" }), /config "type" must be one of "rolling-sigma", "isolation-forest"/);
    assert.throws(
      () => parseDetectorSpec({ type: "max", members: [{ type: "rolling-sigma" }, { type: "isolation-forest", lags: 0 }] }),
      /config "members\[1\]\.lags" must be an integer from 1 to 1000 \(got 0\)/,
    );
    assert.throws(() => parseDetectorSpec({ type: "rolling-sigma", range: "auto" }), /config "range" must be one of "none", "configured", "warmup"/);
    assert.throws(() => parseDetectorSpec({ type: "isolation-forest", cooldownRows: -1 }), /config "cooldownRows" must be an integer from 0 .* or one of "auto"/);
  });

  it("resolves names, overrides and whole configurations", () => {
    assert.equal(resolveDetectorSpec("best").type, "contextual-novelty");
    assert.deepEqual(resolveDetectorSpec("rolling-3-sigma", { k: 4 }), { type: "rolling-sigma", windowSize: 100, k: 4 });
    assert.deepEqual(resolveDetectorSpec("rolling-3-sigma", { type: "isolation-forest", lags: 3 }), { type: "isolation-forest", lags: 3 });
    assert.throws(() => resolveDetectorSpec("nope"), /unknown detector "nope" \(known: rolling-3-sigma,/);
    assert.throws(() => resolveDetectorSpec("toString"), /unknown detector "toString"/);
  });
});
