// The metrics stack-runtime.test.ts cannot see: Kafka consumer lag, retries and dead letters exist only for a running
// kafka-in. Here the container's Node-RED (its settings file, the packed package) runs the medallion flows against a
// real broker, and the stack's Prometheus config scrapes it: the lag panel of the pipeline-health dashboard gets a
// series per group, topic and partition, all at 0 once every event is stored, the retries panel a series per group
// and topic at 0, and with them every metric the dashboards and the alert rule read is in what Prometheus scraped.
// Broker: KAFKA_BROKERS, or under CI=true the project's own (test/support/kafka-broker.ts starts it); elsewhere,
// without KAFKA_BROKERS, the test skips rather than start a broker.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hashSync } from "bcryptjs";
import { endOffsets, kafkaBrokers } from "../support/kafka-broker";
import { configureFlow, createPipelineNames, loadExample, waitForRows, type PipelineNames } from "../support/medallion";
import { flowFileEnv, installedUserDir } from "../support/packed-install";
import { alertExpressions, dockerDir, loadYaml, panelTargets, PROMETHEUS_DATASOURCE, promqlMetricNames, substitutePromVariables } from "../support/stack-dashboards";
import { startContainerNodeRed, type ContainerNodeRed } from "../support/stack-node-red";
import { startPrometheus, type RunningPrometheus } from "../support/stack-prometheus";
import { requireCommand } from "../support/stack-tools";

const EVENTS = 3000;
const PARTITIONS = 3;

describe("stack: Kafka consumer lag of the medallion flows, scraped by Prometheus", function () {
  this.timeout(600_000);
  let workDir: string | undefined;
  let runtime: ContainerNodeRed | undefined;
  let prometheus: RunningPrometheus | undefined;
  let names: PipelineNames;

  before(async function () {
    if (!process.env.KAFKA_BROKERS && process.env.CI !== "true") {
      process.stderr.write("      skipped: set KAFKA_BROKERS to a running broker (under CI=true the project's broker is started)\n");
      this.skip();
    }
    const prometheusBinary = requireCommand(this, "prometheus", "prometheus");
    const brokers = await kafkaBrokers();
    names = await createPipelineNames(PARTITIONS);
    workDir = mkdtempSync(join(tmpdir(), "iot-anomaly-stack-lag-"));
    const databasePath = join(workDir, "anomalies.db");
    const { userDir } = await installedUserDir();
    // The container's flows are the medallion example (docker/node-red/container-flows.js changes only the sink's
    // path); here with fresh topics and groups, a bounded simulator and the database in this test's directory.
    const flows = configureFlow(loadExample("medallion"), { names, sim: { limit: EVENTS, ratePerStation: 200 }, sink: { path: databasePath }, debug: "off" });
    const flowEnv = flowFileEnv(userDir, "stack-lag", flows);
    runtime = await startContainerNodeRed({
      userDir,
      flowFile: flowEnv.NODE_RED_FLOW_FILE,
      env: {
        IOT_ANOMALY_FROM_WORKING_COPY: flowEnv.IOT_ANOMALY_FROM_WORKING_COPY,
        IOT_ANOMALY_STATE_DIR: join(workDir, "state"),
        KAFKA_BROKERS: brokers,
        NODE_RED_ADMIN_PASSWORD_HASH: hashSync("lag test", 8),
      },
    });
    const stored = await waitForRows(databasePath, EVENTS, 180_000);
    assert.equal(stored, EVENTS, `the medallion stored ${stored} of ${EVENTS} events. Log:\n${runtime.log().slice(-3000)}`);

    const config = loadYaml<{ global: Record<string, string>; scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }> }>(
      join(dockerDir, "prometheus", "prometheus.yml"),
    );
    config.global.scrape_interval = "1s";
    config.scrape_configs = config.scrape_configs.filter((job) => job.job_name === "node-red");
    config.scrape_configs[0].static_configs[0].targets = [`127.0.0.1:${runtime.port}`];
    prometheus = await startPrometheus(prometheusBinary, JSON.stringify(config));
    const deadline = Date.now() + 60_000;
    while (!(await prometheus.metricNames()).includes("iot_anomaly_kafka_consumer_lag")) {
      if (Date.now() > deadline) throw new Error(`Prometheus has no lag series after 60 s; targets: ${JSON.stringify(await prometheus.targets())}`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    await new Promise((resolve) => setTimeout(resolve, 3000));
  });

  after(async () => {
    await prometheus?.stop();
    await runtime?.stop();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it("the lag panel shows every partition of both consumer groups, read to the end", async () => {
    const lagPanel = panelTargets().find(({ target }) => target.expr?.includes("iot_anomaly_kafka_consumer_lag"));
    assert.ok(lagPanel, "a dashboard panel plots the consumer lag");
    // Events are keyed by sensor, so with a few stations a partition can stay empty: its series comes from kafka-in's
    // lag refresh from the broker's offsets (every 10 s), not from a fetch.
    const expected: string[] = [];
    for (const [group, topic] of [[names.goldGroup, names.scored], [names.silverGroup, names.raw]]) {
      const ends = await endOffsets(topic);
      assert.equal(ends.size, PARTITIONS, `${topic} has ${PARTITIONS} partitions`);
      for (const partition of ends.keys()) expected.push(`${group} ${topic}/${partition}=0`);
    }
    expected.sort();
    const query = substitutePromVariables(lagPanel!.target.expr!, "30s");
    const deadline = Date.now() + 30_000;
    let seen: string[] = [];
    do {
      if (seen.length > 0) await new Promise((resolve) => setTimeout(resolve, 1000));
      const result = await prometheus!.instantQuery(query);
      seen = result.map((series) => `${series.metric.group} ${series.metric.topic}/${series.metric.partition}=${series.value[1]}`).sort();
    } while (seen.join() !== expected.join() && Date.now() < deadline);
    assert.deepEqual(seen, expected);
  });

  it("the retries panel shows both consumer groups at 0 retries and 0 dead letters per minute", async () => {
    const panelQueries = panelTargets().filter(({ target }) => /iot_anomaly_kafka_(retries|dead_lettered)_total/.test(target.expr ?? ""));
    assert.equal(panelQueries.length, 2, "a panel plots retries and dead letters");
    const expected = [`${names.goldGroup} ${names.scored}=0`, `${names.silverGroup} ${names.raw}=0`].sort();
    for (const { target } of panelQueries) {
      const result = await prometheus!.instantQuery(substitutePromVariables(target.expr!, "30s"));
      const seen = result.map((series) => `${series.metric.group} ${series.metric.topic}=${Number(series.value[1])}`).sort();
      assert.deepEqual(seen, expected, target.expr);
    }
  });

  it("every metric the dashboards and the alert rule read is in what Prometheus scraped, Kafka lag included", async () => {
    const scraped = new Set(await prometheus!.metricNames());
    const expressions = [
      ...panelTargets().filter((entry) => entry.datasource?.type === PROMETHEUS_DATASOURCE).map(({ target }) => target.expr!),
      ...alertExpressions().map(({ expr }) => expr),
    ];
    for (const name of new Set(expressions.flatMap((expr) => promqlMetricNames(substitutePromVariables(expr, "30s"))))) {
      assert.ok(scraped.has(name), `${name} is not in what Prometheus scraped`);
    }
  });
});
