import assert from "node:assert/strict";
import { logLevel } from "kafkajs";
import {
  backoffDelay,
  buildKafkaConnection,
  checkTopicName,
  createLogCreator,
  formatLogRecord,
  KafkaConfigError,
  parseBrokers,
  type KafkaLogRecord,
} from "../../src/core/kafka/connection-options";

function configError(run: () => unknown, field: string, message: RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof KafkaConfigError, `expected KafkaConfigError, got ${String(error)}`);
    assert.equal(error.field, field);
    assert.match(error.message, message);
    return true;
  });
}

const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

describe("core/kafka/connection-options", () => {
  it("parses a broker list with commas or spaces, IPv6 in brackets, without duplicates", () => {
    assert.deepEqual(parseBrokers("kafka-1:9092, kafka-2:9092 10.0.0.3:9093,[::1]:9092,kafka-1:9092"), [
      "kafka-1:9092",
      "kafka-2:9092",
      "10.0.0.3:9093",
      "[::1]:9092",
    ]);
  });

  const badBrokers: Array<[string, unknown, RegExp]> = [
    ["an empty list", "  ", /empty/],
    ["a missing port", "kafka-1", /"kafka-1" is not host:port/],
    ["a port out of range", "kafka-1:70000", /port of "kafka-1:70000" must be 1..65535/],
    ["a scheme", "PLAINTEXT://kafka-1:9092", /without a scheme/],
    ["a bad host", "kafka_1!:9092", /not a valid host name/],
    ["a non-string", 9092, /empty/],
  ];
  for (const [title, value, message] of badBrokers) {
    it(`rejects ${title} in "brokers"`, () => configError(() => parseBrokers(value), "brokers", message));
  }

  it("builds a plain kafkajs config with retry backoff and a client id", () => {
    const connection = buildKafkaConnection({ brokers: "127.0.0.1:9092" });
    assert.deepEqual(connection.kafkaConfig.brokers, ["127.0.0.1:9092"]);
    assert.equal(connection.kafkaConfig.clientId, "node-red-iot-anomaly");
    assert.equal(connection.kafkaConfig.ssl, undefined);
    assert.equal(connection.kafkaConfig.sasl, undefined);
    assert.deepEqual(connection.kafkaConfig.retry, { initialRetryTime: 300, maxRetryTime: 30_000, multiplier: 2, factor: 0.2, retries: 8 });
    assert.equal(connection.kafkaConfig.logLevel, logLevel.NOTHING, "no sink: kafkajs must not print to stdout");
  });

  it("builds TLS with CA, client certificate and rejectUnauthorized", () => {
    const connection = buildKafkaConnection({
      brokers: "broker:9093",
      tls: { ca: PEM, cert: PEM, key: "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----", rejectUnauthorized: false, servername: "kafka.plant" },
    });
    const ssl = connection.kafkaConfig.ssl as Record<string, unknown>;
    assert.deepEqual(ssl.ca, [PEM]);
    assert.equal(ssl.cert, PEM);
    assert.equal(ssl.rejectUnauthorized, false);
    assert.equal(ssl.servername, "kafka.plant");
    assert.equal(buildKafkaConnection({ brokers: "b:1", tls: true }).kafkaConfig.ssl, true);
    assert.equal(buildKafkaConnection({ brokers: "b:1", tls: false }).kafkaConfig.ssl, undefined);
  });

  it("rejects TLS settings that cannot work, naming the field", () => {
    configError(() => buildKafkaConnection({ brokers: "b:1", tls: { ca: "/etc/ssl/ca.pem" } }), "tls.ca", /paste the file's content, not its path/);
    configError(() => buildKafkaConnection({ brokers: "b:1", tls: { cert: PEM } }), "tls.key", /needs both "tls.cert" and "tls.key"/);
    configError(() => buildKafkaConnection({ brokers: "b:1", tls: { rejectUnauthorized: "no" as unknown as boolean } }), "tls.rejectUnauthorized", /true or false/);
  });

  it("builds SASL plain and SCRAM, and names what is missing", () => {
    for (const mechanism of ["plain", "scram-sha-256", "scram-sha-512"] as const) {
      const sasl = buildKafkaConnection({ brokers: "b:1", sasl: { mechanism, username: "u", password: "p" } }).kafkaConfig.sasl;
      assert.deepEqual(sasl, { mechanism, username: "u", password: "p" });
    }
    configError(() => buildKafkaConnection({ brokers: "b:1", sasl: { mechanism: "gssapi" as "plain", username: "u", password: "p" } }), "sasl.mechanism", /plain, scram-sha-256, scram-sha-512/);
    configError(() => buildKafkaConnection({ brokers: "b:1", sasl: { mechanism: "plain", username: "", password: "p" } }), "sasl.username", /empty/);
    configError(() => buildKafkaConnection({ brokers: "b:1", sasl: { mechanism: "scram-sha-512", username: "u", password: "" } }), "sasl.password", /empty/);
  });

  it("validates client id, timeouts and retry settings by name", () => {
    configError(() => buildKafkaConnection({ brokers: "b:1", clientId: "my client" }), "clientId", /letters, digits/);
    configError(() => buildKafkaConnection({ brokers: "b:1", requestTimeoutMs: 0 }), "requestTimeoutMs", /whole number/);
    configError(() => buildKafkaConnection({ brokers: "b:1", retry: { initialRetryTimeMs: 5000, maxRetryTimeMs: 1000 } }), "retry.maxRetryTimeMs", /must not be less/);
    configError(() => buildKafkaConnection({ brokers: "b:1", retry: { retries: -1 } }), "retry.retries", /0 to 100/);
  });

  it("backs off exponentially up to the maximum, with bounded jitter", () => {
    const retry = { initialRetryTimeMs: 300, maxRetryTimeMs: 30_000, multiplier: 2, factor: 0.2, retries: 8 };
    const middle = () => 0.5;
    assert.deepEqual([0, 1, 2, 3, 10].map((attempt) => backoffDelay(retry, attempt, middle)), [300, 600, 1200, 2400, 30_000]);
    assert.equal(backoffDelay(retry, 1, () => 0), 480);
    assert.equal(backoffDelay(retry, 1, () => 1), 720);
  });

  it("routes kafkajs log lines to a sink, with level and fields, collapsing repeats of a broker outage", () => {
    const records: KafkaLogRecord[] = [];
    let time = 0;
    const log = createLogCreator((record) => records.push(record), 10_000, () => time)(logLevel.INFO);
    const line = (message: string) => ({ namespace: "Connection", level: logLevel.ERROR, label: "ERROR", log: { timestamp: "t", message, broker: "127.0.0.1:9092" } });
    log(line("Connection error: connect ECONNREFUSED"));
    time = 1000;
    log(line("Connection error: connect ECONNREFUSED"));
    log(line("Connection error: connect ECONNREFUSED"));
    time = 12_000;
    log(line("Connection error: connect ECONNREFUSED"));
    assert.equal(records.length, 2);
    assert.deepEqual(records[0], { level: "error", namespace: "Connection", message: "Connection error: connect ECONNREFUSED", fields: { broker: "127.0.0.1:9092" } });
    assert.equal(records[1].message, "Connection error: connect ECONNREFUSED (repeated 2 more times)");
    assert.equal(formatLogRecord(records[0]), "[Connection] Connection error: connect ECONNREFUSED (broker 127.0.0.1:9092)");
  });

  it("never lets a throwing log sink break the client", () => {
    const log = createLogCreator(() => {
      throw new Error("sink broke");
    })(logLevel.INFO);
    assert.doesNotThrow(() => log({ namespace: "Consumer", level: logLevel.WARN, label: "WARN", log: { timestamp: "t", message: "x" } }));
  });

  it("checks topic names by Kafka's rules", () => {
    assert.equal(checkTopicName("sensor-events.v1_raw"), "sensor-events.v1_raw");
    configError(() => checkTopicName(""), "topic", /empty/);
    configError(() => checkTopicName("sensor events"), "topic", /letters, digits/);
    configError(() => checkTopicName("x".repeat(250), "topics[0]"), "topics[0]", /249/);
  });
});
