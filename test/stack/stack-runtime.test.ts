// The container's Node-RED, run here without Docker: the image's settings file (docker/node-red/settings.js) and the
// package installed from its packed tarball, running the embedded pipeline (simulated stations -> rolling 3-sigma ->
// isolation forest -> the same sqlite-sink the medallion's Gold layer uses). Against that one runtime:
//  - adminAuth: no start without a password hash; a wrong password gets no token; the admin API wants one;
//  - every SQL query of the provisioned dashboards, with Grafana's variables and the SQLite plugin's macros
//    substituted, runs on the database the sink is writing and returns the columns its panel needs, with rows;
//  - a real Prometheus (Debian's) scrapes /metrics with the stack's own scrape config, and every metric the
//    dashboards and the alert rule query is in what it scraped (Kafka lag: see below and stack-kafka-lag.test.ts).
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { hashSync } from "bcryptjs";
import { repositoryRoot } from "../../scripts/node-red-runtime";
import { flowFileEnv, installedUserDir } from "../support/packed-install";
import {
  alertExpressions,
  dockerDir,
  executableSql,
  loadDashboards,
  loadYaml,
  panelTargets,
  PROMETHEUS_DATASOURCE,
  promqlMetricNames,
  SQLITE_DATASOURCE,
  substituteGrafanaVariables,
  substitutePromVariables,
  type SqlContext,
} from "../support/stack-dashboards";
import { startContainerNodeRed, type ContainerNodeRed } from "../support/stack-node-red";
import { startPrometheus, type RunningPrometheus } from "../support/stack-prometheus";
import { requireCommand } from "../support/stack-tools";

interface FlowNode {
  id: string;
  type: string;
  [property: string]: unknown;
}

const ADMIN_USER = "operator";
const ADMIN_PASSWORD = "correct horse battery staple";
const STATIONS = 5;
/** Only a runtime with a kafka-in has consumer lag; this pipeline has none (see stack-kafka-lag.test.ts). */
const KAFKA_LAG_METRIC = "iot_anomaly_kafka_consumer_lag";
/** Series of a kafka-in only (lag per partition; retries and dead letters per group and topic), with their type. */
const KAFKA_IN_METRICS: Record<string, string> = {
  [KAFKA_LAG_METRIC]: "gauge",
  iot_anomaly_kafka_retries_total: "counter",
  iot_anomaly_kafka_dead_lettered_total: "counter",
};
const isKafkaInMetric = (name: string): boolean => name in KAFKA_IN_METRICS;

/** The embedded pipeline writing to `databasePath`, faster, plus one invalid event so that an error is counted. */
function pipelineFlow(databasePath: string): FlowNode[] {
  const flow = JSON.parse(readFileSync(join(repositoryRoot, "examples", "embedded-pipeline.json"), "utf8")) as FlowNode[];
  const simulator = flow.find((node) => node.type === "iot-sensor-sim")!;
  Object.assign(simulator, { stations: STATIONS, ratePerStation: 100, seed: 11 });
  Object.assign(flow.find((node) => node.type === "iot-sqlite-sink")!, { path: databasePath, flushInterval: 100 });
  for (const node of flow) if (node.type === "debug") node.active = false;
  const tab = flow.find((node) => node.type === "tab")!.id;
  const detector = flow.find((node) => node.type === "iot-rolling-3-sigma")!.id;
  flow.push({
    id: "5ac0000000000001",
    z: tab,
    type: "inject",
    name: "one invalid event",
    props: [{ p: "payload" }],
    payload: '{"sensorId":"station-99","timestamp":1,"readings":{"temperature":"n/a"}}',
    payloadType: "json",
    once: true,
    onceDelay: 1,
    repeat: "",
    crontab: "",
    topic: "",
    x: 330,
    y: 200,
    wires: [[detector]],
  });
  return flow;
}

