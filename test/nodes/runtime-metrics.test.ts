// The package's Prometheus registry: per-sensor scores and anomaly counts reach the scrape text, names follow
// Prometheus rules, and a node's series go when the node is deleted.
import assert from "node:assert/strict";
import type { SensorEvent } from "../../src/core/event";
import { metricsText, NodeMetrics, recordDetections, recordKafkaLag, removeKafkaLag } from "../../src/runtime/metrics";

const scored = (sensorId: string, score: number, anomaly: boolean): SensorEvent => ({
  eventId: `${sensorId}:${score}`,
  sensorId,
  timestamp: 0,
  readings: { vibration: 1 },
  detectors: { isolationForest: { score, anomaly, threshold: 0.6, modelVersion: 1 } },
});

describe("runtime/metrics", () => {
  it("keeps the latest score per sensor and counts checked and flagged events per sensor and detector", async () => {
    recordDetections([scored("m-1", 0.4, false), scored("m-1", 0.7, true), scored("m-2", 0.5, false)], "isolation_forest");
    recordDetections([scored("m-1", 0.8, true)], "isolation_forest");
    const text = await metricsText();
    assert.match(text, /^iot_anomaly_score\{sensor_id="m-1",detector="isolation_forest"\} 0\.8$/m);
    assert.match(text, /^iot_anomaly_score\{sensor_id="m-2",detector="isolation_forest"\} 0\.5$/m);
    assert.match(text, /^iot_anomaly_anomalies_total\{sensor_id="m-1",detector="isolation_forest"\} 2$/m);
    assert.match(text, /^iot_anomaly_checked_total\{sensor_id="m-1",detector="isolation_forest"\} 3$/m);
    // A sensor checked but never flagged has its anomaly series at 0, so the share flagged reads 0 %, not "no data".
    assert.match(text, /^iot_anomaly_anomalies_total\{sensor_id="m-2",detector="isolation_forest"\} 0$/m);
    assert.match(text, /^iot_anomaly_checked_total\{sensor_id="m-2",detector="isolation_forest"\} 1$/m);
    // An event the forest could not score yet (no model) is not counted as checked.
    recordDetections([{ ...scored("m-3", 0, false), detectors: { isolationForest: { score: null, anomaly: false, threshold: null, modelVersion: null } } }], "isolation_forest");
    assert.doesNotMatch(await metricsText(), /sensor_id="m-3"/);
    // A second scrape does not count the same events again.
    const again = await metricsText();
    assert.match(again, /^iot_anomaly_anomalies_total\{sensor_id="m-1",detector="isolation_forest"\} 2$/m);
    assert.match(again, /^iot_anomaly_checked_total\{sensor_id="m-1",detector="isolation_forest"\} 3$/m);
  });

  it("gives the first IOT_ANOMALY_METRICS_MAX_SENSORS sensors series of their own and sums the rest under _other", async () => {
    recordDetections([scored("cap-first", 0.5, false)], "isolation_forest");
    // Every sensor recorded so far (here and by earlier tests) gets its series under the default cap of 1000.
    assert.match(await metricsText(), /^iot_anomaly_checked_total\{sensor_id="cap-first",detector="isolation_forest"\} 1$/m);
    process.env.IOT_ANOMALY_METRICS_MAX_SENSORS = "1"; // already reached: every new sensor is one too many
    try {
      recordDetections([scored("cap-a", 0.3, true), scored("cap-b", 0.9, false), scored("cap-b", 0.2, true), scored("cap-first", 0.6, true)], "isolation_forest");
      const text = await metricsText();
      assert.doesNotMatch(text, /sensor_id="cap-(a|b)"/, "no series of their own past the cap");
      assert.match(text, /^iot_anomaly_checked_total\{sensor_id="_other",detector="isolation_forest"\} 3$/m);
      assert.match(text, /^iot_anomaly_anomalies_total\{sensor_id="_other",detector="isolation_forest"\} 2$/m);
      // The highest latest score of the others (cap-a 0.3, cap-b 0.2 after its 0.9).
      assert.match(text, /^iot_anomaly_score\{sensor_id="_other",detector="isolation_forest"\} 0\.3$/m);
      assert.match(text, /^iot_anomaly_anomalies_total\{sensor_id="cap-first",detector="isolation_forest"\} 1$/m, "a sensor keeps the series it has");
      assert.match(text, /^iot_anomaly_checked_total\{sensor_id="cap-first",detector="isolation_forest"\} 2$/m);
    } finally {
      delete process.env.IOT_ANOMALY_METRICS_MAX_SENSORS;
    }
  });

  it("counts a node's events and errors, times its messages, and drops its series when it is deleted", async () => {
    const metrics = new NodeMetrics({ id: "n-metrics-1", name: "press line" }, "iot-test-node");
    metrics.received(10);
    metrics.sent(9);
    const done = metrics.track((_error?: Error) => {});
    done(new Error("bad"));
    let text = await metricsText();
    assert.match(text, /^iot_anomaly_events_in_total\{node_type="iot-test-node",node_id="n-metrics-1",node_name="press line"\} 10$/m);
    assert.match(text, /^iot_anomaly_errors_total\{node_type="iot-test-node",node_id="n-metrics-1",node_name="press line"\} 1$/m);
    assert.match(text, /^iot_anomaly_processing_seconds_count\{node_type="iot-test-node"\} 1$/m);
    metrics.remove();
    text = await metricsText();
    assert.doesNotMatch(text, /node_id="n-metrics-1"/);
  });

  it("reports Kafka lag per partition until the partition is given up", async () => {
    recordKafkaLag("g1", "iot.raw", 2, 17);
    assert.match(await metricsText(), /^iot_anomaly_kafka_consumer_lag\{group="g1",topic="iot.raw",partition="2"\} 17$/m);
    removeKafkaLag("g1", "iot.raw", 2);
    assert.doesNotMatch(await metricsText(), /group="g1"/);
  });

  it("uses metric names Prometheus accepts", async () => {
    const names = [...(await metricsText()).matchAll(/^# TYPE (\S+) /gm)].map((match) => match[1]);
    assert.ok(names.length > 10);
    for (const name of names) assert.match(name, /^[a-zA-Z_:][a-zA-Z0-9_:]*$/);
  });
});
