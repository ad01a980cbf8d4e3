// The Grafana provisioning of the stack, as files: both data sources, dashboards whose panels and variables refer to
// those data sources by uid with queries in the shape each plugin reads, and an alert rule whose condition chain is
// complete and whose query is the one a dashboard panel shows. (What the queries return is checked against real
// data in stack-runtime.test.ts.)
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  alertExpressions,
  allPanels,
  loadDashboards,
  loadYaml,
  panelTargets,
  PROMETHEUS_DATASOURCE,
  provisionedAlertGroups,
  provisionedDataSources,
  provisioningDir,
  SQLITE_DATASOURCE,
} from "../support/stack-dashboards";

const TIME_SERIES_PANELS = new Set(["timeseries"]);

describe("stack: Grafana provisioning (docker/grafana)", () => {
  const sources = provisionedDataSources();
  const sourceByUid = new Map(sources.map((source) => [source.uid, source]));
  const dashboards = loadDashboards();

  it("provisions the SQLite file and Prometheus as data sources with fixed uids", () => {
    const sqlite = sources.filter((source) => source.type === SQLITE_DATASOURCE);
    const prometheus = sources.filter((source) => source.type === PROMETHEUS_DATASOURCE);
    assert.equal(sqlite.length, 1, "one SQLite data source");
    assert.equal(prometheus.length, 1, "one Prometheus data source");
    assert.match(String(sqlite[0].jsonData?.path), /^\/.+\.db$/, "an absolute path to the database file");
    assert.equal(prometheus[0].url, "http://prometheus:9090", "the compose service");
    assert.equal(new Set(sources.map((source) => source.uid)).size, sources.length, "uids are unique");
  });

  it("dashboards: valid JSON with a unique uid, a title and uniquely numbered panels", () => {
    assert.ok(dashboards.length >= 2, "the data dashboard and the pipeline-health dashboard");
    assert.equal(new Set(dashboards.map(({ dashboard }) => dashboard.uid)).size, dashboards.length);
    for (const { file, dashboard } of dashboards) {
      assert.match(dashboard.uid, /^[A-Za-z0-9_-]{1,40}$/, `${file}: uid`);
      assert.ok(dashboard.title, `${file}: title`);
      const ids = allPanels(dashboard).map((panel) => panel.id);
      assert.equal(new Set(ids).size, ids.length, `${file}: panel ids are unique`);
      for (const panel of allPanels(dashboard)) assert.ok(panel.title, `${file}: panel ${panel.id} has a title`);
    }
  });

  it("every panel, target and variable names a provisioned data source by uid and type", () => {
    for (const { file, panel, target, datasource } of panelTargets(dashboards)) {
      const where = `${file} panel "${panel.title}" target ${target.refId}`;
      assert.ok(datasource, `${where}: has a data source`);
      const provisioned = sourceByUid.get(datasource!.uid);
      assert.ok(provisioned, `${where}: data source uid ${datasource!.uid} is provisioned`);
      assert.equal(datasource!.type, provisioned!.type, `${where}: data source type`);
      if (panel.datasource) assert.ok(sourceByUid.has(panel.datasource.uid), `${file} panel "${panel.title}": panel data source`);
    }
    for (const { file, dashboard } of dashboards) {
      for (const variable of dashboard.templating?.list ?? []) {
        if (variable.type !== "query") continue;
        assert.ok(variable.datasource && sourceByUid.has(variable.datasource.uid), `${file} variable ${variable.name}: provisioned data source`);
        assert.ok(variable.query, `${file} variable ${variable.name}: has a query`);
      }
    }
  });

  it("SQLite targets carry their SQL the way frser-sqlite-datasource reads it; Prometheus targets have an expr", () => {
    const targets = panelTargets(dashboards);
    assert.ok(targets.some((entry) => entry.datasource?.type === SQLITE_DATASOURCE), "some panels read SQLite");
    assert.ok(targets.some((entry) => entry.datasource?.type === PROMETHEUS_DATASOURCE), "some panels read Prometheus");
    for (const { file, panel, target, datasource } of targets) {
      const where = `${file} panel "${panel.title}" target ${target.refId}`;
      if (datasource?.type === SQLITE_DATASOURCE) {
        // The plugin's frontend sends templateSrv.replace(rawQueryText) as queryText; both are stored alike.
        assert.ok(target.rawQueryText, `${where}: rawQueryText`);
        assert.equal(target.queryText, target.rawQueryText, `${where}: queryText equals rawQueryText`);
        const timeSeries = TIME_SERIES_PANELS.has(panel.type);
        assert.equal(target.queryType, timeSeries ? "time series" : "table", `${where}: queryType for a ${panel.type} panel`);
        if (timeSeries) assert.ok(target.timeColumns?.includes("time"), `${where}: the time column is declared`);
      } else {
        assert.ok(target.expr, `${where}: expr`);
      }
    }
  });

  it("the dashboard provider and the alert rule use the same folder", () => {
    const provider = loadYaml<{ providers: Array<{ folder: string }> }>(join(provisioningDir, "dashboards", "iot-anomaly.yml")).providers[0];
    for (const group of provisionedAlertGroups()) assert.equal(group.folder, provider.folder);
  });

  it("an alert rule on the anomaly rate: Prometheus query -> reduce -> threshold, linked to the panel that plots it", () => {
    const rules = provisionedAlertGroups().flatMap((group) => group.rules);
    assert.ok(rules.length >= 1);
    const expressions = alertExpressions();
    assert.ok(expressions.some(({ expr }) => expr.includes("iot_anomaly_anomalies_total")), "a rule queries iot_anomaly_anomalies_total");
    for (const rule of rules) {
      assert.match(rule.uid, /^[A-Za-z0-9_-]{1,40}$/);
      const byRef = new Map(rule.data.map((query) => [query.refId, query]));
      assert.ok(byRef.has(rule.condition), `${rule.uid}: condition ${rule.condition} is one of its queries`);
      for (const query of rule.data) {
        if (query.datasourceUid === "__expr__") {
          assert.ok(byRef.has(query.model.expression!), `${rule.uid}/${query.refId}: expression ${query.model.expression} refers to a query of the rule`);
        } else {
          assert.ok(sourceByUid.has(query.datasourceUid), `${rule.uid}/${query.refId}: provisioned data source`);
          assert.ok(query.relativeTimeRange && query.relativeTimeRange.from > 0, `${rule.uid}/${query.refId}: relative time range`);
        }
      }
      const threshold = rule.data.find((query) => query.model.type === "threshold");
      assert.ok(threshold?.model.conditions?.[0].evaluator.params.length, `${rule.uid}: a threshold`);
      assert.match(rule.for ?? "", /^\d+[smh]$/, `${rule.uid}: a pending period`);

      // The annotations link the alert to the panel showing the same query.
      const dashboard = dashboards.find(({ dashboard: candidate }) => candidate.uid === rule.annotations?.__dashboardUid__)?.dashboard;
      assert.ok(dashboard, `${rule.uid}: __dashboardUid__ names a provisioned dashboard`);
      const panel = allPanels(dashboard!).find((candidate) => String(candidate.id) === rule.annotations?.__panelId__);
      assert.ok(panel, `${rule.uid}: __panelId__ names a panel of ${dashboard!.uid}`);
      const ruleExpr = rule.data.find((query) => query.model.expr)!.model.expr;
      assert.ok(panel!.targets!.some((target) => target.expr === ruleExpr), `${rule.uid}: panel "${panel!.title}" plots the rule's query`);
      // ... and draws the rule's threshold as its red line, so the two cannot drift apart.
      const steps = (panel!.fieldConfig?.defaults?.thresholds as { steps?: Array<{ color: string; value: number | null }> } | undefined)?.steps ?? [];
      assert.deepEqual(
        steps.filter((step) => step.color === "red").map((step) => step.value),
        threshold!.model.conditions![0].evaluator.params,
        `${rule.uid}: panel "${panel!.title}" draws the rule's threshold`,
      );
    }
  });
});