async function waitFor<T>(what: string, probe: () => T | Promise<T>, done: (value: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await probe();
  while (!done(value)) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(value)})`);
    await new Promise((resolve) => setTimeout(resolve, 250));
    value = await probe();
  }
  return value;
}

interface Progress {
  rows: number;
  scored: number;
  sigmaFlags: number;
  forestFlags: number;
}

function pipelineProgress(databasePath: string): Progress {
  let database: Database.Database | undefined;
  try {
    database = new Database(databasePath, { readonly: true, fileMustExist: true });
    return database
      .prepare("SELECT count(*) AS rows, count(iforest_score) AS scored, coalesce(sum(sigma_anomaly), 0) AS sigmaFlags, coalesce(sum(iforest_anomaly), 0) AS forestFlags FROM events")
      .get() as Progress;
  } catch {
    return { rows: 0, scored: 0, sigmaFlags: 0, forestFlags: 0 };
  } finally {
    database?.close();
  }
}

describe("stack: the container's Node-RED settings and package, with real data", function () {
  // The first user of the packed install in a mocha process compiles better-sqlite3 (1–2 minutes).
  this.timeout(600_000);
  let workDir: string;
  let databasePath: string;
  let userDir: string;
  let flowEnv: Record<string, string>;
  let runtime: ContainerNodeRed | undefined;

  before(async () => {
    workDir = mkdtempSync(join(tmpdir(), "iot-anomaly-stack-"));
    databasePath = join(workDir, "anomalies.db");
    const installed = await installedUserDir();
    userDir = installed.userDir;
    flowEnv = flowFileEnv(userDir, "stack", pipelineFlow(databasePath));
    runtime = await startContainerNodeRed({
      userDir,
      flowFile: flowEnv.NODE_RED_FLOW_FILE,
      env: {
        IOT_ANOMALY_FROM_WORKING_COPY: flowEnv.IOT_ANOMALY_FROM_WORKING_COPY,
        IOT_ANOMALY_STATE_DIR: join(workDir, "state"),
        NODE_RED_ADMIN_USER: ADMIN_USER,
        NODE_RED_ADMIN_PASSWORD_HASH: hashSync(ADMIN_PASSWORD, 8),
      },
    });
    // Forest trained (1000 events) and both detectors have flagged something.
    await waitFor(
      "rows scored and flagged by both detectors",
      () => pipelineProgress(databasePath),
      (progress) => progress.rows >= 5000 && progress.scored >= 2000 && progress.sigmaFlags > 0 && progress.forestFlags > 0,
      120_000,
    ).catch((error: Error) => {
      throw new Error(`${error.message}\nNode-RED log:\n${runtime?.log().slice(-3000)}`);
    });
  });

  after(async () => {
    await runtime?.stop();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  describe("adminAuth from the environment (docker/node-red/settings.js)", () => {
    const token = (password: string) =>
      fetch(`${runtime!.url}/auth/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ client_id: "node-red-editor", grant_type: "password", scope: "*", username: ADMIN_USER, password }),
      });

    it("rejects a wrong password and issues a token for the right one", async () => {
      const wrong = await token("not the password");
      assert.ok(wrong.status === 401 || wrong.status === 403, `a wrong password got HTTP ${wrong.status}`);
      assert.equal(((await wrong.json()) as { access_token?: string }).access_token, undefined);
      const right = await token(ADMIN_PASSWORD);
      assert.equal(right.status, 200);
      assert.match(((await right.json()) as { access_token: string }).access_token, /^\S{20,}$/);
    });

    it("guards the admin API: GET /flows is 401 without a token and serves the flows with one", async () => {
      assert.equal((await fetch(`${runtime!.url}/flows`)).status, 401);
      const { access_token: accessToken } = (await (await token(ADMIN_PASSWORD)).json()) as { access_token: string };
      const flows = await fetch(`${runtime!.url}/flows`, { headers: { authorization: `Bearer ${accessToken}` } });
      assert.equal(flows.status, 200);
      assert.ok(((await flows.json()) as FlowNode[]).some((node) => node.type === "iot-sqlite-sink"));
    });

    it("leaves /metrics open for Prometheus (httpNode, not the admin API)", async () => {
      const response = await fetch(`${runtime!.url}/metrics`);
      assert.equal(response.status, 200);
      assert.match(await response.text(), /^iot_anomaly_events_in_total\{/m);
    });

    it("refuses to start without a password hash, or with something that is not a bcrypt hash", async () => {
      for (const [hash, complaint] of [
        ["", /NODE_RED_ADMIN_PASSWORD_HASH is not set/],
        ["plain-text-password", /NODE_RED_ADMIN_PASSWORD_HASH is not a bcrypt hash/],
      ] as const) {
        const refused = await startContainerNodeRed({
          userDir: workDir,
          flowFile: "flows-none.json",
          env: { NODE_RED_ADMIN_PASSWORD_HASH: hash },
          readyPattern: null,
        });
        const code = await Promise.race([refused.exited, new Promise<"running">((resolve) => setTimeout(() => resolve("running"), 30_000))]);
        if (code === "running") await refused.stop();
        assert.notEqual(code, "running", `Node-RED kept running with NODE_RED_ADMIN_PASSWORD_HASH=${JSON.stringify(hash)}`);
        assert.notEqual(code, 0);
        assert.match(refused.log(), complaint);
        assert.doesNotMatch(refused.log(), /Server now running/);
      }
    });
  });

  describe("dashboard SQL on the sink's database (docker/grafana/dashboards)", () => {
    const sqlTargets = panelTargets().filter((entry) => entry.datasource?.type === SQLITE_DATASOURCE);

    /** The dashboard's own default range (now-15m .. now) and its variables resolved by their own queries. */
    function dashboardContext(database: Database.Database, dashboardUid: string): SqlContext {
      const toMs = Date.now();
      const context: SqlContext = { fromMs: toMs - 15 * 60_000, toMs, intervalMs: 2000, variables: {} };
      const dashboard = loadDashboards().find((entry) => entry.dashboard.uid === dashboardUid)!.dashboard;
      for (const variable of dashboard.templating?.list ?? []) {
        const sql = substituteGrafanaVariables(variable.query!, context);
        const rows = database.prepare(sql).raw().all() as unknown[][];
        assert.ok(rows.length > 0, `variable ${variable.name} has options (${sql})`);
        const options = rows.map((row) => String(row[0]));
        // "All" selects every option; a single-valued variable starts on its first option, as in Grafana.
        context.variables[variable.name] = variable.includeAll ? options : [options[0]];
      }
      return context;
    }

    it("the variables list the simulated stations and their readings", () => {
      const database = new Database(databasePath, { readonly: true });
      try {
        const context = dashboardContext(database, "iot-anomaly-data");
        assert.deepEqual(context.variables.sensor, ["station-01", "station-02", "station-03", "station-04", "station-05"]);
        assert.deepEqual(context.variables.metric, ["humidity"], "first of humidity, sound, temperature");
      } finally {
        database.close();
      }
    });

    it("every SQLite panel query runs and returns the columns its panel reads, with rows", () => {
      assert.ok(sqlTargets.length >= 8, `found ${sqlTargets.length} SQLite targets`);
      // Read-only while the sink keeps writing, as Grafana's data source does (pathOptions mode=ro).
      const database = new Database(databasePath, { readonly: true });
      const contexts = new Map<string, SqlContext>();
      const summary: string[] = [];
      try {
        for (const { dashboard, panel, target } of sqlTargets) {
          const where = `${dashboard.uid} "${panel.title}" ${target.refId}`;
          const context = contexts.get(dashboard.uid) ?? dashboardContext(database, dashboard.uid);
          contexts.set(dashboard.uid, context);
          const sql = executableSql(target, context);
          const statement = database.prepare(sql);
          const columns = statement.columns().map((column) => column.name);
          const rows = statement.all() as Array<Record<string, unknown>>;
          summary.push(`${where}: ${rows.length} rows`);
          assert.ok(rows.length > 0, `${where} returned no rows:\n${sql}`);

          const timeColumns = target.timeColumns ?? [];
          for (const name of timeColumns.filter((column) => columns.includes(column))) {
            // Unix seconds (the plugin's reading of a number) inside the queried range.
            for (const row of rows) {
              const seconds = row[name] as number;
              assert.equal(typeof seconds, "number", `${where}: ${name} is a number`);
              assert.ok(seconds >= context.fromMs / 1000 - 60 && seconds <= context.toMs / 1000 + 1, `${where}: ${name}=${seconds} is in the range, in seconds`);
            }
          }

          if (panel.type === "timeseries") {
            assert.equal(columns[0], "time", `${where}: the first column is the time`);
            assert.ok(timeColumns.includes("time"));
            const valueColumns = columns.filter((name) => name !== "time" && rows.some((row) => typeof row[name] === "number"));
            const labelColumns = columns.filter((name) => name !== "time" && !valueColumns.includes(name));
            assert.ok(valueColumns.length >= 1, `${where}: at least one numeric value column (got ${columns.join(", ")})`);
            for (const name of labelColumns) assert.ok(rows.every((row) => typeof row[name] === "string"), `${where}: ${name} is a text label`);
            for (const name of valueColumns) assert.ok(rows.every((row) => row[name] === null || typeof row[name] === "number"), `${where}: ${name} is numeric`);
            // Long format for the plugin: rows in ascending time.
            for (let i = 1; i < rows.length; i++) assert.ok((rows[i].time as number) >= (rows[i - 1].time as number), `${where}: rows ordered by time`);
          } else if (panel.type === "stat") {
            assert.equal(rows.length, 1, `${where}: one row`);
            assert.equal(columns.length, 1, `${where}: one value`);
            assert.ok((rows[0][columns[0]] as number) > 0, `${where}: ${columns[0]} = ${rows[0][columns[0]]}`);
          }
          // Columns a panel names (field overrides by name) must be returned.
          for (const override of panel.fieldConfig?.overrides ?? []) {
            if (override.matcher.id === "byName") assert.ok(columns.includes(override.matcher.options), `${where}: column ${override.matcher.options} for an override`);
          }
        }
      } finally {
        database.close();
      }
      console.log(`      ${summary.join("; ")}`);
    });

    it("shows what the panels promise: markers are flagged events, rates per detector, the table lists anomalies", () => {
      const database = new Database(databasePath, { readonly: true });
      try {
        const context = dashboardContext(database, "iot-anomaly-data");
        const run = (title: string, refId = "A") => {
          const entry = sqlTargets.find(({ panel, target }) => panel.title.startsWith(title) && target.refId === refId);
          assert.ok(entry, `a panel "${title}" with target ${refId}`);
          const statement = database.prepare(executableSql(entry!.target, context));
          return { columns: statement.columns().map((column) => column.name), rows: statement.all() as Array<Record<string, unknown>> };
        };
        const markers = run("Sensor readings with anomaly markers", "B");
        assert.deepEqual(markers.columns, ["time", "sensor_id", "anomaly"]);
        const readings = run("Sensor readings with anomaly markers", "A");
        assert.deepEqual(readings.columns, ["time", "sensor_id", "reading"]);
        assert.equal(new Set(readings.rows.map((row) => row.sensor_id)).size, STATIONS, "one series per station");

        const rates = run("Anomaly rate by sensor and detector");
        assert.deepEqual(rates.columns, ["time", "sensor_id", "rolling_3_sigma", "isolation_forest"]);
        for (const row of rates.rows) {
          for (const detector of ["rolling_3_sigma", "isolation_forest"]) {
            const percent = row[detector] as number | null;
            assert.ok(percent === null || (percent >= 0 && percent <= 100), `${detector} share ${percent} is a percentage`);
          }
        }

        const table = run("Latest anomalies");
        assert.deepEqual(table.columns, ["time", "sensor_id", "detector", "flagged_metrics", "max_abs_z", "forest_score", "injected_fault", "readings", "event_id"]);
        assert.ok(table.rows.length > 0 && table.rows.length <= 200);
        assert.ok(table.rows.every((row) => ["both", "rolling 3-sigma", "isolation forest"].includes(row.detector as string)), "every row names the detector that flagged it");
        const ids = table.rows.map((row) => row.event_id as string);
        const flagged = database.prepare(`SELECT count(*) AS n FROM events WHERE anomaly = 1 AND event_id IN (${ids.map(() => "?").join(",")})`).get(...ids) as { n: number };
        assert.equal(flagged.n, ids.length, "the table lists flagged events only");
        for (let i = 1; i < table.rows.length; i++) assert.ok((table.rows[i].time as number) <= (table.rows[i - 1].time as number), "newest first");

        const shares = database
          .prepare("SELECT count(*) AS events, 100.0 * avg(sigma_anomaly) AS sigma, 100.0 * avg(iforest_anomaly) AS forest FROM events")
          .get() as { events: number; sigma: number; forest: number };
        console.log(`      flagged: rolling 3-sigma ${shares.sigma.toFixed(2)}%, isolation forest ${shares.forest.toFixed(2)}% of ${shares.events} events`);
      } finally {
        database.close();
      }
    });
  });

  describe("Prometheus scraping the runtime (docker/prometheus/prometheus.yml)", () => {
    let prometheus: RunningPrometheus | undefined;

    /** Every PromQL expression of the dashboards and the alert rule, with where it comes from. */
    const expressions = [
      ...panelTargets()
        .filter((entry) => entry.datasource?.type === PROMETHEUS_DATASOURCE)
        .map(({ dashboard, panel, target }) => ({ where: `${dashboard.uid} "${panel.title}" ${target.refId}`, expr: target.expr! })),
      ...alertExpressions().map(({ rule, expr }) => ({ where: `alert rule ${rule.uid}`, expr })),
    ];

    before(async function () {
      const binary = requireCommand(this, "prometheus", "prometheus");
      // The stack's scrape config with the Node-RED target pointed here and a 1 s interval (no other job).
      const config = loadYaml<{ global: Record<string, string>; scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }> }>(
        join(dockerDir, "prometheus", "prometheus.yml"),
      );
      config.global.scrape_interval = "1s";
      config.scrape_configs = config.scrape_configs.filter((job) => job.job_name === "node-red");
      config.scrape_configs[0].static_configs[0].targets = [`127.0.0.1:${runtime!.port}`];
      prometheus = await startPrometheus(binary, JSON.stringify(config));
      // Enough scrapes for rate() over the dashboards' windows, and the anomaly counter among them.
      await waitFor(
        "a healthy target and the package's metrics in Prometheus",
        async () => {
          const [target] = await prometheus!.targets();
          const names = await prometheus!.metricNames();
          return { health: target?.health, lastError: target?.lastError, anomalies: names.includes("iot_anomaly_anomalies_total") };
        },
        (state) => state.health === "up" && state.anomalies,
        60_000,
      );
      await new Promise((resolve) => setTimeout(resolve, 5000));
    });

    after(async () => {
      await prometheus?.stop();
    });

    it("scrapes the target successfully", async () => {
      const targets = await prometheus!.targets();
      assert.equal(targets.length, 1);
      assert.equal(targets[0].health, "up", targets[0].lastError);
      assert.equal(targets[0].scrapeUrl, `http://127.0.0.1:${runtime!.port}/metrics`);
    });

    it("holds every metric the dashboards and the alert rule query (kafka-in's: declared, no series without a kafka-in)", async () => {
      assert.ok(expressions.length >= 10, `found ${expressions.length} PromQL expressions`);
      const scraped = new Set(await prometheus!.metricNames());
      const used = new Set(expressions.flatMap(({ expr }) => promqlMetricNames(substitutePromVariables(expr, "30s"))));
      for (const name of ["iot_anomaly_events_in_total", "iot_anomaly_anomalies_total", "iot_anomaly_score", KAFKA_LAG_METRIC]) assert.ok(used.has(name), `a query reads ${name}`);
      for (const name of used) {
        if (isKafkaInMetric(name)) continue;
        assert.ok(scraped.has(name), `${name} (used by a dashboard or the alert) is not in what Prometheus scraped`);
      }
      // kafka-in's series exist only while one runs (lag per partition, retries and dead letters per group and topic):
      // here the families are declared (HELP/TYPE in the scrape, so Prometheus keeps their metadata) but have no
      // series. stack-kafka-lag.test.ts checks them on a broker.
      const metadata = await prometheus!.metadata();
      for (const [name, type] of Object.entries(KAFKA_IN_METRICS)) {
        assert.ok(used.has(name), `a dashboard reads ${name}`);
        assert.ok(!scraped.has(name), `no kafka-in runs here, so no ${name} series`);
        assert.equal(metadata[name]?.[0]?.type, type, `Prometheus saw ${name} declared as a ${type}`);
      }
      console.log(`      ${used.size} metric names used; ${[...scraped].filter((name) => name.startsWith("iot_anomaly_")).length} iot_anomaly_* series names scraped`);
    });

    it("every dashboard and alert expression returns series (except kafka-in's panels here)", async () => {
      for (const { where, expr } of expressions) {
        const query = substitutePromVariables(expr, "30s");
        const result = await prometheus!.instantQuery(query);
        if (promqlMetricNames(query).some(isKafkaInMetric)) {
          assert.deepEqual(result, [], `${where}: no kafka-in series without a kafka-in`);
          continue;
        }
        assert.ok(result.length > 0, `${where}: ${query} returned no series`);
      }
    });

    it("the alert query yields every sensor and detector, as the percent of its events flagged", async () => {
      const [{ expr }] = alertExpressions();
      const result = await prometheus!.instantQuery(expr);
      const sensors = new Set(result.map((series) => series.metric.sensor_id));
      const detectors = new Set(result.map((series) => series.metric.detector));
      // Every station, the ones never flagged too: their anomaly counter exists at 0, so they read 0 %, not "no data".
      assert.equal(sensors.size, STATIONS, `sensors: ${[...sensors].join(", ")}`);
      assert.deepEqual([...detectors].sort(), ["isolation_forest", "rolling_3_sigma"]);
      const percents = result.map((series) => Number(series.value[1]));
      assert.ok(percents.every((percent) => percent >= 0 && percent <= 100), `percents: ${percents.join(", ")}`);
      // The detectors flag about 3 % of the simulated events in all (see the SQLite shares above): on average over the
      // series the query must read a few percent, not a count per minute.
      const mean = percents.reduce((sum, percent) => sum + percent, 0) / percents.length;
      assert.ok(mean > 0.5 && mean < 15, `mean share flagged ${mean.toFixed(2)} %`);
      console.log(`      share flagged over the last 5 min: mean ${mean.toFixed(2)} % over ${result.length} series`);
    });
  });
});
