// Prometheus metrics of the package: one registry per process, shared by every node, served by Node-RED's HTTP
// server at /metrics (IOT_ANOMALY_METRICS=false turns the endpoint off; IOT_ANOMALY_METRICS_PATH moves it).
// Per-sensor series are capped (IOT_ANOMALY_METRICS_MAX_SENSORS, 1000 by default): a plant with 10,000 sensors would
// otherwise put 90,000 series into Prometheus; sensors past the cap are summed under sensor_id="_other".
// Its own registry, not prom-client's global one, so another package that also uses prom-client cannot collide
// with these names or register the default process metrics twice.
import type { Node, NodeAPI } from "node-red";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type LabelValues } from "prom-client";
import type { SensorEvent } from "../core/event";
import { ProcessingHistogram, type ProcessingSeries } from "./processing-histogram";

export type DetectorLabel = "rolling_3_sigma" | "isolation_forest" | "contextual_novelty";

interface PackageMetrics {
  registry: Registry;
  eventsIn: Counter<"node_type" | "node_id" | "node_name">;
  eventsOut: Counter<"node_type" | "node_id" | "node_name">;
  errors: Counter<"node_type" | "node_id" | "node_name">;
  processing: ProcessingHistogram;
  anomalies: Counter<"sensor_id" | "detector">;
  checked: Counter<"sensor_id" | "detector">;
  score: Gauge<"sensor_id" | "detector">;
  kafkaLag: Gauge<"group" | "topic" | "partition">;
  kafkaRetries: Counter<"group" | "topic">;
  kafkaDeadLettered: Counter<"group" | "topic">;
  sqliteCommit: Histogram<"table">;
  /**
   * Per-sensor figures are kept in plain maps and handed to prom-client only when scraped: prom-client hashes the
   * label values on every update, which per event cost more than the detector itself.
   */
  latestScores: Record<DetectorLabel, Map<string, number>>;
  newAnomalies: Record<DetectorLabel, Map<string, number>>;
  newChecked: Record<DetectorLabel, Map<string, number>>;
  /** Nodes whose event and error counts wait in plain fields until the next scrape (same reason). */
  liveNodes: Map<string, NodeMetrics>;
  servedBy: WeakSet<object>;
  /** Node-RED's log, once serveMetrics has been called. */
  warn: (text: string) => void;
}

/** The sensor_id of the series that sums the sensors past the cap. */
export const OTHER_SENSORS = "_other";
export const DEFAULT_MAX_SENSOR_SERIES = 1000;

/** The cap on sensors with series of their own (IOT_ANOMALY_METRICS_MAX_SENSORS; 0: no cap). Read at each scrape. */
function maxSensorSeries(): number {
  const raw = (process.env.IOT_ANOMALY_METRICS_MAX_SENSORS ?? "").trim();
  const value = Number(raw);
  return raw !== "" && Number.isInteger(value) && value >= 0 ? value : DEFAULT_MAX_SENSOR_SERIES;
}

// On globalThis so that two copies of this module (a test loading the sources beside the built package) still
// share one registry and one endpoint.
const GLOBAL_KEY = Symbol.for("node-red-contrib-iot-anomaly.metrics");

const DETECTORS: readonly DetectorLabel[] = ["rolling_3_sigma", "isolation_forest", "contextual_novelty"];

