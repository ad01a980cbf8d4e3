import assert from "node:assert/strict";
import type { SensorEvent } from "../../src/core/event";
import { nabSeriesContext, readNabTable, runDetectorOnSeries, type NabTable } from "../../src/core/nab";
import { ALERT_LEVEL, NAMED_DETECTORS, SensorNovelty, scoreSeries, type SensorNoveltyOptions } from "../../src/core/stream-detectors";
import { requireSharedData } from "../support/shared-data";

const MACHINE_TEMPERATURE = "nab/data/realKnownCause/machine_temperature_system_failure.csv";
const JUMPS_UP = "nab/data/artificialWithAnomaly/art_daily_jumpsup.csv";
const MINUTE = 60_000;

function eventOf(sensorId: string, timestamp: number, readings: Record<string, number>): SensorEvent {
  return { eventId: `${sensorId}:${timestamp}`, sensorId, timestamp, readings };
}

/** The NAB series as events of one sensor, metric "value", with the options NAB gives a detector (range, warm-up). */
function nabRun(table: NabTable, options: SensorNoveltyOptions = {}) {
  const context = nabSeriesContext(table.values);
  const novelty = new SensorNovelty({ ranges: { value: context.range! }, warmupRows: context.warmupRows, ...options });
  const score = (from: number, to: number, detector = novelty) => {
    const results = [];
    for (let row = from; row < to; row++) results.push(detector.processEvent(eventOf("nab", table.times[row], { value: table.values[row] })));
    return results;
  };
  return { novelty, context, score };
}

