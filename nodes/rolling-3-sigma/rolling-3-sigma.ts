// Node-RED glue for the rolling k-sigma detector: config -> RollingSigma, msg -> processEvent, two outputs
// (every event / anomalies only), windows and cool-downs saved to a state file so a restart neither starts a new
// warm-up nor announces a fault again.
import type { Node, NodeAPI, NodeDef, NodeMessage, NodeStatus } from "node-red";
import type { SensorEvent } from "../../src/core/event";
import {
  RollingSigma,
  snapshotJson,
  type RollingSigmaOptions,
  type RollingSigmaSnapshot,
  type RollingSigmaSnapshotV1,
} from "../../src/core/rolling-sigma";
import { listField, numberField } from "../../src/runtime/config-fields";
import { copyWithEvents, readEventMessage, reportInvalidInput, withEvents } from "../../src/runtime/event-message";
import { PeriodicSnapshot } from "../../src/runtime/periodic-snapshot";
import { stateFile } from "../../src/runtime/state-directory";
import { NodeMetrics, recordDetections, serveMetrics } from "../../src/runtime/metrics";
import { compactCount, failed, running, shorten, warming } from "../../src/runtime/status";
import { ThrottledStatus } from "../../src/runtime/throttled-status";

/** Editor fields as saved in the flow: numbers may arrive as text (or as text substituted from `${ENV}`). */
interface RollingSigmaNodeDef extends NodeDef {
  /** Comma-separated metric names; empty checks every metric in readings. */
  metrics?: string;
  windowSize?: string | number;
  /** k, the number of standard deviations. */
  threshold?: string | number;
  /** Legacy name of `threshold` (Node-RED's editor cannot hold single-letter properties). */
  k?: string | number;
  minSamples?: string | number;
  sigmaFloor?: string | number;
  direction?: string;
  /** "count" or "time"; absent in flows saved before time windows existed (count). */
  windowMode?: string;
  windowSeconds?: string | number;
  cooldownEvents?: string | number;
  cooldownSeconds?: string | number;
}

const SNAPSHOT_INTERVAL_MS = 5000;
const STATUS_INTERVAL_MS = 500;

function optionsFromConfig(config: RollingSigmaNodeDef): RollingSigmaOptions {
  return {
    windowSize: numberField(config.windowSize),
    k: numberField(config.threshold ?? config.k),
    minSamples: numberField(config.minSamples),
    sigmaFloor: numberField(config.sigmaFloor),
    direction: (config.direction || undefined) as RollingSigmaOptions["direction"],
    windowMode: (config.windowMode || undefined) as RollingSigmaOptions["windowMode"],
    // Hidden in the editor unless the mode is "time": a stale value there must not stop a count-mode node.
    windowSeconds: config.windowMode === "time" ? numberField(config.windowSeconds) : undefined,
    cooldownEvents: numberField(config.cooldownEvents),
    cooldownSeconds: numberField(config.cooldownSeconds),
    metrics: listField(config.metrics),
  };
}

/** Judges every event in place; returns the anomalous ones. */
function judge(detector: RollingSigma, events: SensorEvent[]): SensorEvent[] {
  const anomalies: SensorEvent[] = [];
  for (let i = 0; i < events.length; i++) if (detector.processEvent(events[i]).anomaly) anomalies.push(events[i]);
  return anomalies;
}

export = function register(RED: NodeAPI) {
  function RollingSigmaNode(this: Node, config: RollingSigmaNodeDef) {
    RED.nodes.createNode(this, config);
    const node = this;
    const metrics = new NodeMetrics(node, "iot-rolling-3-sigma");
    const t = (key: string, substitutions?: Record<string, string | number>) => RED._(`iot-rolling-3-sigma.${key}`, substitutions);

    let detector: RollingSigma;
    try {
      detector = new RollingSigma(optionsFromConfig(config));
    } catch (error) {
      // The core names the field: `"windowSize" must be an integer from 2 to 100000 (got 1)`.
      node.error((error as Error).message);
      node.status(failed(shorten((error as Error).message)));
      return;
    }

    const file = stateFile(RED, node.id, "rolling-sigma");
    let saveWarned = false;
    // The file may still hold a version 1 or 2 snapshot from an earlier release; restore reads all three.
    const snapshots = new PeriodicSnapshot<RollingSigmaSnapshot | RollingSigmaSnapshotV1>(
      file,
      () => {
        saveWarned = false;
        return detector.snapshot();
      },
      (error) => {
        if (!saveWarned) node.warn(t("errors.saveFailed", { file, error: error.message }));
        saveWarned = true;
      },
      snapshotJson,
    );
    restore();
    snapshots.start(SNAPSHOT_INTERVAL_MS);

    let events = 0;
    let anomalies = 0;
    const status = new ThrottledStatus(node, STATUS_INTERVAL_MS);
    showStatus();

    node.on("input", (msg: NodeMessage, send, trackedDone) => {
      const done = metrics.track(trackedDone);
      if (msg.topic === "reset") {
        detector.reset();
        events = anomalies = 0;
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
        recordDetections(input.events, "rolling_3_sigma");
        send([withEvents(msg, input.events, input.batch), copyWithEvents(msg, flagged, input.batch)]);
      }
      if (input.error) return reportInvalidInput(node, input.error, done);
      status.soon(currentStatus);
      done();
    });

    node.on("close", (removed: boolean, done: () => void) => {
      if (removed) metrics.remove();
      // The state file is kept even when the node is removed or disabled: re-enabling it resumes its windows.
      status.stop();
      snapshots.stop();
      done();
    });

    function restore(): void {
      try {
        const saved = snapshots.load();
        if (saved === undefined) return;
        const mismatch = detector.windowMismatch(saved);
        if (mismatch !== null) {
          // Windows of another length would be judged as if they were this one's: warm up again, but keep the
          // cool-downs, so a fault already announced is not announced again because the window changed.
          node.log(t("log.discarded", { file, saved: mismatch.saved, current: mismatch.current }));
          detector.restoreCooldown(saved);
          return;
        }
        detector.restore(saved);
        node.log(t("log.restored", { windows: detector.windowCount, sensors: detector.sensorCount, file }));
      } catch (error) {
        node.warn(t("errors.restoreFailed", { file, error: (error as Error).message }));
      }
    }

    function currentStatus(): NodeStatus {
      if (detector.readyWindowCount === 0) return warming(t("status.warming"));
      return running(t("status.running", { sensors: detector.sensorCount, events: compactCount(events), anomalies: compactCount(anomalies) }));
    }

    function showStatus(): void {
      status.now(currentStatus());
    }
  }

  RED.nodes.registerType("iot-rolling-3-sigma", RollingSigmaNode);
  serveMetrics(RED);
};
