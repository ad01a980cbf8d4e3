import assert from "node:assert/strict";
import { validateEvent, type SensorEvent } from "../../src/core/event";
import { BetaSampler, Random } from "../../src/core/random";
import { FAULT_KINDS, PRESETS, SimulatorConfigError, StationSimulator, cleanStatistics, type SimulatorOptions } from "../../src/core/simulator";

const START = Date.UTC(2024, 0, 1);

function run(options: SimulatorOptions, count: number): SensorEvent[] {
  return new StationSimulator({ startTime: START, ...options }).generate(count);
}

function meanAndSd(values: number[]): { mean: number; sd: number } {
  const mean = values.reduce((sum, value) => sum + value, 0) / values.length;
  const variance = values.reduce((sum, value) => sum + (value - mean) ** 2, 0) / (values.length - 1);
  return { mean, sd: Math.sqrt(variance) };
}

describe("core/random", () => {
  it("gives the same stream for the same seed and a different one for another seed", () => {
    const draw = (seed: number) => Array.from({ length: 100 }, ((random) => () => random.uniform())(new Random(seed)));
    assert.deepEqual(draw(7), draw(7));
    assert.notDeepEqual(draw(7), draw(8));
    assert.notDeepEqual(draw(2 ** 40), draw(2 ** 40 + 1));
  });

  it("draws uniforms in [0, 1) and normals, gammas and betas with the right moments", () => {
    const random = new Random(1);
    const n = 40_000;
    const uniforms = Array.from({ length: n }, () => random.uniform());
    assert.ok(uniforms.every((u) => u >= 0 && u < 1));
    assert.ok(Math.abs(meanAndSd(uniforms).mean - 0.5) < 0.01);
    const normals = meanAndSd(Array.from({ length: n }, () => random.normal(10, 2)));
    assert.ok(Math.abs(normals.mean - 10) < 0.05 && Math.abs(normals.sd - 2) < 0.05, JSON.stringify(normals));
    for (const shape of [0.5, 1, 3.5]) {
      const gamma = meanAndSd(Array.from({ length: n }, () => random.gamma(shape)));
      assert.ok(Math.abs(gamma.mean - shape) < 0.05 * Math.max(1, shape), `gamma(${shape}) mean ${gamma.mean}`);
      assert.ok(Math.abs(gamma.sd - Math.sqrt(shape)) < 0.05 * Math.max(1, shape), `gamma(${shape}) sd ${gamma.sd}`);
    }
    for (const [alpha, beta] of [[0.5, 0.8], [2, 5]]) {
      const sampler = new BetaSampler(alpha, beta);
      const values = Array.from({ length: n }, () => sampler.sample(random));
      assert.ok(values.every((value) => value > 0 && value < 1));
      const stats = meanAndSd(values);
      assert.ok(Math.abs(stats.mean - sampler.mean) < 0.01, `beta(${alpha}, ${beta}) mean ${stats.mean}`);
      assert.ok(Math.abs(stats.sd - Math.sqrt(sampler.variance)) < 0.01, `beta(${alpha}, ${beta}) sd ${stats.sd}`);
    }
  });

  it("rejects a seed that is not a finite number", () => {
    assert.throws(() => new Random(NaN), /seed must be a finite number/);
  });
});

