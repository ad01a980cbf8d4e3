// Interop with a Kafka client nobody here wrote: Debian's kcat (librdkafka) produces events that kafka-in consumes,
// and consumes what kafka-out produced; values, keys and headers come through intact both ways. Under CI=true a
// missing kcat fails the run (.ci/run installs it); elsewhere the tests are skipped with a note.
import assert from "node:assert/strict";
import { execFile, spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { validateEvent, type SensorEvent } from "../../src/core/event";
import { StationSimulator } from "../../src/core/simulator";
import {
  configureFlow,
  createTopic,
  kafkaBrokers,
  loadExample,
  logTails,
  pollUntil,
  queryRows,
  Runtimes,
  readTopicEvents,
  topicMessageCount,
  uniqueName,
  waitForRows,
  type FlowNode,
} from "../support/medallion";

const KCAT = process.env.KCAT ?? "kcat";

function kcatAvailable(): boolean {
  return spawnSync(KCAT, ["-V"], { stdio: "ignore" }).status === 0;
}

/** kcat as a producer: one message per line, `key<TAB>value`, every message with the given headers. */
function kcatProduce(brokers: string, topic: string, lines: string[], headers: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const args = ["-P", "-b", brokers, "-t", topic, "-K", "\t", ...headers.flatMap((header) => ["-H", header])];
    const child = spawn(KCAT, args, { stdio: ["pipe", "ignore", "pipe"] });
    let errors = "";
    child.stderr.on("data", (chunk: Buffer) => (errors += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`kcat -P exited ${code}: ${errors}`))));
    child.stdin.end(lines.map((line) => `${line}\n`).join(""));
  });
}

interface KcatMessage {
  key: string;
  headers: string;
  value: string;
}

/** kcat as a consumer: the whole topic from the beginning, then exit (-e); `key<TAB>headers<TAB>value` per message. */
function kcatConsume(brokers: string, topic: string): Promise<KcatMessage[]> {
  return new Promise((resolve, reject) => {
    execFile(
      KCAT,
      ["-C", "-b", brokers, "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k\t%h\t%s\n"],
      { timeout: 30_000, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) return reject(new Error(`kcat -C failed: ${error.message}\n${stderr}`));
        const messages = stdout
          .split("\n")
          .filter((line) => line !== "")
          .map((line) => {
            const [key, headers, ...value] = line.split("\t");
            return { key, headers, value: value.join("\t") };
          });
        resolve(messages);
      },
    );
  });
}

/** kcat as a consumer, with each message's partition: `partition<TAB>value` per message. */
function kcatConsumeWithPartition(brokers: string, topic: string): Promise<Array<{ partition: number; value: string }>> {
  return new Promise((resolve, reject) => {
    execFile(KCAT, ["-C", "-b", brokers, "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%p\t%s\n"], { timeout: 30_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`kcat -C failed: ${error.message}\n${stderr}`));
      resolve(
        stdout
          .split("\n")
          .filter((line) => line !== "")
          .map((line) => {
            const [partition, ...value] = line.split("\t");
            return { partition: Number(partition), value: value.join("\t") };
          }),
      );
    });
  });
}

