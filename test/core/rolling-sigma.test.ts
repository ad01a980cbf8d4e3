import assert from "node:assert/strict";
import type { SensorEvent } from "../../src/core/event";
import { RollingSigma, snapshotJson, type RollingSigmaOptions, type RollingSigmaSnapshotV2 } from "../../src/core/rolling-sigma";
import type { RollingWindow } from "../../src/core/rolling-stats";
import { gaussian } from "../support/seeded-noise";

/** Brute force over the previous values: mean, sample std, z and flag as the detector should report them. */
type NaiveOptions = Required<Pick<RollingSigmaOptions, "windowSize" | "k" | "minSamples" | "sigmaFloor" | "direction">>;
function naiveJudgement(previous: number[], value: number, options: NaiveOptions) {
  const window = previous.slice(-options.windowSize);
  if (window.length < options.minSamples) return { mean: null, std: null, z: null, flag: false };
  const mean = window.reduce((sum, x) => sum + (x - window[0]), 0) / window.length + window[0];
  const std = Math.sqrt(window.reduce((sum, x) => sum + (x - mean) ** 2, 0) / (window.length - 1));
  const z = (value - mean) / Math.max(std, options.sigmaFloor);
  const flag = options.direction === "upper" ? z > options.k : options.direction === "lower" ? z < -options.k : Math.abs(z) > options.k;
  return { mean, std, z, flag };
}

const event = (sensorId: string, readings: Record<string, number>): SensorEvent => ({
  eventId: `${sensorId}:1`,
  sensorId,
  timestamp: 1,
  readings,
});

/** Feeds `count` noisy values (mean 20, std 1) to one sensor-metric. */
function warmUp(detector: RollingSigma, sensorId: string, metric: string, count: number, seed = 1): void {
  const noise = gaussian(seed);
  for (let i = 0; i < count; i++) detector.check(sensorId, metric, 20 + noise());
}