describe("core/stream-detectors/sensor-novelty (the best configuration on events)", () => {
  it("scores a NAB series row for row as `iot-anomaly detect --detector best` does, alerting only after the warm-up", function () {
    const table = readNabTable(requireSharedData(this, MACHINE_TEMPERATURE));
    const expected = runDetectorOnSeries(NAMED_DETECTORS.best, { table });
    const { score, context } = nabRun(table);
    const results = score(0, table.values.length);
    assert.equal(context.warmupRows, 750, "NAB's probationary length of a 22695-row series");
    assert.deepEqual(Float64Array.from(results, (result) => result.metrics.value), expected);
    assert.deepEqual(Float64Array.from(results, (result) => result.score), expected);
    const alerts = results.flatMap((result, row) => (result.anomaly ? [row] : []));
    const expectedAlerts = [...expected].flatMap((value, row) => (row >= 750 && value >= ALERT_LEVEL ? [row] : []));
    assert.ok(expectedAlerts.length > 0);
    assert.deepEqual(alerts, expectedAlerts);
    assert.ok(results.slice(0, 750).every((result) => !result.ready && !result.anomaly));
    assert.ok(results.slice(750).every((result) => result.ready));
  });

  it('range mode "warmup" scores as the `contextual-novelty-warmup` configuration', function () {
    const table = readNabTable(requireSharedData(this, JUMPS_UP));
    const context = nabSeriesContext(table.values);
    const expected = scoreSeries(NAMED_DETECTORS["contextual-novelty-warmup"], table.times, table.values, { warmupRows: context.warmupRows });
    const novelty = new SensorNovelty({ rangeMode: "warmup", warmupRows: context.warmupRows });
    const scores = Float64Array.from(table.values, (value, row) => novelty.processEvent(eventOf("nab", table.times[row], { value })).score);
    assert.deepEqual(scores, expected);
  });

  it("after a snapshot (through JSON) and a restore mid-series, the later scores are those of an uninterrupted run", function () {
    const table = readNabTable(requireSharedData(this, MACHINE_TEMPERATURE));
    const uninterrupted = nabRun(table).score(0, table.values.length);
    const first = nabRun(table);
    first.score(0, 12_000);
    const saved = JSON.parse(JSON.stringify(first.novelty.snapshot()));
    const second = nabRun(table);
    assert.deepEqual(second.novelty.restore(saved), { restored: 1, discarded: 0 });
    assert.equal(second.novelty.readyDetectorCount, 1, "no new warm-up");
    assert.deepEqual(second.score(12_000, table.values.length), uninterrupted.slice(12_000));
  });

  it('restores a "warmup"-mode detector saved before its range was settled, and its cool-down', function () {
    const table = readNabTable(requireSharedData(this, JUMPS_UP));
    const options: SensorNoveltyOptions = { rangeMode: "warmup", ranges: {} };
    const uninterrupted = nabRun(table, options).score(0, table.values.length);
    // Right after each alert, the cool-down is running: it must carry over too.
    const afterAlerts = uninterrupted.flatMap((result, row) => (result.metrics.value >= ALERT_LEVEL ? [row + 1] : []));
    assert.ok(afterAlerts.length > 0);
    for (const split of [1, 300, ...afterAlerts]) {
      const first = nabRun(table, options);
      first.score(0, split);
      const second = nabRun(table, options);
      second.novelty.restore(JSON.parse(JSON.stringify(first.novelty.snapshot())));
      assert.deepEqual(second.score(split, table.values.length), uninterrupted.slice(split), `split at row ${split}`);
    }
  });

  it("skips a metric missing from an event without an error; that metric's detector is as if the event never came", () => {
    const options: SensorNoveltyOptions = { metrics: ["temperature", "humidity"], ranges: { temperature: { min: 10, max: 45 }, humidity: { min: 0, max: 88 } }, warmupRows: 50 };
    const withGap = new SensorNovelty(options);
    const humidityOnly = new SensorNovelty({ ...options, metrics: ["humidity"], ranges: { humidity: { min: 0, max: 88 } } });
    const start = Date.UTC(2024, 0, 1);
    for (let row = 0; row < 300; row++) {
      const timestamp = start + row * MINUTE;
      const humidity = 40 + 10 * Math.sin(row / 7) + (row === 200 ? 40 : 0);
      const gap = row % 10 === 3;
      const readings: Record<string, number> = gap ? { temperature: 25 } : { temperature: 25, humidity };
      const result = withGap.processEvent(eventOf("station-1", timestamp, readings));
      if (gap) {
        assert.deepEqual(Object.keys(result.metrics), ["temperature"]);
        continue;
      }
      const alone = humidityOnly.processEvent(eventOf("station-1", timestamp, { humidity }));
      assert.equal(result.metrics.humidity, alone.metrics.humidity, `row ${row}`);
    }
    const none = withGap.processEvent(eventOf("station-1", start, { sound: 50 }));
    assert.deepEqual(none, { anomaly: false, score: 0, ready: false, metrics: {} });
  });

  it("keeps sensors apart and flags the level shift of one of them once, after its warm-up", () => {
    const novelty = new SensorNovelty({ ranges: { vibration: { min: 0, max: 50 } }, warmupRows: 100, cooldownRows: 40 });
    const start = Date.UTC(2024, 0, 1);
    const flagged: string[] = [];
    // One reading every 5 minutes (as NAB's series): the warm-up ends after the first day, at row 288.
    for (let row = 0; row < 500; row++) {
      for (const sensorId of ["pump-1", "pump-2"]) {
        const shift = sensorId === "pump-2" && row >= 350 && row < 400 ? 20 : 0;
        const event = eventOf(sensorId, start + row * 5 * MINUTE, { vibration: 20 + Math.sin(row * 1.3) + shift });
        if (novelty.processEvent(event).anomaly) flagged.push(`${sensorId}@${row}`);
      }
    }
    // The shift's start is new; later, the shifted level at an hour it was never seen at (row 396) is new too, more
    // than a cool-down later: one alert per cool-down at most, none for pump-1.
    assert.deepEqual(flagged, ["pump-2@350", "pump-2@396"]);
    assert.equal(novelty.sensorCount, 2);
    assert.equal(novelty.readyDetectorCount, 2);
  });

  it("with day parts, the warm-up also covers a day of event time: a 1 Hz stream does not alert at each new hour of its first day", () => {
    const steady = (options: SensorNoveltyOptions) => {
      const novelty = new SensorNovelty({ ranges: { t: { min: 10, max: 45 } }, ...options });
      const alerts: number[] = [];
      let firstReady = -1;
      for (let second = 0; second < 3 * 3600; second++) {
        const result = novelty.processEvent(eventOf("s", Date.UTC(2024, 0, 1) + second * 1000, { t: 25 + Math.sin(second * 1.3) }));
        if (result.anomaly) alerts.push(second);
        if (result.ready && firstReady < 0) firstReady = second;
      }
      return { alerts, firstReady, progress: novelty.warmupProgress };
    };
    // The first readings of hours 1 and 2 are new contexts, at the alert level: without the day rule, two alerts.
    const times = Float64Array.from({ length: 3 * 3600 }, (_, second) => Date.UTC(2024, 0, 1) + second * 1000);
    const scores = scoreSeries(NAMED_DETECTORS.best, times, Float64Array.from(times, (_, second) => 25 + Math.sin(second * 1.3)), { warmupRows: 750, range: { min: 10, max: 45 } });
    assert.deepEqual([...scores].flatMap((score, second) => (second >= 750 && score >= ALERT_LEVEL ? [second] : [])), [3600, 7200]);
    const withDayParts = steady({});
    assert.deepEqual(withDayParts.alerts, []);
    assert.equal(withDayParts.firstReady, -1);
    assert.deepEqual(withDayParts.progress, { rows: 750, hours: (3 * 3600 - 1) / 3600 });
    const withoutDayParts = steady({ dayParts: 0 });
    assert.deepEqual(withoutDayParts.alerts, []);
    assert.equal(withoutDayParts.firstReady, 750, "ready after the warm-up rows alone");
  });

  it('range mode "configured" with no metrics listed: a metric without a range gets a warm-up estimate, and says so', () => {
    const novelty = new SensorNovelty({ ranges: { temperature: { min: 10, max: 45 } }, warmupRows: 30 });
    const times = Float64Array.from({ length: 200 }, (_, row) => Date.UTC(2024, 0, 1) + row * MINUTE);
    const sound = Float64Array.from(times, (_, row) => 50 + 5 * Math.sin(row / 3) + (row === 150 ? 60 : 0));
    const scores = Float64Array.from(times, (time, row) => novelty.processEvent(eventOf("s", time, { temperature: 20, sound: sound[row] })).metrics.sound);
    assert.deepEqual(novelty.estimatedRangeMetrics, ["sound"]);
    assert.deepEqual(scores, scoreSeries(NAMED_DETECTORS["contextual-novelty-warmup"], times, sound, { warmupRows: 30 }));
  });

  it("refuses a configuration it cannot run, naming the option and the metric", () => {
    const cases: Array<[SensorNoveltyOptions, RegExp]> = [
      [{ metrics: ["temperature", "humidity"], ranges: { temperature: { min: 10, max: 45 } } }, /metric "humidity" has no range: range mode "configured" needs one per metric/],
      [{ ranges: { humidity: { min: 88, max: 0 } } }, /range of metric "humidity" must have a finite min below its max/],
      [{ metrics: ["temperature"], ranges: { temperature: { min: 10, max: 45 }, temprature: { min: 10, max: 45 } } }, /range given for metric "temprature", which is not among the metrics/],
      [{ warmupRows: 0 }, /"warmupRows" must be a whole number of readings from 1/],
      [{ cooldownRows: -1 }, /"cooldownRows" must be a whole number/],
      [{ levels: [6, 1] }, /"levels" must be one or more whole numbers from 2 to 1000/],
      [{ dayParts: 1.5 }, /"dayParts" must be a whole number from 0 to 1440/],
      [{ alertNovelty: 0 }, /"alertNovelty" must be a number above 0/],
      [{ rangeMode: "none" as never }, /"rangeMode" must be "configured" or "warmup"/],
    ];
    for (const [options, message] of cases) assert.throws(() => new SensorNovelty(options), message);
  });

  it("leaves out saved detectors learnt with other levels (they warm up again) and rejects a malformed state", () => {
    const options: SensorNoveltyOptions = { ranges: { value: { min: 0, max: 10 } }, warmupRows: 20 };
    const first = new SensorNovelty(options);
    for (let row = 0; row < 50; row++) first.processEvent(eventOf("s", row * 1000, { value: 5 + Math.sin(row) }));
    const saved = JSON.parse(JSON.stringify(first.snapshot()));
    const other = new SensorNovelty({ ...options, levels: [5, 7] });
    assert.deepEqual(other.restore(saved), { restored: 0, discarded: 1 });
    assert.equal(other.detectorCount, 0);
    const sameButAlertLevel = new SensorNovelty({ ...options, alertNovelty: 0.7 });
    assert.deepEqual(sameButAlertLevel.restore(saved), { restored: 1, discarded: 0 }, "the alert level does not change what was learnt");
    const broken = JSON.parse(JSON.stringify(saved));
    broken.sensors[0][1][0].state.inner.recent = "x";
    const target = new SensorNovelty(options);
    target.processEvent(eventOf("kept", 0, { value: 1 }));
    assert.throws(() => target.restore(broken), /state of "s" \/ "value": contextual-novelty snapshot has malformed recent levels/);
    assert.equal(target.sensorCount, 1, "a failed restore changes nothing");
  });
});
