import assert from "node:assert/strict";
import type { SensorEvent, SigmaResult } from "../../src/core/event";
import { RollingSigma, type RollingSigmaOptions, type RollingSigmaSnapshotV1 } from "../../src/core/rolling-sigma";
import type { RollingTimeWindow } from "../../src/core/rolling-time-window";
import { gaussian } from "../support/seeded-noise";

const T0 = 1_700_000_000_000;
let sequence = 0;
const event = (sensorId: string, timestamp: number, readings: Record<string, number>): SensorEvent => ({
  eventId: `${sensorId}:${++sequence}`,
  sensorId,
  timestamp,
  readings,
});

/** Runs events one second apart through the detector; returns their results. */
function run(detector: RollingSigma, sensorId: string, values: number[], start = T0, metric = "m"): SigmaResult[] {
  return values.map((value, index) => detector.processEvent(event(sensorId, start + index * 1000, { [metric]: value })));
}

/** Clean readings around 20 (std 1), then `faultLength` readings 20 σ higher: a long level-shift fault. */
function levelShift(seed: number, clean: number, faultLength: number): number[] {
  const noise = gaussian(seed);
  return Array.from({ length: clean + faultLength }, (_, i) => 20 + noise() + (i >= clean ? 20 : 0));
}

/** The alerts the cool-down rule lets through from flagged event indices: a flag at least `period` events after the
 * previous alert (readings are 1 s apart, so a period in seconds is the same number of events). */
function expectedAlerts(flagged: number[], period: number): number[] {
  let last = Number.NEGATIVE_INFINITY;
  return flagged.filter((index) => (index - last >= period ? ((last = index), true) : false));
}

const indicesWhere = (results: SigmaResult[], test: (result: SigmaResult) => boolean) =>
  results.flatMap((result, index) => (test(result) ? [index] : []));