function createMetrics(): PackageMetrics {
  const latestScores: PackageMetrics["latestScores"] = { rolling_3_sigma: new Map(), isolation_forest: new Map(), contextual_novelty: new Map() };
  const newAnomalies: PackageMetrics["newAnomalies"] = { rolling_3_sigma: new Map(), isolation_forest: new Map(), contextual_novelty: new Map() };
  const newChecked: PackageMetrics["newChecked"] = { rolling_3_sigma: new Map(), isolation_forest: new Map(), contextual_novelty: new Map() };
  const liveNodes = new Map<string, NodeMetrics>();
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // The anomaly count and the checked count move together at each scrape (whichever family is collected first), and
  // a sensor a detector checked gets an anomaly series even at 0: the alert's share flagged is then 0 %, not absent.
  const detectionCounter = (name: string, help: string) =>
    new Counter({ name, help, labelNames: ["sensor_id", "detector"], registers: [registry], collect: () => moveDetectionCounts() });
  const anomalies = detectionCounter("iot_anomaly_anomalies_total", "Events flagged as anomalous, by sensor and detector.");
  const checked = detectionCounter(
    "iot_anomaly_checked_total",
    "Events a detector scored, flagged or not (warm-up excluded), by sensor and detector: anomalies_total / checked_total is the share flagged.",
  );
  const moveDetectionCounts = () => {
    const label = sensorLabeller();
    for (const detector of DETECTORS) {
      const flagged = newAnomalies[detector];
      let otherChecked = 0;
      let otherFlagged = 0;
      for (const [sensorId, count] of newChecked[detector]) {
        const sensor = label(sensorId);
        if (sensor === OTHER_SENSORS) {
          otherChecked += count;
          otherFlagged += flagged.get(sensorId) ?? 0;
          continue;
        }
        const labels = { sensor_id: sensor, detector };
        checked.inc(labels, count);
        anomalies.inc(labels, flagged.get(sensorId) ?? 0);
      }
      if (otherChecked > 0) {
        checked.inc({ sensor_id: OTHER_SENSORS, detector }, otherChecked);
        anomalies.inc({ sensor_id: OTHER_SENSORS, detector }, otherFlagged);
      }
      newChecked[detector].clear();
      flagged.clear();
    }
  };
  /** Sensors with series of their own: the first ones a scrape found, up to the cap. */
  const sensorSeries = new Set<string>();
  let capReported = false;
  /** Labels sensors for one scrape: a sensor keeps the series it has; a new one gets its own while the cap allows. */
  const sensorLabeller = () => {
    const cap = maxSensorSeries();
    return (sensorId: string): string => {
      if (sensorSeries.has(sensorId)) return sensorId;
      if (cap === 0 || sensorSeries.size < cap) {
        sensorSeries.add(sensorId);
        return sensorId;
      }
      if (!capReported) {
        capReported = true;
        metrics().warn(`[iot-anomaly] more than ${cap} sensors: /metrics sums the others under sensor_id="${OTHER_SENSORS}" (IOT_ANOMALY_METRICS_MAX_SENSORS raises the cap, 0 removes it)`);
      }
      return OTHER_SENSORS;
    };
  };
  const nodeLabels = ["node_type", "node_id", "node_name"] as const;
  const nodeCounter = (name: string, help: string, take: (node: NodeMetrics) => number) =>
    new Counter({
      name,
      help,
      labelNames: nodeLabels,
      registers: [registry],
      collect() {
        for (const node of liveNodes.values()) {
          const count = take(node);
          if (count > 0) this.inc(node.labels, count);
        }
      },
    });
  const processing = new ProcessingHistogram(
    "iot_anomaly_processing_seconds",
    "Time from a message's arrival in a node to its completion (for sinks and Kafka producers: until durable).",
    "node_type",
    [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  );
  registry.registerMetric(processing as never);
  return {
    registry,
    eventsIn: nodeCounter("iot_anomaly_events_in_total", "Events received by a node of the package.", (node) => node.takeReceived()),
    eventsOut: nodeCounter("iot_anomaly_events_out_total", "Events a node sent on, produced or stored.", (node) => node.takeSent()),
    errors: nodeCounter("iot_anomaly_errors_total", "Messages a node completed with an error (invalid input, failed send or commit).", (node) => node.takeErrors()),
    processing,
    anomalies,
    checked,
    score: new Gauge({
      name: "iot_anomaly_score",
      help: "Latest score per sensor: isolation-forest score in (0, 1]; rolling 3-sigma: largest |z| over the event's metrics; contextual novelty: highest metric score in [0, 1] (alert at 0.5).",
      labelNames: ["sensor_id", "detector"],
      registers: [registry],
      collect() {
        const label = sensorLabeller();
        for (const detector of DETECTORS) {
          // Past the cap, the highest latest score of the other sensors: the worst of them, which is what alerts need.
          let other: number | null = null;
          for (const [sensorId, score] of latestScores[detector]) {
            const sensor = label(sensorId);
            if (sensor !== OTHER_SENSORS) this.set({ sensor_id: sensor, detector }, score);
            else if (other === null || score > other) other = score;
          }
          if (other !== null) this.set({ sensor_id: OTHER_SENSORS, detector }, other);
        }
      },
    }),
    kafkaLag: new Gauge({ name: "iot_anomaly_kafka_consumer_lag", help: "Messages between a kafka-in node's position and the partition's high watermark.", labelNames: ["group", "topic", "partition"], registers: [registry] }),
    kafkaRetries: new Counter({
      name: "iot_anomaly_kafka_retries_total",
      help: "Events kafka-in sent again because a Catch node reported them failed.",
      labelNames: ["group", "topic"],
      registers: [registry],
    }),
    kafkaDeadLettered: new Counter({
      name: "iot_anomaly_kafka_dead_lettered_total",
      help: "Events kafka-in wrote to its dead-letter topic after they failed maxAttempts times.",
      labelNames: ["group", "topic"],
      registers: [registry],
    }),
    sqliteCommit: new Histogram({
      name: "iot_anomaly_sqlite_commit_seconds",
      help: "Duration of one sqlite-sink batch transaction.",
      labelNames: ["table"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    latestScores,
    newAnomalies,
    newChecked,
    liveNodes,
    servedBy: new WeakSet(),
    warn: () => {},
  };
}

function metrics(): PackageMetrics {
  const holder = globalThis as unknown as Record<symbol, PackageMetrics | undefined>;
  return (holder[GLOBAL_KEY] ??= createMetrics());
}

/** Per-node counts and the processing-time series; counts are plain fields handed to prom-client at scrape time. */
export class NodeMetrics {
  readonly labels: LabelValues<"node_type" | "node_id" | "node_name">;
  private readonly processing: ProcessingSeries;
  private receivedSinceScrape = 0;
  private sentSinceScrape = 0;
  private errorsSinceScrape = 0;

  constructor(node: Pick<Node, "id" | "name">, nodeType: string) {
    const all = metrics();
    this.labels = { node_type: nodeType, node_id: node.id, node_name: node.name ?? "" };
    this.processing = all.processing.forLabel(nodeType);
    // Every node's series exist from the start at 0, so a rate() or an error panel reads 0 rather than "no data".
    all.eventsIn.inc(this.labels, 0);
    all.eventsOut.inc(this.labels, 0);
    all.errors.inc(this.labels, 0);
    // A redeploy creates the node again under the same id: take over what the old instance had not reported yet.
    const previous = all.liveNodes.get(node.id);
    if (previous !== undefined) {
      this.receivedSinceScrape = previous.takeReceived();
      this.sentSinceScrape = previous.takeSent();
      this.errorsSinceScrape = previous.takeErrors();
    }
    all.liveNodes.set(node.id, this);
  }

  received(events: number): void {
    this.receivedSinceScrape += events;
  }

  sent(events: number): void {
    this.sentSinceScrape += events;
  }

  failed(count = 1): void {
    this.errorsSinceScrape += count;
  }

  /** Wraps a message's done(): its call observes the processing time and counts an error if it carries one. */
  track<Done extends (error?: Error) => void>(done: Done): Done {
    const started = performance.now();
    return ((error?: Error) => {
      this.processing.observe((performance.now() - started) / 1000);
      if (error) this.errorsSinceScrape++;
      done(error);
    }) as Done;
  }

  /** @internal Counts since the last scrape, for the registry's collect step. */
  takeReceived(): number {
    const count = this.receivedSinceScrape;
    this.receivedSinceScrape = 0;
    return count;
  }

  /** @internal */
  takeSent(): number {
    const count = this.sentSinceScrape;
    this.sentSinceScrape = 0;
    return count;
  }

  /** @internal */
  takeErrors(): number {
    const count = this.errorsSinceScrape;
    this.errorsSinceScrape = 0;
    return count;
  }

  /** A deleted node's series go with it (a redeploy of the same node keeps counting where it was). */
  remove(): void {
    const all = metrics();
    if (all.liveNodes.get(this.labels.node_id as string) === this) all.liveNodes.delete(this.labels.node_id as string);
    all.eventsIn.remove(this.labels);
    all.eventsOut.remove(this.labels);
    all.errors.remove(this.labels);
  }
}

function largestAbsZ(event: SensorEvent): number | null {
  const metricsOfEvent = event.detectors?.rolling3Sigma?.metrics;
  if (!metricsOfEvent) return null;
  let largest: number | null = null;
  for (const metric in metricsOfEvent) {
    const z = metricsOfEvent[metric].z;
    if (z !== null && (largest === null || Math.abs(z) > largest)) largest = Math.abs(z);
  }
  return largest;
}

/** Latest score, checked and anomaly counts per sensor for the detector that just judged `events`. */
export function recordDetections(events: readonly SensorEvent[], detector: DetectorLabel): void {
  const all = metrics();
  const scores = all.latestScores[detector];
  const anomalies = all.newAnomalies[detector];
  const checked = all.newChecked[detector];
  for (let i = 0; i < events.length; i++) {
    const event = events[i];
    const result =
      detector === "rolling_3_sigma" ? event.detectors?.rolling3Sigma : detector === "isolation_forest" ? event.detectors?.isolationForest : event.detectors?.contextualNovelty;
    if (!result) continue;
    const score =
      detector === "rolling_3_sigma" ? largestAbsZ(event) : detector === "isolation_forest" ? event.detectors!.isolationForest!.score : event.detectors!.contextualNovelty!.score;
    const scored = score !== null && Number.isFinite(score);
    if (scored) scores.set(event.sensorId, score);
    // Only events the detector could flag count as checked (not a forest's events before its first model, nor
    // rolling-3-sigma's while every window warms up), so a warm-up does not dilute the share flagged.
    if (scored || result.anomaly) checked.set(event.sensorId, (checked.get(event.sensorId) ?? 0) + 1);
    if (result.anomaly) anomalies.set(event.sensorId, (anomalies.get(event.sensorId) ?? 0) + 1);
  }
}

export function recordKafkaLag(group: string, topic: string, partition: number, lag: number): void {
  metrics().kafkaLag.set({ group, topic, partition: String(partition) }, Math.max(0, lag));
}

/**
 * A kafka-in node starts reading `topics`: its retry and dead-letter counters exist from 0 on, so the dashboard shows
 * a flat line (not "No data") and rate() has a starting point when the first failure comes. Counts already there
 * (a redeploy) are kept.
 */
export function startKafkaFailureCounts(group: string, topics: readonly string[]): void {
  const all = metrics();
  for (const topic of topics) {
    all.kafkaRetries.inc({ group, topic }, 0);
    all.kafkaDeadLettered.inc({ group, topic }, 0);
  }
}

/** Failed events of a topic that kafka-in scheduled to send again (`retried`) or gave up to the dead-letter topic. Rare: counted at once. */
export function recordKafkaFailures(group: string, topic: string, retried: number, deadLettered: number): void {
  const all = metrics();
  if (retried > 0) all.kafkaRetries.inc({ group, topic }, retried);
  if (deadLettered > 0) all.kafkaDeadLettered.inc({ group, topic }, deadLettered);
}

/** A partition this node no longer reads (revoked, or the node closed): its lag is someone else's to report. */
export function removeKafkaLag(group: string, topic: string, partition: number): void {
  metrics().kafkaLag.remove({ group, topic, partition: String(partition) });
}

export function recordSqliteCommit(table: string, seconds: number): void {
  metrics().sqliteCommit.observe({ table }, seconds);
}

/** The text Prometheus scrapes. */
export function metricsText(): Promise<string> {
  return metrics().registry.metrics();
}

/**
 * Serves GET /metrics on Node-RED's httpNode once per runtime (every node type calls this when it registers).
 * Behind httpNodeAuth and httpNodeRoot like any other HTTP-in endpoint of the flows.
 */
export function serveMetrics(RED: NodeAPI): void {
  if ((process.env.IOT_ANOMALY_METRICS ?? "").toLowerCase() === "false") return;
  const app = (RED as unknown as { httpNode?: { get: Function } }).httpNode;
  if (!app || typeof app.get !== "function") return;
  const all = metrics();
  if (all.servedBy.has(app)) return;
  all.servedBy.add(app);
  all.warn = (text) => RED.log.warn(text);
  const path = process.env.IOT_ANOMALY_METRICS_PATH || "/metrics";
  app.get(path, (_request: unknown, response: { set(name: string, value: string): void; send(body: string): void; status(code: number): { send(body: string): void } }) => {
    all.registry.metrics().then(
      (text) => {
        response.set("Content-Type", all.registry.contentType);
        response.send(text);
      },
      (error: Error) => response.status(500).send(`# metrics failed: ${error.message}\n`),
    );
  });
  RED.log.info(`[iot-anomaly] Prometheus metrics at ${path} on the Node-RED HTTP server`);
}
