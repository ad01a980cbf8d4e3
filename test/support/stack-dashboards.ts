// The provisioned Grafana dashboards and alert rule as the stack's checks see them: every panel target, the SQL
// of the SQLite data source with its variables and macros substituted the way Grafana and frser-sqlite-datasource
// 4.0 do, and the metric names a PromQL expression reads.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { repositoryRoot } from "../../scripts/node-red-runtime";

// js-yaml 4 (mocha's own YAML parser, so always installed with the dev dependencies), typed here to what is used.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { load } = require("js-yaml") as { load(text: string): unknown };

export const dockerDir = join(repositoryRoot, "docker");
export const dashboardsDir = join(dockerDir, "grafana", "dashboards");
export const provisioningDir = join(dockerDir, "grafana", "provisioning");

export const SQLITE_DATASOURCE = "frser-sqlite-datasource";
export const PROMETHEUS_DATASOURCE = "prometheus";

export interface DataSourceRef {
  type: string;
  uid: string;
}

export interface Target {
  refId: string;
  datasource?: DataSourceRef;
  // frser-sqlite-datasource: the editor's text is rawQueryText; the plugin's frontend sends queryText =
  // templateSrv.replace(rawQueryText) to its backend, which then applies its own macros.
  rawQueryText?: string;
  queryText?: string;
  queryType?: string;
  timeColumns?: string[];
  // prometheus
  expr?: string;
  legendFormat?: string;
}

export interface FieldMatcher {
  matcher: { id: string; options: string };
  properties: Array<{ id: string; value: unknown }>;
}

export interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: DataSourceRef;
  targets?: Target[];
  fieldConfig?: { defaults?: Record<string, unknown>; overrides?: FieldMatcher[] };
  panels?: Panel[];
}

export interface TemplateVariable {
  name: string;
  type: string;
  datasource?: DataSourceRef;
  query?: string;
  multi?: boolean;
  includeAll?: boolean;
}

export interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating?: { list: TemplateVariable[] };
}

export interface DashboardFile {
  file: string;
  dashboard: Dashboard;
}

export function loadYaml<T>(path: string): T {
  return load(readFileSync(path, "utf8")) as T;
}

export function loadDashboards(): DashboardFile[] {
  return readdirSync(dashboardsDir)
    .filter((file) => file.endsWith(".json"))
    .sort()
    .map((file) => ({ file, dashboard: JSON.parse(readFileSync(join(dashboardsDir, file), "utf8")) as Dashboard }));
}

/** Every panel, rows' nested panels included. */
export function allPanels(dashboard: Dashboard): Panel[] {
  return dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);
}

/** A target's data source: its own, else its panel's. */
export function targetDataSource(panel: Panel, target: Target): DataSourceRef | undefined {
  return target.datasource ?? panel.datasource;
}

export interface PanelTarget {
  file: string;
  dashboard: Dashboard;
  panel: Panel;
  target: Target;
  datasource: DataSourceRef | undefined;
}

export function panelTargets(files: DashboardFile[] = loadDashboards()): PanelTarget[] {
  return files.flatMap(({ file, dashboard }) =>
    allPanels(dashboard).flatMap((panel) => (panel.targets ?? []).map((target) => ({ file, dashboard, panel, target, datasource: targetDataSource(panel, target) }))),
  );
}

// ---- SQL: Grafana's template variables, then the plugin's macros -------------------------------------------------

export interface SqlContext {
  /** Time range in ms since the epoch ($__from, $__to). */
  fromMs: number;
  toMs: number;
  /** $__interval_ms: Grafana's interval for the panel (range / max data points, rounded). */
  intervalMs: number;
  /** Dashboard variables: each value list (a single-valued variable has one). */
  variables: Record<string, string[]>;
}

/** Grafana's `sqlstring` format: every value in single quotes (quotes doubled), joined by commas. */
const sqlString = (values: string[]): string => values.map((value) => `'${value.replace(/'/g, "''")}'`).join(",");

/**
 * What Grafana's templateSrv.replace does to the text for the forms these dashboards use: $__from, $__to,
 * $__interval_ms, $name / ${name} and ${name:sqlstring}. Any other variable or format is an error, so a dashboard
 * cannot use a form this check does not reproduce.
 */
export function substituteGrafanaVariables(text: string, context: SqlContext): string {
  const builtIn: Record<string, string> = {
    __from: String(context.fromMs),
    __to: String(context.toMs),
    __interval_ms: String(context.intervalMs),
  };
  return text.replace(/\$\{(\w+)(?::(\w+))?\}|\$(\w+)/g, (whole, bracedName: string | undefined, format: string | undefined, bareName: string | undefined) => {
    const name = (bracedName ?? bareName)!;
    if (name in builtIn) {
      if (format) throw new Error(`${whole}: a format on a built-in variable is not reproduced by this check`);
      return builtIn[name];
    }
    const values = context.variables[name];
    if (!values) throw new Error(`${whole}: unknown variable (dashboard variables: ${Object.keys(context.variables).join(", ") || "none"})`);
    if (format === "sqlstring") return sqlString(values);
    if (format !== undefined) throw new Error(`${whole}: format "${format}" is not reproduced by this check`);
    if (values.length !== 1) throw new Error(`${whole}: a multi-value variable needs a format such as :sqlstring`);
    return values[0];
  });
}