describe("integration: Kafka interop with kcat (librdkafka)", function () {
  this.timeout(90_000);
  const runtimes = new Runtimes();
  let brokers: string;

  before(async function () {
    if (!kcatAvailable()) {
      if (process.env.CI === "true") throw new Error(`kcat is not installed (CI: this fails the run; .ci/run installs it with apt-get install -y kcat)`);
      console.log("      kcat not found: install it (apt-get install kcat) to run the interop tests");
      this.skip();
    }
    this.timeout(120_000);
    brokers = await kafkaBrokers();
  });

  after(() => runtimes.cleanup());

  it("kafka-in consumes kcat's events with values, keys and headers intact (stored in SQLite, relayed by kafka-out, read back by kcat)", async () => {
    const input = await createTopic("kcat.in", 3);
    const relay = await createTopic("kcat.relay", 3);
    const group = uniqueName("kcat-interop");
    const events = new StationSimulator({ preset: "environment", stations: 4, seed: 9, startTime: Date.UTC(2026, 0, 2) }).generate(400);
    // Keys that are not the sensor id: they can only reach the relay topic if kafka-in passed Kafka's key on.
    const keyOf = (event: SensorEvent) => `kcat-key-${event.sensorId}`;
    await kcatProduce(
      brokers,
      input,
      events.map((event) => `${keyOf(event)}\t${JSON.stringify(event)}`),
      ["source=kcat", "plant=north"],
    );
    assert.equal(await topicMessageCount(input), events.length, "kcat wrote every line as one message");

    // kafka-in (one event per message, so msg.key and msg.headers are set) → sqlite-sink → kafka-out (no key field:
    // msg.key decides, msg.headers become headers) → back to kafka-in as its acknowledgement.
    const brokerNode = configureFlow(loadExample("gold"), {}).find((node) => node.type === "iot-kafka-broker")!;
    const tab = "f100000000000001";
    const flow: FlowNode[] = [
      { id: tab, type: "tab", label: "kcat interop" },
      brokerNode,
      { id: "f100000000000010", z: tab, type: "iot-kafka-in", broker: brokerNode.id, topics: input, groupId: group, fromBeginning: true, batchSize: 1, maxInFlight: 5000, ackMode: "input", deadLetterTopic: "", sessionTimeout: 10000, wires: [["f100000000000020"], []] },
      { id: "f100000000000020", z: tab, type: "iot-sqlite-sink", path: "anomalies.db", table: "events", batchSize: 200, flushInterval: 20, retentionDays: 0, wires: [["f100000000000030"]] },
      { id: "f100000000000030", z: tab, type: "iot-kafka-out", broker: brokerNode.id, topic: relay, keyField: "", acks: "all", compression: "none", wires: [["f100000000000010"]] },
    ];
    const userDir = runtimes.userDir("kcat-in");
    const runtime = await runtimes.start(userDir, flow);

    const databasePath = join(userDir, "anomalies.db");
    const count = await waitForRows(databasePath, events.length, 30_000);
    assert.equal(count, events.length, `expected ${events.length} rows, found ${count}\n${logTails({ runtime })}`);
    const rows = queryRows<{ event_id: string; sensor_id: string; ts: number; readings: string }>(databasePath, "SELECT event_id, sensor_id, ts, readings FROM events");
    const byId = new Map(rows.map((row) => [row.event_id, row]));
    for (const event of events) {
      const row = byId.get(event.eventId);
      assert.ok(row, `${event.eventId} not stored`);
      assert.equal(row.sensor_id, event.sensorId);
      assert.equal(row.ts, event.timestamp);
      assert.deepEqual(JSON.parse(row.readings), event.readings, `${event.eventId}: readings changed on the way`);
    }

    const relayed = await pollUntil(
      () => topicMessageCount(relay),
      (n) => n >= events.length,
      15_000,
    );
    assert.equal(relayed, events.length);
    const messages = await kcatConsume(brokers, relay);
    assert.equal(messages.length, events.length);
    const original = new Map(events.map((event) => [event.eventId, event]));
    for (const message of messages) {
      const value = JSON.parse(message.value) as SensorEvent;
      const event = original.get(value.eventId);
      assert.ok(event, `unknown event ${value.eventId} on the relay topic`);
      assert.equal(message.key, keyOf(event), "kcat's key came through kafka-in and kafka-out");
      assert.deepEqual(
        { eventId: value.eventId, sensorId: value.sensorId, timestamp: value.timestamp, readings: value.readings, label: value.label },
        { eventId: event.eventId, sensorId: event.sensorId, timestamp: event.timestamp, readings: event.readings, label: event.label },
      );
      const headers = new Set(message.headers.split(","));
      assert.ok(headers.has("source=kcat") && headers.has("plant=north"), `kcat's headers lost: "${message.headers}"`);
      original.delete(value.eventId);
    }
    assert.equal(original.size, 0, "every event relayed once");
  });

  it("kcat consumes what kafka-out produced from the Bronze flow: JSON events keyed by sensor id", async () => {
    const EVENTS = 1000;
    const topic = await createTopic("kcat.out", 3);
    // One event per record, as a consumer that is not this package expects (the shipped Bronze packs: next test).
    const flow = configureFlow(loadExample("bronze"), { kafkaOut: { topic, records: "event" }, sim: { seed: 21, stations: 7, ratePerStation: 1000, batchSize: 100, limit: EVENTS } });
    const runtime = await runtimes.start(runtimes.userDir("kcat-out"), flow);
    const produced = await pollUntil(
      () => topicMessageCount(topic),
      (n) => n >= EVENTS,
      30_000,
    );
    assert.equal(produced, EVENTS, `kafka-out produced ${produced} of ${EVENTS}\n${logTails({ runtime })}`);

    const messages = await kcatConsume(brokers, topic);
    assert.equal(messages.length, EVENTS);
    const ids = new Set<string>();
    const sensors = new Set<string>();
    for (const message of messages) {
      const event = validateEvent(JSON.parse(message.value));
      assert.equal(message.key, event.sensorId, "the key is the event's sensor id");
      ids.add(event.eventId);
      sensors.add(event.sensorId);
    }
    assert.equal(ids.size, EVENTS, "each event once");
    assert.equal(sensors.size, 7);
  });

  it("kcat consumes the shipped Bronze flow's packed records: JSON arrays of events, each sensor on one partition", async () => {
    const EVENTS = 1000;
    const topic = await createTopic("kcat.packed", 3);
    const flow = configureFlow(loadExample("bronze"), { kafkaOut: { topic }, sim: { seed: 22, stations: 7, ratePerStation: 1000, batchSize: 100, limit: EVENTS } });
    const runtime = await runtimes.start(runtimes.userDir("kcat-packed"), flow);
    const produced = await pollUntil(
      async () => (await readTopicEvents(topic)).length,
      (n) => n >= EVENTS,
      30_000,
    );
    assert.equal(produced, EVENTS, `kafka-out produced ${produced} of ${EVENTS} events\n${logTails({ runtime })}`);

    const messages = await kcatConsumeWithPartition(brokers, topic);
    assert.ok(messages.length < EVENTS / 5, `${messages.length} records for ${EVENTS} events: packed`);
    const ids = new Set<string>();
    const partitionOf = new Map<string, number>();
    for (const message of messages) {
      const value = JSON.parse(message.value) as unknown;
      // The first event the producer sends to a topic goes alone, unpacked; every other record is an array.
      const events = (Array.isArray(value) ? value : [value]).map((item) => validateEvent(item));
      for (const event of events) {
        ids.add(event.eventId);
        assert.equal(partitionOf.get(event.sensorId) ?? message.partition, message.partition, `${event.sensorId} stays on one partition`);
        partitionOf.set(event.sensorId, message.partition);
      }
    }
    assert.equal(ids.size, EVENTS, "each event once");
    assert.equal(partitionOf.size, 7);
  });
});
