// Runs the `iot-anomaly` command as a user would: the built dist/src/cli/iot-anomaly.js when `npm run build` made
// it (npm test builds first), else the TypeScript source through tsx.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { requireSharedData } from "../support/shared-data";

const REPO = resolve(__dirname, "..", "..");
const BUILT = join(REPO, "dist", "src", "cli", "iot-anomaly.js");
const SOURCE = join(REPO, "src", "cli", "iot-anomaly.ts");
const MINI = join(REPO, "test", "fixtures", "nab-mini");

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const command = existsSync(BUILT) ? [BUILT] : ["--import", "tsx", SOURCE];
  const result = spawnSync(process.execPath, [...command, ...args], { cwd: REPO, encoding: "utf8", timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe(`iot-anomaly CLI (${existsSync(BUILT) ? "built dist/" : "source via tsx"})`, () => {
  let temp: string;
  before(() => {
    temp = mkdtempSync(join(tmpdir(), "iot-anomaly-cli-"));
  });
  after(() => rmSync(temp, { recursive: true, force: true }));

  it("evaluate --results re-scores NAB's published numenta output to NAB's own numbers (--json)", function () {
    const nab = requireSharedData(this, "nab");
    const reference = JSON.parse(readFileSync(join(nab, "reference_scores.json"), "utf8")).normalized_scores;
    for (const detector of ["numenta", "windowedGaussian"]) {
      const { status, stdout, stderr } = run("evaluate", "--corpus", nab, "--results", join(nab, "results", detector), "--json");
      assert.equal(status, 0, stderr);
      const report = JSON.parse(stdout);
      for (const profile of ["standard", "reward_low_FP_rate", "reward_low_FN_rate"]) {
        assert.ok(Math.abs(report[profile] - reference[detector][profile]) < 0.5, `${detector} ${profile}: ${report[profile]}`);
      }
      assert.equal(Object.keys(report.files).length, 24);
    }
  });

  it("evaluate --detector best keeps the README's claim: NAB standard above 60 on the shared subset", function () {
    const nab = requireSharedData(this, "nab");
    const { status, stdout, stderr } = run("evaluate", "--corpus", nab, "--detector", "best", "--json");
    assert.equal(status, 0, stderr);
    const report = JSON.parse(stdout);
    assert.ok(report.standard > 60, `standard ${report.standard}`);
    assert.deepEqual(report.rangeModes, ["configured"]);
  });

  it("evaluate --detector prints the three NAB scores and per-series precision and recall", () => {
    const { status, stdout, stderr } = run("evaluate", "--corpus", MINI, "--detector", "rolling-3-sigma");
    assert.equal(status, 0, stderr);
    assert.match(stdout, /^standard\s+-?\d+\.\d\d\s/m);
    assert.match(stdout, /^reward_low_FP_rate\s+-?\d+\.\d\d\s/m);
    assert.match(stdout, /^reward_low_FN_rate\s+-?\d+\.\d\d\s/m);
    // the burst in spike.csv is found: its one window detected, recall 100%
    assert.match(stdout, /^synthetic\/spike\.csv\s+1\s+1\s+\d+\s+\d+%\s+100%$/m);
    assert.match(stdout, /^synthetic\/quiet\.csv\s+0\s+0\s+\d+\s+\S+\s+-$/m);
  });

  it("evaluate --json with a config file gives scores, thresholds and per-file window counts", () => {
    const config = join(temp, "sigma.json");
    writeFileSync(config, JSON.stringify({ windowSize: 60, cooldownRows: "auto" }));
    const { status, stdout, stderr } = run("evaluate", "--corpus", MINI, "--detector", "rolling-3-sigma", "--config", config, "--json");
    assert.equal(status, 0, stderr);
    const report = JSON.parse(stdout);
    assert.equal(report.detector.windowSize, 60);
    assert.ok(report.standard > 50, `standard ${report.standard}`);
    assert.equal(report.files["synthetic/spike.csv"].standard.recall, 1);
    assert.equal(typeof report.profiles.reward_low_FN_rate.threshold, "number");
  });

  it("detect writes NAB's results format, label 1 on the rows it alerts on", () => {
    const output = join(temp, "spike-results.csv");
    const input = join(MINI, "data", "synthetic", "spike.csv");
    const { status, stderr } = run("detect", input, "--detector", "rolling-3-sigma", "--output", output);
    assert.equal(status, 0, stderr);
    const lines = readFileSync(output, "utf8").trim().split("\n");
    assert.equal(lines[0], "timestamp,value,anomaly_score,label");
    assert.equal(lines.length, 401);
    const burst = lines[301].split(","); // data row 300, the burst's first row
    assert.equal(burst[0], "2024-01-02 01:00:00");
    assert.ok(Number(burst[2]) >= 0.5 && burst[3] === "1", lines[301]);
    assert.ok(lines.slice(1).every((line) => /^[\d-]+ [\d:]+,[\d.]+,[\d.e-]+,[01]$/.test(line)));
  });

  it("detect --json lists the alerts", () => {
    const { status, stdout, stderr } = run("detect", join(MINI, "data", "synthetic", "spike.csv"), "--detector", "rolling-3-sigma", "--json");
    assert.equal(status, 0, stderr);
    const report = JSON.parse(stdout);
    assert.equal(report.rowCount, 400);
    assert.ok(report.alerts.some((alert: { timestamp: string }) => alert.timestamp === "2024-01-02 01:00:00"));
  });

  it("exits with status 2 and a one-line message on bad usage", () => {
    const badJson = join(temp, "bad.json");
    writeFileSync(badJson, "{ windowSize: 60 ");
    const badOption = join(temp, "bad-option.json");
    writeFileSync(badOption, JSON.stringify({ k: "three" }));
    const cases: Array<[string[], RegExp]> = [
      [["evaluate", "--corpus", MINI, "--detector", "nope"], /unknown detector "nope" \(known: .*rolling-3-sigma/],
      [["evaluate", "--corpus", join(temp, "missing"), "--detector", "rolling-3-sigma"], /corpus folder .*missing does not exist/],
      [["evaluate", "--corpus", MINI, "--detector", "rolling-3-sigma", "--config", badJson], /config file .*bad\.json is not valid JSON/],
      [["evaluate", "--corpus", MINI, "--detector", "rolling-3-sigma", "--config", badOption], /config "k" must be a positive number \(got "three"\)/],
      [["evaluate", "--corpus", MINI], /needs --detector/],
      [["evaluate", "--corpus", MINI, "--detector", "rolling-3-sigma", "--frobnicate"], /Unknown option '--frobnicate'/],
      [["detect", join(temp, "none.csv"), "--detector", "rolling-3-sigma"], /input file .*none\.csv does not exist/],
      [["scramble"], /unknown command "scramble"/],
    ];
    for (const [args, message] of cases) {
      const { status, stdout, stderr } = run(...args);
      assert.equal(status, 2, `${args.join(" ")}: ${stderr}`);
      assert.equal(stdout, "");
      assert.match(stderr, message);
      assert.equal(stderr.trim().split("\n").length, 1, stderr);
    }
  });

  it("--help lists the subcommands and the named detectors", () => {
    const { status, stdout } = run("--help");
    assert.equal(status, 0);
    assert.match(stdout, /iot-anomaly evaluate --corpus/);
    assert.match(stdout, /iot-anomaly detect/);
    assert.match(stdout, /Detectors: .*rolling-3-sigma.*isolation-forest/);
  });
});