describe("core/simulator", () => {
  const allFaults = { spike: 0.003, levelShift: 0.001, drift: 0.001, stuck: 0.001, noiseBurst: 0.001 };

  it("produces identical events for the same seed and start time, and different ones for another seed", () => {
    const options = { preset: "environment" as const, stations: 4, seed: 123, faults: allFaults };
    const first = run(options, 5000);
    assert.deepEqual(run(options, 5000), first);
    const other = run({ ...options, seed: 124 }, 5000);
    assert.notDeepEqual(other.map((event) => event.readings), first.map((event) => event.readings));
    // The clock only moves timestamps; readings depend on the seed alone.
    const later = run({ ...options, startTime: START + 60_000 }, 5000);
    assert.deepEqual(later.map((event) => event.readings), first.map((event) => event.readings));
    assert.equal(later[0].timestamp, START + 60_000);
  });

  it("goes round-robin over station-01..station-NN on a simulated clock with unique, stable event ids", () => {
    const events = run({ stations: 3, ratePerStation: 3 }, 12);
    assert.deepEqual(events.slice(0, 4).map((event) => event.sensorId), ["station-01", "station-02", "station-03", "station-01"]);
    assert.deepEqual(
      events.filter((event) => event.sensorId === "station-02").map((event) => event.timestamp - START),
      [0, 333, 667, 1000],
    );
    assert.equal(events[4].eventId, `station-02:${START + 333}:1`);
    const many = run({ stations: 12, ratePerStation: 1000, sensorPrefix: "press" }, 50_000);
    assert.equal(new Set(many.map((event) => event.eventId)).size, many.length);
    assert.equal(many[11].sensorId, "press-12");
    for (let i = 1; i < many.length; i++) assert.ok(many[i].timestamp >= many[i - 1].timestamp, "events are in time order");
  });

  it("emits events that pass the shared event validator, with the chosen subset of metrics", () => {
    const events = run({ preset: "vibration", metrics: "vibration, temperature", faults: allFaults }, 2000);
    for (const event of events) {
      validateEvent(event);
      assert.deepEqual(Object.keys(event.readings), ["vibration", "temperature"]);
      assert.equal(typeof event.label?.anomaly, "boolean");
    }
    const humidityOnly = run({ preset: "environment", metrics: ["humidity"] }, 10);
    assert.deepEqual(Object.keys(humidityOnly[0].readings), ["humidity"]);
    assert.deepEqual(Object.keys(run({ preset: "environment" }, 1)[0].readings), ["temperature", "humidity", "sound"]);
    assert.deepEqual(Object.keys(run({ preset: "vibration" }, 1)[0].readings), ["vibration"]);
  });

  it("matches the Beta formulas of the environment preset (mean a/(a+b)·scale+offset) over 20k samples", () => {
    const simulator = new StationSimulator({ preset: "environment", stations: 1, startTime: START, seed: 9 });
    const events = simulator.generate(20_000);
    const expected = { temperature: [28.739, 1.7325], humidity: [17.605, 10.647], sound: [54.391, 2.8305] } as const;
    for (const metric of simulator.metrics) {
      const [mean, sd] = expected[metric.name as keyof typeof expected];
      // The exposed clean statistics are the closed-form ones.
      assert.ok(Math.abs(metric.mean - mean) < 0.001 && Math.abs(metric.sd - sd) < 0.001, `${metric.name}: ${metric.mean} ± ${metric.sd}`);
      const sample = meanAndSd(events.map((event) => event.readings[metric.name]));
      assert.ok(Math.abs(sample.mean - mean) < (4 * sd) / Math.sqrt(events.length), `${metric.name} sample mean ${sample.mean} vs ${mean}`);
      assert.ok(Math.abs(sample.sd / sd - 1) < 0.03, `${metric.name} sample sd ${sample.sd} vs ${sd}`);
    }
    // Humidity is Beta·88: never below 0 or above 88 without faults.
    assert.ok(events.every((event) => event.readings.humidity > 0 && event.readings.humidity < 88));
  });

  it("draws the vibration preset around 2.5 mm/s with sd 0.25", () => {
    const events = run({ preset: "vibration", stations: 2, seed: 5 }, 20_000);
    const sample = meanAndSd(events.map((event) => event.readings.vibration));
    assert.ok(Math.abs(sample.mean - 2.5) < 0.01 && Math.abs(sample.sd - 0.25) < 0.01, JSON.stringify(sample));
    assert.deepEqual(cleanStatistics(PRESETS.vibration.metrics[0].distribution), { mean: 2.5, sd: 0.25 });
  });

  it("puts spikes exactly where they are labelled, at least spikeSigma·sd from the clean mean, at the configured rate", () => {
    const rate = 0.01;
    const simulator = new StationSimulator({ preset: "environment", stations: 5, startTime: START, seed: 3, faults: { spike: rate } });
    const events = simulator.generate(50_000);
    const byName = new Map(simulator.metrics.map((metric) => [metric.name, metric]));
    let spikes = 0;
    for (const event of events) {
      const label = event.label!;
      if (label.anomaly) {
        spikes++;
        assert.equal(label.kind, "spike");
        const metric = byName.get(label.metric!)!;
        assert.ok(Math.abs(event.readings[metric.name] - metric.mean) >= 8 * metric.sd, `${event.eventId} ${metric.name}=${event.readings[metric.name]}`);
      }
      // No unlabelled reading is anywhere near a spike (clean data stays within 6 sd here).
      for (const metric of simulator.metrics) {
        if (label.anomaly && label.metric === metric.name) continue;
        assert.ok(Math.abs(event.readings[metric.name] - metric.mean) < 6 * metric.sd, `unlabelled outlier in ${event.eventId}`);
      }
    }
    const expected = rate * events.length;
    assert.ok(Math.abs(spikes - expected) < 4 * Math.sqrt(expected), `${spikes} spikes, expected about ${expected}`);
  });

  it("injects every fault kind, labels every event inside a fault, and each kind has its effect", () => {
    const simulator = new StationSimulator({
      preset: "vibration", metrics: "vibration,temperature", stations: 3, startTime: START, seed: 11,
      faults: allFaults, faultDuration: { min: 30, max: 60 },
    });
    const events = simulator.generate(60_000);
    const sd = new Map(simulator.metrics.map((metric) => [metric.name, metric.sd]));
    const mean = new Map(simulator.metrics.map((metric) => [metric.name, metric.mean]));
    // Group consecutive labelled events of one station into fault episodes.
    const episodes: Array<{ kind: string; metric: string; values: number[] }> = [];
    const open = new Map<string, { kind: string; metric: string; values: number[] }>();
    for (const event of events) {
      const label = event.label!;
      const current = open.get(event.sensorId);
      if (!label.anomaly) {
        assert.equal(label.kind, undefined);
        open.delete(event.sensorId);
        continue;
      }
      assert.ok(FAULT_KINDS.includes(label.kind as never), `unknown kind ${label.kind}`);
      assert.ok(label.metric === "vibration" || label.metric === "temperature");
      if (current && current.kind === label.kind && current.metric === label.metric && label.kind !== "spike") {
        current.values.push(event.readings[label.metric]);
      } else {
        const episode = { kind: label.kind!, metric: label.metric!, values: [event.readings[label.metric!]] };
        episodes.push(episode);
        open.set(event.sensorId, episode);
      }
    }
    // Faults still running when generation stopped are cut short; judge only the finished ones.
    const running = new Set(open.values());
    const finished = episodes.filter((episode) => !running.has(episode));
    const kinds = new Set(finished.map((episode) => episode.kind));
    assert.deepEqual([...kinds].sort(), [...FAULT_KINDS].sort());
    for (const episode of finished) {
      const s = sd.get(episode.metric)!;
      const m = mean.get(episode.metric)!;
      const stats = meanAndSd(episode.values.length > 1 ? episode.values : [...episode.values, ...episode.values]);
      if (episode.kind !== "spike") assert.ok(episode.values.length >= 30 && episode.values.length <= 60 * 2, `${episode.kind} lasted ${episode.values.length}`);
      switch (episode.kind) {
        case "stuck":
          assert.equal(new Set(episode.values).size, 1, "a stuck sensor repeats one value");
          break;
        case "level-shift":
          assert.ok(Math.abs(Math.abs(stats.mean - m) - 4 * s) < 1.5 * s, `level shift of ${(stats.mean - m) / s} sd`);
          break;
        case "noise-burst":
          assert.ok(stats.sd > 3 * s, `noise burst sd ${stats.sd / s}× clean`);
          break;
        case "drift": {
          const last = episode.values.slice(-5).reduce((sum, value) => sum + value, 0) / 5;
          assert.ok(Math.abs(last - m) > 4 * s, `drift ends ${(last - m) / s} sd away`);
          break;
        }
      }
    }
  });

  it("starts again from the seed on reset, and counts the events due at a time on its clock", () => {
    const simulator = new StationSimulator({ stations: 4, ratePerStation: 3, startTime: START, faults: allFaults });
    const first = simulator.generate(100);
    simulator.reset();
    assert.equal(simulator.generated, 0);
    assert.deepEqual(simulator.generate(100), first);
    assert.equal(simulator.countUntil(START - 1), 0);
    assert.equal(simulator.countUntil(START), 4);
    assert.equal(simulator.countUntil(START + 332), 4);
    assert.equal(simulator.countUntil(START + 333), 8);
    assert.equal(simulator.countUntil(START + 1000), 16);
    const fresh = new StationSimulator({ stations: 4, ratePerStation: 3, startTime: START });
    const due = fresh.countUntil(START + 10_000);
    const events = fresh.generate(due);
    assert.ok(events.every((event) => event.timestamp <= START + 10_000));
    assert.ok(fresh.nextTimestamp > START + 10_000);
  });

  const badOptions: Array<[string, SimulatorOptions, RegExp]> = [
    ["stations", { stations: 0 }, /"stations" must be an integer from 1/],
    ["ratePerStation", { ratePerStation: -5 }, /"ratePerStation" must be a number/],
    ["metrics", { preset: "vibration", metrics: "vibration,pressure" }, /metric "pressure" is not in the "vibration" preset \(choose from vibration, temperature\)/],
    ["preset", { preset: "weather" as never }, /"preset" must be one of vibration, environment/],
    ["faults.spike", { faults: { spike: 1.5 } }, /"faults.spike" must be a number from 0 to 1/],
    ["faults", { faults: { spike: 0.6, stuck: 0.6 } }, /fault rates add up to 1.2/],
    ["seed", { seed: NaN }, /"seed"/],
  ];
  for (const [option, options, message] of badOptions) {
    it(`rejects a bad "${option}" with an error naming it`, () => {
      assert.throws(() => new StationSimulator(options), (error: unknown) => {
        assert.ok(error instanceof SimulatorConfigError);
        assert.equal(error.option, option);
        assert.match(error.message, message);
        return true;
      });
    });
  }
});
