import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { IsolationForest } from "../../src/core/isolation-forest";
import { ModelLifecycle, type LifecycleEvent, type ModelLifecycleOptions } from "../../src/core/model-lifecycle";
import { ModelRegistry } from "../../src/core/model-registry";
import { gaussian } from "../support/seeded-noise";

const T0 = Date.UTC(2025, 0, 1);
const FEATURES = ["vibration", "temperature"];

/** A simulated press: vibration ~ N(2.5 + shift, 0.25) mm/s, temperature ~ N(45, 1.5) °C, one reading a second. */
function sensor(seed: number) {
  const noise = gaussian(seed);
  let index = 0;
  return (shift = 0) => ({ row: [2.5 + shift + 0.25 * noise(), 45 + 1.5 * noise()], timestamp: T0 + 1000 * index++ });
}

describe("ModelLifecycle (core)", () => {
  let directory: string;
  let registry: ModelRegistry;
  let clock: number;

  const options = (extra: Partial<ModelLifecycleOptions> = {}): ModelLifecycleOptions => ({
    detectorId: "forest-1",
    features: FEATURES,
    trainingSize: 200,
    forest: { nEstimators: 30, maxSamples: 128, seed: 42, contamination: "auto" },
    parameters: { thresholdMode: "score", scoreThreshold: 0.6 },
    drift: { windowSize: 200, checkEveryEvents: 100, checkEveryMs: 0, alpha: 0.01, retrainOnDrift: true },
    registry,
    now: () => clock++,
    ...extra,
  });

  /** Scores and observes like the node: warm-up rows first, then every row scored by the model active at that point. */
  function run(lifecycle: ModelLifecycle, next: ReturnType<typeof sensor>, count: number, shift = 0) {
    const events: LifecycleEvent[] = [];
    const scoredBy: number[] = [];
    for (let i = 0; i < count; i++) {
      const { row, timestamp } = next(shift);
      if (lifecycle.model === null) {
        events.push(...lifecycle.addWarmup(row, timestamp));
        continue;
      }
      lifecycle.model.scoreOne(row);
      scoredBy.push(lifecycle.version!);
      const { events: observed, error } = lifecycle.observe(row, 0, timestamp);
      assert.equal(error, null);
      events.push(...observed);
    }
    return { events, scoredBy };
  }

  beforeEach(() => {
    directory = mkdtempSync(join(tmpdir(), "model-lifecycle-"));
    registry = new ModelRegistry({ path: join(directory, "models.db") });
    clock = T0 + 10_000_000;
  });

  afterEach(() => {
    registry.close();
    rmSync(directory, { recursive: true, force: true });
  });

  it("trains v1 after the warm-up, stores it with its training window, and reports trained + promoted", () => {
    const lifecycle = new ModelLifecycle(options());
    const { events } = run(lifecycle, sensor(1), 200);
    assert.deepEqual(events.map((event) => [event.event, event.version, event.previousVersion]), [["trained", 1, null], ["promoted", 1, null]]);
    assert.deepEqual({ ...events[0].details, trainingMs: 0, trainingSummary: null, threshold: 0 }, { reason: "warm-up", rows: 200, from: T0, to: T0 + 199_000, trainingMs: 0, trainingSummary: null, threshold: 0 });
    const stored = registry.active("forest-1")!;
    assert.deepEqual([stored.version, stored.reason, stored.trainingRows, stored.trainingFrom, stored.trainingTo], [1, "warm-up", 200, T0, T0 + 199_000]);
    assert.equal(stored.referenceSample!.length, 2);
    assert.equal(lifecycle.warmupRows.length, 0);
  });

  it("a mean shift gives exactly one drift and one retrain (v1 -> v2); every row is scored once, in order", () => {
    const lifecycle = new ModelLifecycle(options());
    const next = sensor(2);
    run(lifecycle, next, 200);
    const stable = run(lifecycle, next, 800);
    assert.deepEqual(stable.events, [], "no drift on stationary data");
    assert.equal(lifecycle.driftState, "stable");
    // +4 sd on vibration (a loosened mount, say).
    const shifted = run(lifecycle, next, 1500, 1);
    assert.deepEqual(shifted.events.map((event) => [event.event, event.version, event.previousVersion]), [["drift", 1, null], ["trained", 2, 1], ["promoted", 2, 1]]);
    const drift = shifted.events[0].details as { feature: string; pValue: number; retrain: boolean };
    assert.equal(drift.feature, "vibration");
    assert.ok(drift.pValue < 0.005, `p ${drift.pValue}`);
    assert.equal(shifted.events[1].details.reason, "drift");
    assert.equal(shifted.events[1].details.rows, 200, "trained on a fresh window after the drift");
    // 1500 rows, each scored once; v1 until the retrain, v2 after, never back.
    assert.equal(shifted.scoredBy.length, 1500);
    const switchAt = shifted.scoredBy.indexOf(2);
    assert.ok(switchAt > 200, `v2 scores from row ${switchAt}`);
    assert.ok(shifted.scoredBy.slice(switchAt).every((version) => version === 2));
    assert.deepEqual(registry.list("forest-1").map((info) => [info.version, info.reason, info.status]), [[1, "warm-up", "inactive"], [2, "drift", "active"]]);
    // The new model learnt the new level: the shifted readings are normal to it.
    assert.ok(lifecycle.model!.scoreOne([3.5, 45]) < 0.5);
  });

  it("with retraining off, announces drift once per episode and keeps the model", () => {
    const lifecycle = new ModelLifecycle(options({ drift: { windowSize: 200, checkEveryEvents: 100, checkEveryMs: 0, alpha: 0.01, retrainOnDrift: false } }));
    const next = sensor(3);
    run(lifecycle, next, 400);
    const { events } = run(lifecycle, next, 800, 1);
    assert.deepEqual(events.map((event) => event.event), ["drift"]);
    assert.equal(lifecycle.version, 1);
    assert.equal(lifecycle.driftState, "drift");
  });

  it("a new lifecycle on the same registry resumes the active version with its drift reference", () => {
    const first = new ModelLifecycle(options());
    const next = sensor(4);
    run(first, next, 200);
    first.train(Array.from({ length: 300 }, () => next().row), "train");
    assert.equal(first.version, 2);

    const second = new ModelLifecycle(options());
    const outcome = second.restore(first.toState());
    assert.deepEqual([outcome.source, outcome.version, outcome.ignored], ["registry", 2, null]);
    assert.equal(second.lastVersion, 2);
    // The reference came back: a shift is detected after one window, without re-learning a reference.
    // Suspected after one window, confirmed (and retrained) after the next.
    const { events } = run(second, next, 400, 1);
    assert.deepEqual(events.map((event) => [event.event, event.version]), [["drift", 2], ["trained", 3], ["promoted", 3]]);
  });

  it("the registry's active version wins over the state snapshot; a snapshot alone serves without a registry", () => {
    const lifecycle = new ModelLifecycle(options());
    const next = sensor(5);
    run(lifecycle, next, 200);
    lifecycle.train(Array.from({ length: 300 }, () => next().row), "train");
    const state = lifecycle.toState(); // says v2
    lifecycle.rollback();
    assert.equal(registry.active("forest-1")!.version, 1);

    assert.equal(new ModelLifecycle(options()).restore(state).version, 1, "registry says v1");
    const withoutRegistry = new ModelLifecycle(options({ registry: null }));
    assert.deepEqual([withoutRegistry.restore(state).source, withoutRegistry.version], ["state", 2]);
  });

  it("imports a model saved before the registry existed as that version", () => {
    const old = new ModelLifecycle(options({ registry: null }));
    run(old, sensor(6), 200);
    const state = old.toState();
    delete state.model!.reference; // an old snapshot has no drift reference
    const fresh = new ModelLifecycle(options());
    assert.deepEqual([fresh.restore(state).source, fresh.version], ["imported", 1]);
    assert.deepEqual(registry.list("forest-1").map((info) => [info.version, info.reason, info.status]), [[1, "imported", "active"]]);
  });

  it("ignores a stored model trained on other features, saying why", () => {
    const lifecycle = new ModelLifecycle(options());
    run(lifecycle, sensor(7), 200);
    const other = new ModelLifecycle(options({ features: ["vibration", "current"] }));
    const outcome = other.restore(lifecycle.toState());
    assert.equal(outcome.source, "none");
    assert.match(outcome.ignored!, /version 1 it was trained on features "vibration, temperature" but the node now uses "vibration, current"/);
    assert.equal(other.model, null);
  });

  it("load, rollback and reset change the active version and report it; errors name the problem", () => {
    const lifecycle = new ModelLifecycle(options());
    const next = sensor(8);
    run(lifecycle, next, 200);
    const rows = () => Array.from({ length: 250 }, () => next().row);
    lifecycle.train(rows(), "train");
    lifecycle.train(rows(), "train");
    assert.equal(lifecycle.version, 3);

    const [loaded] = lifecycle.load(1);
    assert.deepEqual([loaded.event, loaded.version, loaded.previousVersion], ["loaded", 1, 3]);
    const [rolledBack] = lifecycle.rollback();
    assert.deepEqual([rolledBack.event, rolledBack.version, rolledBack.previousVersion], ["rolled-back", 3, 1]);
    assert.throws(() => lifecycle.load(9), /load: there is no model version 9 for this node \(stored: 1, 2, 3\)/);
    assert.throws(() => lifecycle.load(0), /load: "payload.version" must be a positive integer \(got 0\)/);
    assert.equal(lifecycle.version, 3, "a failed load changes nothing");

    const [reset] = lifecycle.reset();
    assert.deepEqual([reset.event, reset.version, reset.previousVersion], ["reset", null, 3]);
    assert.equal(lifecycle.model, null);
    assert.equal(registry.active("forest-1"), undefined);
    const events = run(lifecycle, next, 200).events;
    assert.deepEqual(events.map((event) => [event.event, event.version]), [["trained", 4], ["promoted", 4]], "versions keep counting up after a reset");

    const alone = new ModelLifecycle(options({ registry: null, registryProblem: "disk full" }));
    assert.throws(() => alone.load(1), /load: needs the models database, which is not open \(disk full\)/);
    assert.throws(() => lifecycle.train([[1, 2, 3], [4, 5, 6]], "train"), /row 0 has 3 values but the model has 2 features \(vibration, temperature\)/);
  });

  it("keeps at most keepVersions versions in the registry", () => {
    const lifecycle = new ModelLifecycle(options({ keepVersions: 2 }));
    const next = sensor(9);
    run(lifecycle, next, 200);
    for (let i = 0; i < 3; i++) lifecycle.train(Array.from({ length: 100 }, () => next().row), "train");
    assert.deepEqual(registry.list("forest-1").map((info) => info.version), [3, 4]);
  });

  it("a retrain the database refuses (locked) keeps the current model, reports the error, and retries a window later", () => {
    registry.close();
    registry = new ModelRegistry({ path: join(directory, "models.db"), busyTimeoutMs: 20 });
    const lifecycle = new ModelLifecycle(options());
    const next = sensor(10);
    run(lifecycle, next, 600);
    const other = new Database(join(directory, "models.db"));
    other.exec("BEGIN IMMEDIATE");
    const errors: Error[] = [];
    let events: LifecycleEvent[] = [];
    try {
      for (let i = 0; i < 400; i++) {
        const { row, timestamp } = next(1);
        const observed = lifecycle.observe(row, 0, timestamp);
        events.push(...observed.events);
        if (observed.error) errors.push(observed.error);
      }
    } finally {
      other.exec("ROLLBACK");
      other.close();
    }
    assert.deepEqual(events.map((event) => event.event), ["drift"]);
    assert.equal(errors.length, 1);
    assert.match(errors[0].message, /is busy: another connection held its lock for more than 20 ms while storing version 2/);
    assert.equal(lifecycle.version, 1);
    events = run(lifecycle, next, 200, 1).events;
    assert.deepEqual(events.map((event) => [event.event, event.version]), [["trained", 2], ["promoted", 2]]);
  });

  it("confirming a suspected drift on a fresh window makes false retrains on stationary data rare", () => {
    // 100 seeded runs of 3000 stationary rows each, alpha 0.05, a check every 100 rows: suspicions happen at about
    // the test's level, but a second, independent window rarely agrees.
    let checks = 0;
    let suspicions = 0;
    let retrains = 0;
    for (let run = 1; run <= 100; run++) {
      const noise = gaussian(run * 104_729);
      const lifecycle = new ModelLifecycle(
        options({ registry: null, forest: { nEstimators: 10, maxSamples: 64, seed: 42, contamination: "auto" }, drift: { windowSize: 200, checkEveryEvents: 100, checkEveryMs: 0, alpha: 0.05, retrainOnDrift: true } }),
      );
      for (let i = 0; i < 3200; i++) {
        const row = [noise(), noise()];
        if (lifecycle.model === null) {
          lifecycle.addWarmup(row, i);
          continue;
        }
        const [lastCheck, state] = [lifecycle.drift.lastCheck, lifecycle.driftState];
        const { events } = lifecycle.observe(row, 0, i);
        if (lifecycle.drift.lastCheck !== lastCheck) checks++;
        if (state !== "confirming" && lifecycle.driftState === "confirming") suspicions++;
        retrains += events.filter((event) => event.event === "trained").length;
      }
    }
    console.log(`      stationary data: ${checks} checks, ${suspicions} suspected drifts, ${retrains} confirmed (retrained)`);
    assert.ok(suspicions >= 20, `${suspicions} suspicions: the checks should fire at about their level`);
    assert.ok(retrains * 5 < suspicions, `${retrains} of ${suspicions} suspicions confirmed`);
  });

  it("the active model scores exactly like the stored one", () => {
    const lifecycle = new ModelLifecycle(options());
    run(lifecycle, sensor(11), 200);
    const stored = IsolationForest.fromJSON(registry.active("forest-1")!.model);
    const probe = [[2.5, 45], [4, 50], [1, 40]];
    assert.deepEqual(stored.score(probe), lifecycle.model!.score(probe));
  });
});