/**
 * frser-sqlite-datasource 4.0's backend: $__from / $__to (ms) once more (alert queries skip the frontend), then its
 * only macro, $__unixEpochGroupSeconds(column, seconds[, NULL]) -> cast((column / seconds) as int) * seconds.
 */
export function applyPluginMacros(sql: string, context: SqlContext): string {
  const withRange = sql.replaceAll("$__from", String(context.fromMs)).replaceAll("$__to", String(context.toMs));
  return withRange.replace(/\$__(\w+)\(([^)]*)\)/g, (whole, macro: string, argumentText: string) => {
    if (macro !== "unixEpochGroupSeconds") throw new Error(`${whole}: frser-sqlite-datasource has no macro $__${macro}`);
    const [column, seconds, fill] = argumentText.split(",").map((part) => part.trim());
    if (!column || !/^\d+$/.test(seconds ?? "") || (fill !== undefined && fill.toUpperCase() !== "NULL")) {
      throw new Error(`${whole}: expected $__unixEpochGroupSeconds(column, whole seconds[, NULL])`);
    }
    return `cast((${column} / ${seconds}) as int) * ${seconds}`;
  });
}

/** The SQL the plugin runs for a target: its editor text with Grafana's variables, then the plugin's macros. */
export function executableSql(target: Target, context: SqlContext): string {
  const raw = target.rawQueryText ?? target.queryText;
  if (!raw) throw new Error(`target ${target.refId} has no query text`);
  const sql = applyPluginMacros(substituteGrafanaVariables(raw, context), context);
  if (/\$/.test(sql.replace(/'[^']*'/g, ""))) throw new Error(`unsubstituted '$' left in: ${sql}`);
  return sql;
}

// ---- PromQL -----------------------------------------------------------------------------------------------------

/** Grafana's range variables in PromQL, replaced by fixed windows for an instant query. */
export function substitutePromVariables(expr: string, rateWindow: string): string {
  const replaced = expr.replaceAll("$__rate_interval", rateWindow).replaceAll("$__interval", rateWindow);
  if (replaced.includes("$")) throw new Error(`unsubstituted variable in ${expr}`);
  return replaced;
}

const PROMQL_WORDS = new Set([
  "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or", "unless", "atan2",
  "inf", "nan",
]);

/**
 * The metric names an expression reads: identifiers outside label matchers, strings and range brackets that are not
 * functions, aggregations or keywords.
 */
export function promqlMetricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""') // string literals
    .replace(/\{[^}]*\}/g, "") // label matchers
    .replace(/\[[^\]]*\]/g, "") // range and subquery windows
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ""); // grouping label lists
  const names = new Set<string>();
  for (const match of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const word = match[0];
    const after = stripped.slice(match.index! + word.length).trimStart();
    if (after.startsWith("(")) continue; // a function or aggregation
    if (PROMQL_WORDS.has(word.toLowerCase())) continue;
    names.add(word);
  }
  return [...names].sort();
}

// ---- Provisioning files ---------------------------------------------------------------------------------------

export interface ProvisionedDataSource {
  name: string;
  uid: string;
  type: string;
  url?: string;
  jsonData?: Record<string, unknown>;
}

export function provisionedDataSources(): ProvisionedDataSource[] {
  const directory = join(provisioningDir, "datasources");
  return readdirSync(directory)
    .filter((file) => /\.ya?ml$/.test(file))
    .flatMap((file) => loadYaml<{ datasources: ProvisionedDataSource[] }>(join(directory, file)).datasources);
}

export interface AlertQuery {
  refId: string;
  datasourceUid: string;
  relativeTimeRange?: { from: number; to: number };
  model: { refId: string; expr?: string; type?: string; expression?: string; conditions?: Array<{ evaluator: { type: string; params: number[] } }> };
}

export interface AlertRule {
  uid: string;
  title: string;
  condition: string;
  data: AlertQuery[];
  for?: string;
  noDataState?: string;
  execErrState?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface AlertGroup {
  orgId: number;
  name: string;
  folder: string;
  interval: string;
  rules: AlertRule[];
}

export function provisionedAlertGroups(): AlertGroup[] {
  const directory = join(provisioningDir, "alerting");
  return readdirSync(directory)
    .filter((file) => /\.ya?ml$/.test(file))
    .flatMap((file) => loadYaml<{ groups: AlertGroup[] }>(join(directory, file)).groups);
}

/** Every PromQL expression of the provisioned alert rules, with the rule it belongs to. */
export function alertExpressions(): Array<{ rule: AlertRule; expr: string }> {
  const prometheusUids = new Set(provisionedDataSources().filter((source) => source.type === PROMETHEUS_DATASOURCE).map((source) => source.uid));
  return provisionedAlertGroups().flatMap((group) =>
    group.rules.flatMap((rule) => rule.data.filter((query) => prometheusUids.has(query.datasourceUid) && query.model.expr).map((query) => ({ rule, expr: query.model.expr! }))),
  );
}