describe("core/rolling-sigma RollingSigma", () => {
  it("judges each value against the previous windowSize values exactly like a brute-force reference, 1e6 offset included", () => {
    const options = { windowSize: 40, k: 2.5, minSamples: 10, sigmaFloor: 1e-9, direction: "both" as const };
    for (const offset of [0, 1e6]) {
      const detector = new RollingSigma(options);
      const noise = gaussian(7);
      const previous: number[] = [];
      let flags = 0;
      for (let i = 0; i < 200 * options.windowSize; i++) {
        // occasional spikes so that both outcomes are exercised
        const value = offset + noise() * 2 + (i % 97 === 0 ? 15 : 0);
        const result = detector.check("s1", "vibration", value);
        const expected = naiveJudgement(previous, value, options);
        if (expected.mean === null) {
          assert.deepEqual(result, expected, `warm-up result at ${i}`);
        } else {
          assert.ok(Math.abs((result.mean as number) - expected.mean) < 1e-8, `mean at ${i}`);
          assert.ok(Math.abs((result.std as number) - (expected.std as number)) < 1e-8 * (expected.std as number), `std at ${i}`);
          assert.ok(Math.abs((result.z as number) - (expected.z as number)) < 1e-6, `z at ${i}`);
          // away from the threshold itself the decision must agree
          if (Math.abs(Math.abs(expected.z as number) - options.k) > 1e-6) assert.equal(result.flag, expected.flag, `flag at ${i}`);
        }
        if (result.flag) flags++;
        previous.push(value);
      }
      assert.ok(flags > 80, `spikes flagged: ${flags}`);
    }
  });

  it("does not flag before minSamples values, even a huge outlier, and reports nulls while warming up", () => {
    const detector = new RollingSigma({ windowSize: 100, minSamples: 30 });
    warmUp(detector, "s1", "temperature", 29);
    assert.deepEqual(detector.check("s1", "temperature", 1e6), { mean: null, std: null, z: null, flag: false });
    const fresh = new RollingSigma({ windowSize: 100, minSamples: 30 });
    warmUp(fresh, "s1", "temperature", 30);
    const result = fresh.check("s1", "temperature", 1e6);
    assert.equal(result.flag, true);
    assert.ok((result.z as number) > 1000);
  });

  it("flags a spike with the statistics of the window before it (the spike does not dilute its own z)", () => {
    const detector = new RollingSigma({ windowSize: 50, minSamples: 10, k: 3 });
    for (let i = 0; i < 50; i++) detector.check("s1", "m", i % 2 === 0 ? 10 : 12); // mean 11, std ≈ 1.01
    const result = detector.check("s1", "m", 16);
    assert.equal(result.mean, 11);
    assert.ok(result.flag, `z = ${result.z}`);
    assert.ok(Math.abs((result.z as number) - 5 / (result.std as number)) < 1e-12);
  });

  it("honours the direction: upper flags only high readings, lower only low ones, both either", () => {
    const verdicts: Record<string, [boolean, boolean]> = {};
    for (const direction of ["both", "upper", "lower"] as const) {
      const detector = new RollingSigma({ windowSize: 100, minSamples: 30, direction });
      warmUp(detector, "s1", "m", 100);
      const high = detector.check("s1", "m", 40).flag;
      warmUp(detector, "s1", "m", 100, 2);
      const low = detector.check("s1", "m", 0).flag;
      verdicts[direction] = [high, low];
    }
    assert.deepEqual(verdicts, { both: [true, true], upper: [true, false], lower: [false, true] });
  });

  it("uses sigmaFloor on a constant series: z stays finite and the first change is flagged", () => {
    const detector = new RollingSigma({ windowSize: 20, minSamples: 5 });
    for (let i = 0; i < 50; i++) {
      const result = detector.check("s1", "pressure", 4.2);
      if (i >= 5) assert.deepEqual(result, { mean: 4.2, std: 0, z: 0, flag: false });
    }
    const change = detector.check("s1", "pressure", 4.3);
    assert.equal(change.flag, true);
    assert.ok(Number.isFinite(change.z), `z = ${change.z}`);
    const tolerant = new RollingSigma({ windowSize: 20, minSamples: 5, sigmaFloor: 0.05 });
    for (let i = 0; i < 20; i++) tolerant.check("s1", "pressure", 4.2);
    assert.equal(tolerant.check("s1", "pressure", 4.3).flag, false, "a change of 2 floors is under k = 3");
    assert.equal(tolerant.check("s1", "pressure", 4.5).flag, true, "the window now holds one 4.3: std ≈ 0.022 < floor, z = 0.295 / 0.05");
  });

  it("keeps sensors and metrics apart: one sensor's history does not move another's statistics", () => {
    const detector = new RollingSigma({ windowSize: 100, minSamples: 30 });
    warmUp(detector, "pump-1", "vibration", 100);
    for (let i = 0; i < 100; i++) detector.check("pump-2", "vibration", 1000 + (i % 3)); // a different level
    warmUp(detector, "pump-1", "temperature", 100, 9);
    const pump1 = detector.check("pump-1", "vibration", 1000);
    const pump2 = detector.check("pump-2", "vibration", 1000);
    assert.equal(pump1.flag, true);
    assert.equal(pump2.flag, false);
    assert.ok(Math.abs((pump1.mean as number) - 20) < 0.5);
    assert.equal(detector.sensorCount, 2);
    assert.equal(detector.windowCount, 3);
    assert.equal(detector.readyWindowCount, 3);
  });

  describe("processEvent", () => {
    it("adds detectors.rolling3Sigma for every metric, keeps readings and other detectors, and says when it is ready", () => {
      const detector = new RollingSigma({ windowSize: 10, minSamples: 5 });
      const noise = gaussian(3);
      for (let i = 0; i < 5; i++) {
        const result = detector.processEvent(event("s1", { a: 1 + 0.1 * noise(), b: 5 + 0.1 * noise() }));
        assert.equal(result.ready, false);
        assert.equal(result.anomaly, false);
      }
      const spike = event("s1", { a: 1, b: 50 });
      spike.detectors = { isolationForest: { score: 0.4, anomaly: false, threshold: 0.6, modelVersion: 1 } };
      const result = detector.processEvent(spike);
      assert.equal(spike.detectors.rolling3Sigma, result);
      assert.deepEqual(spike.readings, { a: 1, b: 50 });
      assert.ok(spike.detectors.isolationForest);
      assert.equal(result.ready, true);
      assert.equal(result.anomaly, true);
      assert.deepEqual(Object.keys(result.metrics), ["a", "b"]);
      assert.equal(result.metrics.a.flag, false);
      assert.equal(result.metrics.b.flag, true);
      // a metric seen for the first time makes the event not ready
      assert.equal(detector.processEvent(event("s1", { a: 1, c: 3 })).ready, false);
    });

    it("judges only the configured metrics when a list is given", () => {
      const detector = new RollingSigma({ windowSize: 10, minSamples: 5, metrics: ["vibration"] });
      const result = detector.processEvent(event("s1", { vibration: 2, temperature: 40 }));
      assert.deepEqual(Object.keys(result.metrics), ["vibration"]);
      const none = detector.processEvent(event("s2", { temperature: 40 }));
      assert.deepEqual(none, { anomaly: false, ready: false, metrics: {} });
      assert.equal(detector.sensorCount, 1, "no empty entry for a sensor without configured metrics");
    });
  });

  it("continues with identical results after snapshot → JSON text → restore into a new detector", () => {
    const options = { windowSize: 60, minSamples: 20 };
    const original = new RollingSigma(options);
    const noise = gaussian(11);
    const sensors = ["a", "b", "c", "__proto__"];
    for (let i = 0; i < 5000; i++) original.check(sensors[i % 4], i % 3 ? "x" : "y", 1e6 + noise() + (i % 101 === 0 ? 9 : 0));
    original.check("d", "x", 1); // a window still warming up
    const snapshot = original.snapshot();
    assert.equal(snapshot.version, 3, "count windows are saved packed");
    const text = snapshotJson(snapshot);
    assert.deepEqual(JSON.parse(text), JSON.parse(JSON.stringify(snapshot)), "snapshotJson writes what JSON.stringify writes");
    const restored = new RollingSigma(options);
    restored.restore(JSON.parse(text));
    assert.equal(restored.sensorCount, original.sensorCount);
    assert.equal(restored.readyWindowCount, original.readyWindowCount);
    for (let i = 0; i < 5000; i++) {
      const sensor = i % 5 === 4 ? "d" : sensors[i % 4];
      const value = 1e6 + noise() + (i % 89 === 0 ? 9 : 0);
      assert.deepEqual(restored.check(sensor, i % 3 ? "x" : "y", value), original.check(sensor, i % 3 ? "x" : "y", value), `event ${i}`);
    }
  });

  it("refuses a snapshot taken with another windowSize and keeps its own windows", () => {
    const small = new RollingSigma({ windowSize: 50, minSamples: 10 });
    warmUp(small, "s1", "m", 50);
    const detector = new RollingSigma({ windowSize: 100 });
    warmUp(detector, "s2", "m", 10);
    assert.throws(
      () => detector.restore(small.snapshot()),
      /taken with a count window of 50 readings, the detector uses a count window of 100 readings/,
    );
    assert.equal(detector.sensorCount, 1);
    assert.ok(detector.window("s2", "m"));
    assert.throws(() => detector.restore({ nonsense: true } as never), /not a version 1, 2 or 3 snapshot/);
  });

  it("still restores a version 2 snapshot of count windows (one object per window, written before version 3)", () => {
    const original = new RollingSigma({ windowSize: 30, minSamples: 10 });
    const noise = gaussian(4);
    for (let i = 0; i < 400; i++) original.check(`s${i % 4}`, "m", 20 + noise());
    const v2: RollingSigmaSnapshotV2 = {
      version: 2,
      windowMode: "count",
      windowSize: 30,
      sensors: [0, 1, 2, 3].map((s) => [`s${s}`, [["m", (original.window(`s${s}`, "m") as RollingWindow).toJSON()]]]),
    };
    const restored = new RollingSigma({ windowSize: 30, minSamples: 10 });
    restored.restore(JSON.parse(JSON.stringify(v2)));
    assert.equal(restored.readyWindowCount, 4);
    for (let i = 0; i < 200; i++) {
      const value = 20 + noise();
      assert.deepEqual(restored.check(`s${i % 4}`, "m", value), original.check(`s${i % 4}`, "m", value));
    }
  });

  it("refuses a version 3 snapshot whose packed windows do not match its sensors, and keeps its own windows", () => {
    const source = new RollingSigma({ windowSize: 20, minSamples: 5 });
    warmUp(source, "s1", "m", 20);
    warmUp(source, "s2", "m", 8);
    const snapshot = JSON.parse(snapshotJson(source.snapshot()));
    const detector = new RollingSigma({ windowSize: 20, minSamples: 5 });
    warmUp(detector, "mine", "m", 5);
    const extraSensor = { ...snapshot, sensors: [...snapshot.sensors, ["s3", ["m"]]] };
    assert.throws(() => detector.restore(extraSensor), /window "s3\/m": the packed windows end before it/);
    const missingSensor = { ...snapshot, sensors: snapshot.sensors.slice(0, 1) };
    assert.throws(() => detector.restore(missingSensor), /"windows" holds more numbers than its sensors' windows/);
    assert.throws(() => detector.restore({ ...snapshot, windows: 42 }), /"windows" must be a base64 string/);
    assert.throws(() => detector.restore({ ...snapshot, sensors: [["s1", [7]]] }), /malformed sensor entry/);
    assert.deepEqual(
      [detector.sensorCount, Boolean(detector.window("mine", "m"))],
      [1, true],
      "a refused snapshot changes nothing",
    );
  });

  it("forgets every window on reset, so the next values warm up again", () => {
    const detector = new RollingSigma({ windowSize: 100, minSamples: 30 });
    warmUp(detector, "s1", "m", 100);
    detector.reset();
    assert.equal(detector.sensorCount, 0);
    assert.equal(detector.readyWindowCount, 0);
    assert.equal(detector.check("s1", "m", 1e9).flag, false);
  });

  it("validates every option once, naming the option and the value", () => {
    const cases: Array<[RollingSigmaOptions, RegExp]> = [
      [{ windowSize: 1 }, /: "windowSize" must be an integer from 2 to 100000 \(got 1\)$/],
      [{ windowSize: "100" as never }, /"windowSize".*\(got "100"\)/],
      [{ k: 0 }, /"k" must be a positive number.*\(got 0\)/],
      [{ k: NaN }, /"k".*\(got NaN\)/],
      [{ minSamples: 1 }, /"minSamples" must be an integer from 2 to windowSize \(100\) \(got 1\)/],
      [{ windowSize: 20, minSamples: 30 }, /"minSamples".*windowSize \(20\) \(got 30\)/],
      [{ sigmaFloor: 0 }, /"sigmaFloor" must be a positive number/],
      [{ sigmaFloor: -1 }, /"sigmaFloor".*\(got -1\)/],
      [{ direction: "up" as never }, /"direction" must be one of "both", "upper", "lower" \(got "up"\)/],
      [{ metrics: [""] }, /"metrics" must be a list of metric names/],
    ];
    for (const [options, message] of cases) assert.throws(() => new RollingSigma(options), message, JSON.stringify(options));
  });

  it("defaults to a count window of 100, k 3, minSamples 30, sigmaFloor 1e-9, both directions, no cool-down; minSamples shrinks to a smaller window", () => {
    assert.deepEqual(new RollingSigma().config, {
      windowMode: "count",
      windowSize: 100,
      windowSeconds: 300,
      cooldownEvents: 0,
      cooldownSeconds: 0,
      k: 3,
      minSamples: 30,
      sigmaFloor: 1e-9,
      direction: "both",
      metrics: [],
    });
    assert.equal(new RollingSigma({ windowSize: 20 }).config.minSamples, 20);
  });
});