describe("core/rolling-sigma time windows", () => {
  it("judges each reading against the readings of the previous windowSeconds, like a brute-force reference", () => {
    const options = { windowMode: "time" as const, windowSeconds: 30, windowSize: 1000, minSamples: 8, k: 2.5 };
    const detector = new RollingSigma(options);
    const noise = gaussian(31);
    const previous: Array<{ value: number; time: number }> = [];
    let time = T0;
    let flags = 0;
    let warmUps = 0;
    for (let i = 0; i < 5000; i++) {
      time += i % 400 === 399 ? 45_000 : 200 + Math.round(1500 * Math.abs(noise())); // irregular, with long gaps
      const value = 1e3 + noise() + (i % 53 === 0 ? 8 : 0);
      while (previous.length > 0 && previous[0].time <= time - options.windowSeconds * 1000) previous.shift();
      const result = detector.checkAt("s1", "m", value, time);
      if (previous.length < options.minSamples) {
        assert.deepEqual(result, { mean: null, std: null, z: null, flag: false }, `warm-up at ${i}`);
        warmUps++;
      } else {
        const values = previous.map((entry) => entry.value);
        const mean = values.reduce((sum, x) => sum + x, 0) / values.length;
        const std = Math.sqrt(values.reduce((sum, x) => sum + (x - mean) ** 2, 0) / (values.length - 1));
        const z = (value - mean) / std;
        assert.ok(Math.abs((result.mean as number) - mean) < 1e-9, `mean at ${i}`);
        assert.ok(Math.abs((result.z as number) - z) < 1e-6, `z at ${i}`);
        if (Math.abs(Math.abs(z) - options.k) > 1e-6) assert.equal(result.flag, Math.abs(z) > options.k, `flag at ${i}`);
        if (result.flag) flags++;
      }
      previous.push({ value, time });
    }
    assert.ok(flags > 30, `spikes flagged: ${flags}`);
    assert.ok(warmUps > 12 * options.minSamples, `each long gap started a new warm-up: ${warmUps}`);
  });

  it("warms up again after a gap longer than the window, and readyWindowCount follows", () => {
    const detector = new RollingSigma({ windowMode: "time", windowSeconds: 60, minSamples: 10 });
    run(detector, "s1", levelShift(1, 30, 0));
    assert.equal(detector.readyWindowCount, 1);
    const [afterGap] = run(detector, "s1", [500], T0 + 3600_000);
    assert.equal(afterGap.ready, false, "an hour later the window is empty: no flag for 500");
    assert.equal(afterGap.anomaly, false);
    assert.equal(detector.readyWindowCount, 0);
  });

  it("keeps at most windowSize readings in a window, whatever the rate", () => {
    const detector = new RollingSigma({ windowMode: "time", windowSeconds: 3600, windowSize: 50, minSamples: 10 });
    const noise = gaussian(2);
    for (let i = 0; i < 1000; i++) detector.checkAt("s1", "m", noise(), T0 + i * 10);
    assert.equal(detector.window("s1", "m")?.count, 50);
  });

  it("treats late and duplicate timestamps as documented: counted, leaving in arrival order", () => {
    const detector = new RollingSigma({ windowMode: "time", windowSeconds: 10, minSamples: 2 });
    detector.checkAt("s1", "m", 1, T0 + 10_000);
    detector.checkAt("s1", "m", 3, T0 + 2_000); // 8 s late: still in the window of the newest reading
    detector.checkAt("s1", "m", 2, T0 + 10_000);
    const judged = detector.checkAt("s1", "m", 2, T0 + 11_000);
    assert.equal(judged.mean, 2, "the late 3 counts");
    assert.equal(detector.window("s1", "m")?.count, 4);
    detector.checkAt("s1", "m", 2, T0 + 20_000); // the readings at T0 + 10000 leave, and the late one between them
    assert.deepEqual(Array.from((detector.window("s1", "m") as RollingTimeWindow).readings()[1]), [T0 + 11_000, T0 + 20_000]);
  });

  it("needs a finite timestamp in time mode, naming it", () => {
    const detector = new RollingSigma({ windowMode: "time" });
    assert.throws(() => detector.check("s1", "m", 1), /a time window needs the reading's time: call checkAt/);
    assert.throws(() => detector.checkAt("s1", "m", 1, undefined as never), /"timestamp" must be a finite number of milliseconds.*\(got undefined\)/);
    assert.throws(() => detector.processEvent(event("s1", Number.NaN, { m: 1 })), /"timestamp".*\(got NaN\)/);
    assert.equal(detector.sensorCount, 0, "nothing was changed by the refused event");
  });
});

describe("core/rolling-sigma cool-down", () => {
  it("turns a long level-shift fault into one alert per cool-down; the repeats keep their evidence, marked suppressed", () => {
    const values = levelShift(3, 500, 80);
    const options: RollingSigmaOptions = { windowSize: 500, minSamples: 30 };
    const raw = run(new RollingSigma(options), "pump-1", values);
    const flagged = indicesWhere(raw, (result) => result.anomaly);
    assert.ok(flagged.length >= 30, `without a cool-down the fault raises ${flagged.length} alerts`);
    assert.equal(flagged[0], 500, "flagged from the first faulty reading");

    const once = run(new RollingSigma({ ...options, cooldownEvents: 1000 }), "pump-1", values);
    assert.deepEqual(indicesWhere(once, (result) => result.anomaly), [flagged[0]]);
    const suppressed = indicesWhere(once, (result) => result.suppressed === true);
    assert.deepEqual(suppressed, flagged.slice(1));
    for (const index of suppressed) {
      assert.equal(once[index].metrics.m.flag, true, "the metric result stays truthful");
      assert.deepEqual(once[index].metrics, raw[index].metrics);
      assert.equal(once[index].ready, true);
    }
    assert.equal(once[flagged[0]].suppressed, undefined, "an alert carries no suppressed field");

    // 10 events of cool-down: at most one alert per 11 events of the run.
    const every11 = run(new RollingSigma({ ...options, cooldownEvents: 10 }), "pump-1", values);
    const expected = expectedAlerts(flagged, 11);
    assert.deepEqual(indicesWhere(every11, (result) => result.anomaly), expected);
    assert.ok(expected.length >= 3 && expected.length <= Math.ceil(flagged.length / 11) + 1, `${expected.length} alerts`);

    // 15 s of event time (readings 1 s apart): at most one alert per 15 s.
    const timed = run(new RollingSigma({ ...options, cooldownSeconds: 15 }), "pump-1", values);
    assert.deepEqual(indicesWhere(timed, (result) => result.anomaly), expectedAlerts(flagged, 15));
  });

  it("keeps sensors apart and counts any metric of a sensor: one cool-down per sensor id", () => {
    const detector = new RollingSigma({ windowSize: 100, minSamples: 30, cooldownEvents: 50 });
    const noise = gaussian(4);
    for (let i = 0; i < 100; i++) {
      for (const sensor of ["a", "b"]) detector.processEvent(event(sensor, T0 + i * 1000, { x: 20 + noise(), y: 5 + noise() }));
    }
    const t = T0 + 200_000;
    assert.equal(detector.processEvent(event("a", t, { x: 60, y: 5 })).anomaly, true, "a: x trips, alert");
    const yTrips = detector.processEvent(event("a", t + 1000, { x: 20, y: 60 }));
    assert.equal(yTrips.anomaly, false, "a: y trips during a's cool-down: suppressed");
    assert.equal(yTrips.suppressed, true);
    assert.equal(yTrips.metrics.y.flag, true);
    assert.equal(detector.processEvent(event("b", t + 2000, { x: 60, y: 5 })).anomaly, true, "b is not cooling down");
    assert.equal(detector.coolingSensorCount, 2);
  });

  it("does not count events without a judged metric, and alerts again once the cool-down is over", () => {
    const detector = new RollingSigma({ windowSize: 50, minSamples: 20, cooldownEvents: 3, metrics: ["m"] });
    run(detector, "s1", levelShift(5, 50, 0));
    assert.equal(detector.processEvent(event("s1", T0 + 60_000, { m: 100 })).anomaly, true);
    for (let i = 0; i < 10; i++) detector.processEvent(event("s1", T0 + 61_000 + i, { other: 1 })); // not judged
    assert.equal(detector.processEvent(event("s1", T0 + 62_000, { m: 200 })).suppressed, true, "still 3 judged events to go");
    run(detector, "s1", [20, 20], T0 + 63_000);
    assert.equal(detector.processEvent(event("s1", T0 + 66_000, { m: 300 })).anomaly, true);
  });

  it("forgets cool-downs on reset", () => {
    const detector = new RollingSigma({ windowSize: 50, minSamples: 20, cooldownEvents: 1000 });
    run(detector, "s1", levelShift(6, 50, 0));
    assert.equal(detector.processEvent(event("s1", T0 + 60_000, { m: 100 })).anomaly, true);
    detector.reset();
    assert.equal(detector.coolingSensorCount, 0);
    run(detector, "s1", levelShift(6, 50, 0), T0 + 70_000);
    assert.equal(detector.processEvent(event("s1", T0 + 130_000, { m: 100 })).anomaly, true);
  });
});

describe("core/rolling-sigma snapshots (version 2, and version 1 still read)", () => {
  it("continues with identical results, cool-downs included, after snapshot → JSON text → restore (time mode)", () => {
    const options: RollingSigmaOptions = { windowMode: "time", windowSeconds: 120, windowSize: 200, minSamples: 20, cooldownSeconds: 30 };
    const original = new RollingSigma(options);
    const noise = gaussian(7);
    const sensors = ["a", "b", "__proto__"];
    // Three sensors in turn, 0.7 s apart; each gets a run of 3 spikes every 100 of its own readings (210 s, longer
    // than the window): the first of a run is an alert, the next two fall in its 30 s cool-down.
    const readingsAt = (i: number) => ({ x: 1e6 + noise() + (Math.floor(i / 3) % 100 < 3 ? 30 : 0), y: 5 + noise() });
    for (let i = 0; i < 3005; i++) original.processEvent(event(sensors[i % 3], T0 + i * 700, readingsAt(i)));
    assert.equal(original.coolingSensorCount, 3, "every sensor is mid-cool-down at the snapshot");
    const snapshot = JSON.parse(JSON.stringify(original.snapshot()));
    assert.equal(snapshot.version, 2);
    assert.equal(snapshot.windowMode, "time");
    assert.equal(snapshot.windowSeconds, 120);
    const restored = new RollingSigma(options);
    restored.restore(snapshot);
    assert.equal(restored.readyWindowCount, original.readyWindowCount);
    assert.equal(restored.coolingSensorCount, original.coolingSensorCount);
    let suppressed = 0;
    for (let i = 3005; i < 6000; i++) {
      const readings = readingsAt(i); // generated once, a copy to each detector
      const a = restored.processEvent(event(sensors[i % 3], T0 + i * 700, { ...readings }));
      const b = original.processEvent(event(sensors[i % 3], T0 + i * 700, { ...readings }));
      assert.deepEqual(a, b, `event ${i}`);
      if (a.suppressed) suppressed++;
    }
    assert.ok(suppressed >= 10, `the cool-down was exercised after the restore (${suppressed} suppressed)`);
  });

  it("restores a version 1 snapshot (count windows, no cool-down) with no new warm-up", () => {
    const values = new Float64Array([19, 21, 20, 19.5, 20.5]);
    const v1: RollingSigmaSnapshotV1 = {
      version: 1,
      windowSize: 5,
      sensors: [["pump-1", [["vibration", { windowSize: 5, count: 5, mean: 20, m2: 2.5, sinceExact: 5, values: Buffer.from(values.buffer).toString("base64") }]]]],
    };
    const detector = new RollingSigma({ windowSize: 5, minSamples: 5, cooldownEvents: 10 });
    assert.equal(detector.windowMismatch(v1), null);
    detector.restore(JSON.parse(JSON.stringify(v1)));
    assert.equal(detector.readyWindowCount, 1);
    const result = detector.processEvent(event("pump-1", T0, { vibration: 40 }));
    assert.equal(result.anomaly, true);
    assert.equal(result.metrics.vibration.mean, 20);
    assert.throws(() => new RollingSigma({ windowMode: "time", windowSize: 5, minSamples: 5 }).restore(v1), /count window of 5 readings/);
  });

  it("names the difference when the window changed, refuses the windows but can keep the cool-downs", () => {
    const before = new RollingSigma({ windowMode: "time", windowSeconds: 60, windowSize: 100, minSamples: 20, cooldownEvents: 100 });
    const values = levelShift(8, 60, 5);
    run(before, "s1", values);
    assert.equal(before.coolingSensorCount, 1);
    const snapshot = JSON.parse(JSON.stringify(before.snapshot()));

    const after = new RollingSigma({ windowMode: "time", windowSeconds: 120, windowSize: 100, minSamples: 20, cooldownEvents: 100 });
    assert.deepEqual(after.windowMismatch(snapshot), {
      saved: "a time window of 60 s (at most 100 readings)",
      current: "a time window of 120 s (at most 100 readings)",
    });
    assert.throws(() => after.restore(snapshot), /taken with a time window of 60 s .*, the detector uses a time window of 120 s/);
    assert.equal(after.sensorCount, 0);
    after.restoreCooldown(snapshot);
    assert.equal(after.coolingSensorCount, 1);
    run(after, "s1", levelShift(9, 60, 0), T0 + 100_000);
    const [fault] = run(after, "s1", [200], T0 + 200_000);
    assert.equal(fault.metrics.m.flag, true);
    assert.equal(fault.anomaly, false, "the fault announced before the change is not announced again");

    const count = new RollingSigma({ windowSize: 100 });
    assert.deepEqual(count.windowMismatch(snapshot), {
      saved: "a time window of 60 s (at most 100 readings)",
      current: "a count window of 100 readings",
    });
  });

  it("refuses a malformed cool-down in a snapshot and keeps its state", () => {
    const detector = new RollingSigma({ windowSize: 50, minSamples: 20, cooldownEvents: 5 });
    run(detector, "s1", levelShift(10, 50, 0));
    const snapshot = JSON.parse(JSON.stringify(detector.snapshot()));
    snapshot.cooldown.keys = [["s1", "many", 0]];
    assert.throws(() => detector.restore(snapshot), /malformed cool-down.*malformed key entry/);
    assert.equal(detector.readyWindowCount, 1);
  });
});

describe("core/rolling-sigma window and cool-down options", () => {
  it("validates them, naming the option and the value", () => {
    const cases: Array<[RollingSigmaOptions, RegExp]> = [
      [{ windowMode: "sliding" as never }, /"windowMode" must be "count" or "time" \(got "sliding"\)/],
      [{ windowSeconds: 0 }, /"windowSeconds" must be a positive number of seconds \(got 0\)/],
      [{ windowSeconds: "60" as never }, /"windowSeconds".*\(got "60"\)/],
      [{ cooldownEvents: -1 }, /"cooldownEvents" must be a whole number of events, 0 or more \(got -1\)/],
      [{ cooldownEvents: 2.5 }, /"cooldownEvents".*\(got 2.5\)/],
      [{ cooldownSeconds: -5 }, /"cooldownSeconds" must be a number of seconds, 0 or more \(got -5\)/],
      [{ cooldownSeconds: Number.POSITIVE_INFINITY }, /"cooldownSeconds"/],
    ];
    for (const [options, message] of cases) assert.throws(() => new RollingSigma(options), message, JSON.stringify(options));
  });
});
