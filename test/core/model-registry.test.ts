import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { IsolationForest } from "../../src/core/isolation-forest";
import { ModelRegistry, ModelRegistryError, type NewModelVersion } from "../../src/core/model-registry";
import { gaussian } from "../support/seeded-noise";

const T0 = Date.UTC(2025, 0, 1);
const noise = gaussian(3);
const trainingRows = Array.from({ length: 300 }, () => [2.5 + 0.25 * noise(), 45 + 1.5 * noise()]);
const forest = new IsolationForest({ nEstimators: 10 }).fit(trainingRows);

function version(number: number, reason = "train"): NewModelVersion {
  return {
    version: number,
    createdAt: T0 + number * 60_000,
    reason,
    parameters: { ...forest.options, thresholdMode: "score" },
    features: ["vibration", "temperature"],
    trainingRows: 300,
    trainingFrom: T0,
    trainingTo: T0 + 299_000,
    trainingMs: 4.2,
    trainingSummary: forest.trainingSummary,
    threshold: forest.threshold,
    referenceSample: [[1, 2, 3], [4, 5, 6]],
    model: forest.toJSON(),
  };
}

describe("ModelRegistry (core, real SQLite file)", () => {
  let directory: string;
  let path: string;
  let registry: ModelRegistry;

  beforeEach(() => {
    directory = mkdtempSync(join(tmpdir(), "model-registry-"));
    path = join(directory, "nested", "models.db");
    registry = new ModelRegistry({ path, table: "iot_models" });
  });

  afterEach(() => {
    registry.close();
    rmSync(directory, { recursive: true, force: true });
  });

  it("creates the table in WAL mode and stores a version with every column, model scoring as before", () => {
    assert.equal(registry.journalMode, "wal");
    registry.add("forest-1", version(1, "warm-up"), true, T0 + 61_000);
    const stored = registry.get("forest-1", 1)!;
    assert.equal(stored.status, "active");
    assert.equal(stored.reason, "warm-up");
    assert.deepEqual(stored.features, ["vibration", "temperature"]);
    assert.deepEqual([stored.trainingRows, stored.trainingFrom, stored.trainingTo, stored.trainingMs], [300, T0, T0 + 299_000, 4.2]);
    assert.deepEqual(stored.trainingSummary, forest.trainingSummary);
    assert.equal(stored.parameters.thresholdMode, "score");
    assert.deepEqual(stored.referenceSample, [[1, 2, 3], [4, 5, 6]]);
    assert.deepEqual([stored.promotedAt, stored.promotionSeq], [T0 + 61_000, 1]);
    const probe = [[2.5, 45], [9, 70]];
    assert.deepEqual(IsolationForest.fromJSON(stored.model).score(probe), forest.score(probe));

    // Readable by any SQLite client with the documented columns.
    const raw = new Database(path, { readonly: true });
    const row = raw.prepare("SELECT detector_id, version, status, training_rows, json_extract(feature_names, '$[0]') AS first FROM iot_models").get();
    raw.close();
    assert.deepEqual(row, { detector_id: "forest-1", version: 1, status: "active", training_rows: 300, first: "vibration" });
  });

  it("keeps one active version per detector; list / latest / active / maxVersion; detectors are separate", () => {
    registry.add("forest-1", version(1), true);
    registry.add("forest-1", version(2), true);
    registry.add("forest-1", version(3), false);
    registry.add("forest-2", version(1), true);
    assert.deepEqual(registry.list("forest-1").map((info) => [info.version, info.status]), [[1, "inactive"], [2, "active"], [3, "inactive"]]);
    assert.equal(registry.active("forest-1")!.version, 2);
    assert.equal(registry.latest("forest-1")!.version, 3);
    assert.equal(registry.maxVersion("forest-1"), 3);
    assert.equal(registry.maxVersion("nobody"), 0);
    assert.equal(registry.active("forest-2")!.version, 1);
    assert.equal("model" in registry.list("forest-1")[0], false, "list leaves the model out");
  });

  it("rolls back along the promotion history, never forward to a rolled-back version; load overrides", () => {
    for (const number of [1, 2, 3]) registry.add("f", version(number), true);
    assert.deepEqual([registry.rollback("f").from, registry.active("f")!.version], [3, 2]);
    assert.deepEqual([registry.rollback("f").from, registry.active("f")!.version], [2, 1]);
    assert.throws(() => registry.rollback("f"), /version 1 is the first version promoted, there is no earlier one/);
    assert.equal(registry.active("f")!.version, 1, "a refused rollback changes nothing");
    assert.deepEqual(registry.list("f").map((info) => info.status), ["active", "rolled-back", "rolled-back"]);

    registry.promote("f", 3);
    assert.equal(registry.active("f")!.version, 3);
    // 3 was promoted after 1: rolling back from 3 goes to 1 (2 stays rolled back).
    assert.equal(registry.rollback("f").to.version, 1);
  });

  it("after a deactivate (reset) a rollback brings back the last active version", () => {
    registry.add("f", version(1), true);
    registry.add("f", version(2), true);
    registry.deactivate("f");
    assert.equal(registry.active("f"), undefined);
    const { from, to } = registry.rollback("f");
    assert.deepEqual([from, to.version], [null, 2]);
  });

  it("refuses an unknown version naming the stored ones, and a duplicate version", () => {
    registry.add("f", version(1), true);
    registry.add("f", version(2), false);
    assert.throws(() => registry.promote("f", 7), (error: Error) => error instanceof ModelRegistryError && /no model version 7 for this node \(stored: 1, 2\)/.test(error.message));
    assert.throws(() => registry.add("f", version(2), true), /storing version 2: UNIQUE constraint failed/);
    assert.equal(registry.active("f")!.version, 1);
  });

  it("prunes the oldest versions beyond keepVersions, never the active one", () => {
    for (const number of [1, 2, 3, 4, 5]) registry.add("f", version(number), true);
    registry.promote("f", 1);
    assert.equal(registry.prune("f", 3), 2);
    assert.deepEqual(registry.list("f").map((info) => info.version), [1, 4, 5]);
    assert.throws(() => registry.prune("f", 0), /"keepVersions" must be a positive integer/);
  });

  it("reports SQLITE_BUSY clearly when another connection holds the write lock, and changes nothing", () => {
    registry.close();
    registry = new ModelRegistry({ path, busyTimeoutMs: 50 });
    registry.add("f", version(1), true);
    const other = new Database(path);
    other.exec("BEGIN IMMEDIATE");
    try {
      assert.throws(
        () => registry.add("f", version(2), true),
        (error: Error) =>
          error instanceof ModelRegistryError &&
          error.retriable &&
          error.code === "SQLITE_BUSY" &&
          /models database .*models\.db is busy: another connection held its lock for more than 50 ms while storing version 2; nothing was changed/.test(error.message),
      );
    } finally {
      other.exec("ROLLBACK");
      other.close();
    }
    assert.equal(registry.active("f")!.version, 1);
    registry.add("f", version(2), true);
    assert.equal(registry.active("f")!.version, 2, "works again once the lock is released");
  });

  it("validates the table name and refuses a foreign table of that name", () => {
    assert.throws(() => new ModelRegistry({ path, table: "models; DROP TABLE x" }), /"modelsTable" must be a plain SQL name/);
    assert.throws(() => new ModelRegistry({ path, table: "sqlite_models" }), /"modelsTable" must not start with "sqlite_"/);
    const raw = new Database(path);
    raw.exec("CREATE TABLE other_things (id INTEGER, name TEXT)");
    raw.close();
    assert.throws(() => new ModelRegistry({ path, table: "other_things" }), /table "other_things" in .* exists without the columns detector_id, version/);
    assert.throws(() => new ModelRegistry({ path: join(directory, "file.db", "x", "\0") }), /cannot open the models database/);
  });

  it("reopens an existing database with its versions (the table is not recreated)", () => {
    registry.add("f", version(1), true);
    registry.close();
    registry = new ModelRegistry({ path });
    assert.equal(registry.active("f")!.version, 1);
  });
});
