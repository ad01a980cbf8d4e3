// `npm start` as the README describes it (minus the build, which npm test has just done): it seeds the embedded
// pipeline into the user directory, prints the database path, events reach SQLite within seconds, and Prometheus
// metrics are served at /metrics.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { freePort, repositoryRoot } from "../../scripts/node-red-runtime";

describe("integration: npm start", function () {
  this.timeout(90_000);

  it("runs the embedded pipeline on a fresh user directory and prints where the database is", async () => {
    const userDir = mkdtempSync(join(tmpdir(), "iot-anomaly-start-"));
    const port = await freePort();
    const child = spawn(process.execPath, ["--import", "tsx", join(repositoryRoot, "scripts", "start.ts")], {
      cwd: repositoryRoot,
      env: { ...process.env, NODE_RED_USER_DIR: userDir, PORT: String(port) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    try {
      const databasePath = join(userDir, "anomalies.db");
      let rows = 0;
      const deadline = Date.now() + 60_000;
      while (rows < 100 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        if (!existsSync(databasePath)) continue;
        try {
          const database = new Database(databasePath, { readonly: true });
          rows = (database.prepare("SELECT count(*) AS n FROM events").get() as { n: number }).n;
          database.close();
        } catch {
          // table not created yet
        }
      }
      assert.ok(rows >= 100, `only ${rows} rows after 60 s. Output:\n${output.slice(-3000)}`);
      assert.ok(output.includes(`SQLite database: ${databasePath}`), "the database path is printed");
      assert.ok(output.includes(`editor: http://127.0.0.1:${port}/`), "the editor address is printed");
      assert.ok(existsSync(join(userDir, "flows.json")), "the example flow was seeded");

      // Prometheus metrics on the Node-RED HTTP server, with samples from every node of the pipeline.
      // Scores appear once a sensor's window is warm (minSamples readings), a few seconds in.
      let metrics = "";
      for (const scraped = Date.now() + 30_000; Date.now() < scraped && !/^iot_anomaly_score\{/m.test(metrics); ) {
        const response = await fetch(`http://127.0.0.1:${port}/metrics`);
        assert.equal(response.status, 200);
        assert.match(response.headers.get("content-type") ?? "", /^text\/plain;.*version=0\.0\.4/);
        metrics = await response.text();
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      for (const nodeType of ["iot-sensor-sim", "iot-rolling-3-sigma", "iot-isolation-forest", "iot-sqlite-sink"]) {
        assert.match(metrics, new RegExp(`^iot_anomaly_events_out_total\\{node_type="${nodeType}",[^}]*\\} [1-9]`, "m"), `${nodeType} counts its events`);
      }
      assert.match(metrics, /^iot_anomaly_score\{sensor_id="[^"]+",detector="rolling_3_sigma"\} /m);
      assert.match(metrics, /^iot_anomaly_processing_seconds_count\{node_type="iot-sqlite-sink"\} [1-9]/m);
      assert.match(metrics, /^iot_anomaly_sqlite_commit_seconds_count\{table="events"\} [1-9]/m);
      assert.match(metrics, /^process_cpu_seconds_total /m);
    } finally {
      child.kill("SIGINT");
      assert.equal(await exited, 0, "Ctrl+C stops Node-RED cleanly");
      rmSync(userDir, { recursive: true, force: true });
    }
  });
});
