import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NAB_DEFAULT_PROFILES, parseNabProfiles, parseNabTable, readNabCorpus, windowsToRows } from "../../src/core/nab";

const MINI = join(__dirname, "..", "fixtures", "nab-mini");

describe("NAB corpus reading", () => {
  it("reads data, windows and NAB's built-in profiles from a corpus without config/profiles.json", () => {
    const corpus = readNabCorpus(MINI);
    assert.deepEqual(corpus.series.map((series) => series.name), ["synthetic/quiet.csv", "synthetic/spike.csv"]);
    assert.deepEqual(corpus.series[1].windows, [{ first: 290, last: 309 }]);
    assert.equal(corpus.series[1].table.values.length, 400);
    assert.deepEqual(corpus.profiles, NAB_DEFAULT_PROFILES);
  });

  it("maps a window edge to the first row with that time, as NAB does when a file repeats a time", () => {
    const times = new Float64Array([0, 1000, 1000, 2000, 3000, 3000, 4000]);
    const iso = (ms: number) => new Date(ms).toISOString().replace("T", " ").replace("Z", "");
    assert.deepEqual(windowsToRows(times, [[iso(1000), iso(3000)]], "test"), [{ first: 1, last: 4 }]);
    assert.throws(() => windowsToRows(times, [[iso(9000), iso(9500)]], "labels"), /labels: window .* holds no row/);
  });

  it("names the file, line and column of a bad cell", () => {
    assert.throws(() => parseNabTable("timestamp,value\n2024-01-01 00:00:00,n/a\n", "x.csv"), /x\.csv: line 2: "value" is not a number \(got "n\/a"\)/);
    assert.throws(() => parseNabTable("time,value\n", "x.csv"), /x\.csv: line 1: column "timestamp" not found/);
    assert.throws(() => parseNabTable("timestamp,value\n2024-01-01 00:00:00,1\n", "r.csv", true), /column "anomaly_score" not found/);
  });

  it("reads profiles.json and names the profile and field at fault", () => {
    const profiles = parseNabProfiles('{"strict": {"CostMatrix": {"tpWeight": 1, "fpWeight": 0.5, "fnWeight": 1, "tnWeight": 1}}}');
    assert.deepEqual(profiles, [{ name: "strict", tpWeight: 1, fpWeight: 0.5, fnWeight: 1 }]);
    assert.throws(() => parseNabProfiles('{"strict": {"CostMatrix": {"tpWeight": 1, "fnWeight": 1}}}'), /profile "strict" needs "CostMatrix\.fpWeight"/);
  });

  it("says which series has no labels and which folder is missing", () => {
    const root = mkdtempSync(join(tmpdir(), "nab-corpus-"));
    try {
      assert.throws(() => readNabCorpus(join(root, "nope")), /corpus folder .*nope does not exist/);
      assert.throws(() => readNabCorpus(root), /has no data\/ folder/);
      mkdirSync(join(root, "data", "cat"), { recursive: true });
      mkdirSync(join(root, "labels"));
      writeFileSync(join(root, "data", "cat", "s.csv"), "timestamp,value\n2024-01-01 00:00:00,1\n");
      writeFileSync(join(root, "labels", "combined_windows.json"), "{}");
      assert.throws(() => readNabCorpus(root), /has no entry for "cat\/s\.csv"/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
