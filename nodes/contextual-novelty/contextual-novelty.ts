// Node-RED glue for the contextual-novelty detector (the `best` NAB configuration): config -> SensorNovelty,
// msg -> processEvent, two outputs (every event / anomalies only), learnt patterns saved to a state file so a
// restart neither starts a new warm-up nor announces a fault again.
import type { Node, NodeAPI, NodeDef, NodeMessage, NodeStatus } from "node-red";
import type { SensorEvent } from "../../src/core/event";
import {
  parseMetricRanges,
  parseNumberList,
  SensorNovelty,
  type NoveltyRangeMode,
  type SensorNoveltyOptions,
  type SensorNoveltySnapshot,
} from "../../src/core/stream-detectors";
import { listField, numberField } from "../../src/runtime/config-fields";
import { copyWithEvents, readEventMessage, reportInvalidInput, withEvents } from "../../src/runtime/event-message";
import { NodeMetrics, recordDetections, serveMetrics } from "../../src/runtime/metrics";
import { PeriodicSnapshot } from "../../src/runtime/periodic-snapshot";
import { stateFile } from "../../src/runtime/state-directory";
import { compactCount, failed, running, shorten, warming } from "../../src/runtime/status";
import { ThrottledStatus } from "../../src/runtime/throttled-status";

/** Editor fields as saved in the flow: numbers may arrive as text (or as text substituted from `${ENV}`). */
interface ContextualNoveltyNodeDef extends NodeDef {
  /** Comma-separated metric names; empty scores every metric in readings. */
  metrics?: string;
  /** "temperature=10:45, humidity=0:88". */
  ranges?: string;
  rangeMode?: string;
  warmupRows?: string | number;
  /** Empty or "auto": a fifth of the warm-up. */
  cooldownRows?: string | number;
  alertNovelty?: string | number;
  /** "6,8,10,12". */
  levels?: string;
  dayParts?: string | number;
}

const SNAPSHOT_INTERVAL_MS = 5000;
const STATUS_INTERVAL_MS = 500;

function optionsFromConfig(config: ContextualNoveltyNodeDef): SensorNoveltyOptions {
  const cooldown = String(config.cooldownRows ?? "").trim();
  const levels = String(config.levels ?? "").trim();
  return {
    metrics: listField(config.metrics),
    ranges: parseMetricRanges(String(config.ranges ?? "")),
    rangeMode: (config.rangeMode || undefined) as NoveltyRangeMode | undefined,
    warmupRows: numberField(config.warmupRows),
    cooldownRows: cooldown === "" || cooldown === "auto" ? "auto" : numberField(cooldown),
    alertNovelty: numberField(config.alertNovelty),
    levels: levels === "" ? undefined : parseNumberList(levels, "levels"),
    dayParts: numberField(config.dayParts),
  };
}

/** Judges every event in place; returns the anomalous ones. */
function judge(detector: SensorNovelty, events: SensorEvent[]): SensorEvent[] {
  const anomalies: SensorEvent[] = [];
  for (let i = 0; i < events.length; i++) if (detector.processEvent(events[i]).anomaly) anomalies.push(events[i]);
  return anomalies;
}

export = function register(RED: NodeAPI) {
  function ContextualNoveltyNode(this: Node, config: ContextualNoveltyNodeDef) {
    RED.nodes.createNode(this, config);
    const node = this;
    const metrics = new NodeMetrics(node, "iot-contextual-novelty");
    const t = (key: string, substitutions?: Record<string, string | number>) => RED._(`iot-contextual-novelty.${key}`, substitutions);

    let detector: SensorNovelty;
    try {
      detector = new SensorNovelty(optionsFromConfig(config));
    } catch (error) {
      // The core names the field and the metric: `metric "humidity" has no range: …`.
      node.error((error as Error).message);
      node.status(failed(shorten((error as Error).message)));
      return;
    }

    const file = stateFile(RED, node.id, "contextual-novelty");
    let saveWarned = false;
    const snapshots = new PeriodicSnapshot<SensorNoveltySnapshot>(
      file,
      () => {
        saveWarned = false;
        return detector.snapshot();
      },
      (error) => {
        if (!saveWarned) node.warn(t("errors.saveFailed", { file, error: error.message }));
        saveWarned = true;
      },
    );
    restore();
    snapshots.start(SNAPSHOT_INTERVAL_MS);

    let events = 0;
    let anomalies = 0;
    let estimatedWarned = detector.estimatedRangeMetrics.length;
    const status = new ThrottledStatus(node, STATUS_INTERVAL_MS);
    showStatus();

    node.on("input", (msg: NodeMessage, send, trackedDone) => {
      const done = metrics.track(trackedDone);
      if (msg.topic === "reset") {
        detector.reset();
        events = anomalies = 0;
        estimatedWarned = 0;
        snapshots.touch();
        node.log(t("log.reset"));
        showStatus();
        done();
        return;
      }
      const input = readEventMessage(msg);
      if (input.events.length > 0) {
        const flagged = judge(detector, input.events);
        events += input.events.length;
        anomalies += flagged.length;
        snapshots.touch();
        metrics.received(input.events.length);
        metrics.sent(input.events.length);
        recordDetections(input.events, "contextual_novelty");
        warnEstimatedRanges();
        send([withEvents(msg, input.events, input.batch), copyWithEvents(msg, flagged, input.batch)]);
      }
      if (input.error) return reportInvalidInput(node, input.error, done);
      status.soon(currentStatus);
      done();
    });

    node.on("close", (removed: boolean, done: () => void) => {
      if (removed) metrics.remove();
      // The state file is kept even when the node is removed or disabled: re-enabling it resumes what it learnt.
      status.stop();
      snapshots.stop();
      done();
    });

    function restore(): void {
      try {
        const saved = snapshots.load();
        if (saved === undefined) return;
        const { restored, discarded } = detector.restore(saved);
        node.log(t("log.restored", { detectors: restored, sensors: detector.sensorCount, file }));
        if (discarded > 0) node.log(t("log.discarded", { discarded, file }));
      } catch (error) {
        node.warn(t("errors.restoreFailed", { file, error: (error as Error).message }));
      }
    }

    /** Once per metric: a metric with no configured range is scored with a warm-up estimate, which NAB rates lower. */
    function warnEstimatedRanges(): void {
      const estimated = detector.estimatedRangeMetrics;
      if (estimated.length === estimatedWarned) return;
      for (const metric of estimated.slice(estimatedWarned)) {
        node.warn(t("errors.noRange", { metric, warmup: detector.config.warmupRows }));
      }
      estimatedWarned = estimated.length;
    }

    function currentStatus(): NodeStatus {
      if (detector.readyDetectorCount === 0) {
        const { rows, hours } = detector.warmupProgress;
        const warmup = detector.config.warmupRows;
        // The rows first, then (with day parts) the rest of the first day of event time.
        return warming(rows < warmup ? t("status.warming", { rows, warmup }) : t("status.warmingDay", { hours: hours.toFixed(1) }));
      }
      return running(t("status.running", { events: compactCount(events), anomalies: compactCount(anomalies) }));
    }

    function showStatus(): void {
      status.now(currentStatus());
    }
  }

  RED.nodes.registerType("iot-contextual-novelty", ContextualNoveltyNode);
  serveMetrics(RED);
};
