// The README's "Use the detectors without Node-RED" example, run against the built package entry exactly as a
// user's script or Function node would require it.
import assert from "node:assert/strict";

describe("public entry node-red-contrib-iot-anomaly/core (built)", () => {
  it("runs the README example: simulate, judge with RollingSigma, score with IsolationForest", () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { StationSimulator, RollingSigma, IsolationForest, validateEvent } = require("node-red-contrib-iot-anomaly/core");

    const simulator = new StationSimulator({ preset: "environment", stations: 3, seed: 1, faults: { spike: 0.01 } });
    const events = simulator.generate(3000);
    const sigma = new RollingSigma({ windowSize: 100, k: 3 });
    const forest = new IsolationForest({ nEstimators: 100, maxSamples: 256, seed: 42 });
    const rows = events.map((event: { readings: Record<string, number> }) => [event.readings.temperature, event.readings.humidity, event.readings.sound]);
    forest.fit(rows.slice(0, 1000));
    const scores: number[] = forest.score(rows);

    let spikes = 0;
    let caught = 0;
    events.forEach((event: { label?: { kind?: string } }, index: number) => {
      validateEvent(event);
      const result = sigma.processEvent(event);
      if (index >= 300 && event.label?.kind === "spike") {
        spikes++;
        if (result.anomaly) caught++;
      }
    });
    assert.ok(spikes > 5 && caught / spikes >= 0.9, `3σ caught ${caught} of ${spikes} spikes`);
    assert.equal(scores.length, events.length);
    assert.ok(scores.every((score) => score > 0 && score <= 1));
  });

  it("is also the package's main entry", () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    assert.equal(require("node-red-contrib-iot-anomaly").RollingSigma, require("node-red-contrib-iot-anomaly/core").RollingSigma);
  });
});
