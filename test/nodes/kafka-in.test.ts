// kafka-in on a real Apache Kafka broker (test/support/kafka-broker.ts): offsets committed only for acknowledged
// messages, invalid values on output 2 and the dead-letter topic, batches from one partition, the in-flight bound,
// foreign acknowledgements ignored, and an unreachable broker.
import assert from "node:assert/strict";
import { Kafka, logLevel } from "kafkajs";
import helper from "node-red-node-test-helper";
import kafkaBrokerNode from "../../nodes/kafka-broker/kafka-broker";
import kafkaInNode from "../../nodes/kafka-in/kafka-in";
import kafkaOutNode from "../../nodes/kafka-out/kafka-out";
import { AckRegistry, type HeldEvent } from "../../src/runtime/kafka-acks";
import { metricsText } from "../../src/runtime/metrics";
import { committedOffsets, createTopic, endOffsets, kafkaBrokers, produceRaw, uniqueName } from "../support/kafka-broker";

import type { EventEmitter } from "node:events";
import type { Node, NodeAPI, NodeDef, NodeMessage } from "node-red";
import { inbox, nextStatus, within, type Message } from "../support/node-inbox";

helper.init(require.resolve("node-red"));

/** A node of a test flow: any properties besides id and type. */
type FlowNode = { id: string; type: string } & Record<string, any>;

const T0 = Date.UTC(2025, 0, 1);
const eventJson = (sensorId: string, index: number) => JSON.stringify({ sensorId, timestamp: T0 + index * 1000, readings: { vibration: 2 + index / 100 } });

async function eventually<T>(read: () => Promise<T>, accept: (value: T) => boolean, what: string, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (accept(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: last value ${JSON.stringify(value instanceof Map ? [...value] : value)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const total = (offsets: Map<number, number>) => [...offsets.values()].reduce((sum, offset) => sum + Math.max(0, offset), 0);

describe("iot-kafka-in node (real broker)", function () {
  this.timeout(30_000);
  let brokers: string;

  before(async function () {
    this.timeout(240_000); // a cold first start downloads the broker's jars
    brokers = await kafkaBrokers();
  });

  beforeEach((done) => {
    helper.startServer(done);
  });
  afterEach(async () => {
    await helper.unload();
    await new Promise<void>((resolve) => helper.stopServer(resolve));
  });

  async function start(kafkaIn: Record<string, unknown>, brokerAddress = brokers) {
    const flow: FlowNode[] = [
        { id: "f1", type: "tab", label: "kafka-in" },
        { id: "broker", type: "iot-kafka-broker", name: "", brokers: brokerAddress, clientId: "kafka-in-test", tls: false, saslMechanism: "none" },
        {
          id: "in",
          z: "f1",
          type: "iot-kafka-in",
          name: "",
          broker: "broker",
          fromBeginning: true,
          batchSize: 1,
          maxInFlight: 5000,
          ackMode: "input",
          deadLetterTopic: "",
          sessionTimeout: 10000,
          wires: [["events"], ["invalid"]],
          ...kafkaIn,
        },
        { id: "events", z: "f1", type: "helper" },
        { id: "invalid", z: "f1", type: "helper" },
        { id: "onComplete", z: "f1", type: "complete", scope: ["in"], uncaught: false, wires: [["completed"]] },
        { id: "completed", z: "f1", type: "helper" },
    ];
    await helper.load([kafkaBrokerNode, kafkaInNode, kafkaOutNode], flow);
    const node = helper.getNode("in");
    return { node, events: inbox(helper.getNode("events")), invalid: inbox(helper.getNode("invalid")), completed: inbox(helper.getNode("completed")) };
  }

  /** The first `count` messages of a dead-letter topic, with their headers as text. */
  async function readDeadLetters(deadLetterTopic: string, count: number) {
    const kafka = new Kafka({ clientId: "dlq-reader", brokers: brokers.split(","), logLevel: logLevel.NOTHING });
    const reader = kafka.consumer({ groupId: uniqueName("dlq-reader") });
    const letters: Array<{ key: string; value: string; headers: Record<string, string> }> = [];
    try {
      await reader.connect();
      await reader.subscribe({ topic: deadLetterTopic, fromBeginning: true });
      await within(
        new Promise<void>((resolve) => {
          void reader.run({
            eachMessage: async ({ message }) => {
              const headers: Record<string, string> = {};
              for (const [name, value] of Object.entries(message.headers ?? {})) headers[name] = String(value);
              letters.push({ key: String(message.key), value: String(message.value), headers });
              if (letters.length === count) resolve();
            },
          });
        }),
        20_000,
        "the dead letters",
      );
    } finally {
      await reader.disconnect();
    }
    return letters;
  }

  async function produceEvents(topic: string, count: number, sensors = 5): Promise<void> {
    await produceRaw(
      topic,
      Array.from({ length: count }, (_, index) => ({ key: `pump-${index % sensors}`, value: eventJson(`pump-${index % sensors}`, index) })),
    );
  }

  it("commits nothing without acknowledgements: the group reads everything again after a restart", async () => {
    const topic = await createTopic("in-noack", 3);
    const groupId = uniqueName("in-noack");
    await produceEvents(topic, 30);
    const first = await start({ topics: topic, groupId });
    const firstRead = await first.events.take(30, "the first read");
    assert.equal(firstRead[0].kafka.consumer, "in");
    await helper.unload();
    assert.equal(total(await committedOffsets(groupId, topic)), 0, "no offset committed for unacknowledged events");

    const second = await start({ topics: topic, groupId });
    const again = await second.events.take(30, "the same events read again");
    assert.deepEqual(
      again.map((msg) => msg.payload.eventId).sort(),
      firstRead.map((msg) => msg.payload.eventId).sort(),
      "every unacknowledged event comes again",
    );
  });

  it("commits acknowledged offsets: with acks wired back, a restarted group reads only new events", async () => {
    const topic = await createTopic("in-ack", 3);
    const groupId = uniqueName("in-ack");
    await produceEvents(topic, 30);
    const first = await start({ topics: topic, groupId });
    // A helper node standing in for a sink: it forwards each finished message back to kafka-in's input.
    helper.getNode("events").on("input", (msg: NodeMessage) => first.node.receive(msg));
    const read = await first.events.take(30, "the events");
    assert.deepEqual(read[0].kafka.offsets, [read[0].offset]);
    assert.equal(typeof read[0].kafka.generation, "number");
    await eventually(() => committedOffsets(groupId, topic), (offsets) => total(offsets) === 30, "all 30 offsets committed");
    assert.deepEqual(await committedOffsets(groupId, topic), await endOffsets(topic));
    await helper.unload();

    await produceRaw(topic, [{ key: "pump-new", value: eventJson("pump-new", 99) }]);
    const second = await start({ topics: topic, groupId });
    const msg = await second.events.next("the new event");
    assert.equal(msg.payload.sensorId, "pump-new", "the restarted group starts after the acknowledged events");
    assert.equal(await second.events.next("nothing old", 1500).catch(() => null), null, "no old event is read again");
  });

  it("ignores messages on its input that it did not send, or of another delivery, with done()", async () => {
    const topic = await createTopic("in-foreign", 1);
    const groupId = uniqueName("in-foreign");
    await produceEvents(topic, 3, 1);
    const { node, events, completed } = await start({ topics: topic, groupId });
    const read = await events.take(3, "the events");
    const meta = read[0].kafka;
    node.receive({ payload: "hello" });
    node.receive({ payload: read[0].payload, kafka: { ...meta, consumer: "another-kafka-in" } });
    node.receive({ payload: read[0].payload, kafka: { ...meta, generation: meta.generation + 1000 } });
    await completed.take(3, "done() for the three foreign messages");
    await helper.unload();
    assert.equal(total(await committedOffsets(groupId, topic)), 0, "none of them acknowledged anything");
  });

  it("ignores acknowledgements from before a rebalance: only the new delivery's acks commit", async () => {
    const topic = await createTopic("in-rebalance", 2);
    const groupId = uniqueName("in-rebalance");
    await produceEvents(topic, 20, 10);
    const { node, events } = await start({ topics: topic, groupId, sessionTimeout: 6000 });
    const before = await events.take(20, "the first delivery");
    const flow = (helper as unknown as { _redNodes: { getFlows(): { flows: FlowNode[] } } })._redNodes.getFlows().flows;
    // A second member joins the group: the partitions are reassigned, and each partition kept by the first member is
    // delivered again from its last commit (nothing committed yet) with a new generation.
    const second: FlowNode = { ...flow.find((item) => item.id === "in")!, id: "in2", wires: [[], []] };
    await helper.setFlows([...flow, second], "nodes");
    const again = await events.next("the first member's partition delivered again after the rebalance", 25_000);
    assert.notEqual(again.kafka.generation, before.find((msg) => msg.partition === again.partition)!.kafka.generation);

    before.forEach((msg) => node.receive(msg)); // late acks of the first delivery
    await new Promise((resolve) => setTimeout(resolve, 1500)); // longer than the commit interval
    assert.equal(total(await committedOffsets(groupId, topic)), 0, "stale acknowledgements committed nothing");

    const kept = before.filter((msg) => msg.partition === again.partition).length;
    const redelivered = [again, ...(await events.take(kept - 1, "the rest of the partition's redelivery"))];
    assert.ok(redelivered.every((msg) => msg.partition === again.partition));
    redelivered.forEach((msg) => node.receive(msg));
    await eventually(
      () => committedOffsets(groupId, topic),
      (offsets) => offsets.get(again.partition) === kept,
      "the new delivery's acknowledgements committed",
    );
  });

  it("sends batches of up to batchSize events of one partition, with per-event metadata", async () => {
    const topic = await createTopic("in-batch", 2);
    await produceEvents(topic, 250, 10);
    const { events } = await start({ topics: topic, groupId: uniqueName("in-batch"), batchSize: 100, ackMode: "send" });
    let count = 0;
    const seen = new Set<string>();
    while (count < 250) {
      const msg = await events.next(`batches (${count} of 250 events so far)`);
      const payload = msg.payload as Array<{ eventId: string }>;
      assert.ok(Array.isArray(payload) && payload.length >= 1 && payload.length <= 100, `batch of ${payload.length}`);
      assert.equal(msg.kafka.partition, msg.partition);
      assert.equal(msg.kafka.offsets.length, payload.length);
      assert.equal(msg.kafka.keys.length, payload.length);
      assert.equal(msg.kafka.timestamps.length, payload.length);
      assert.deepEqual(msg.kafka.offsets, [...msg.kafka.offsets].sort((a: number, b: number) => a - b), "offsets in order");
      payload.forEach((event) => seen.add(event.eventId));
      count += payload.length;
    }
    assert.equal(seen.size, 250, "every event once");
  });

  it("sends invalid values to output 2 with their offset and field, and keeps consuming", async () => {
    const topic = await createTopic("in-invalid", 1);
    await produceRaw(topic, [
      { key: "a", value: eventJson("first", 0) },
      { key: "b", value: "{not json" },
      { key: "c", value: "" },
      { key: "d", value: JSON.stringify({ sensorId: "x", timestamp: T0, readings: { vibration: "n/a" } }) },
      { key: "e", value: eventJson("last", 4) },
    ]);
    const groupId = uniqueName("in-invalid");
    const { node, events, invalid } = await start({ topics: topic, groupId });
    helper.getNode("events").on("input", (msg: NodeMessage) => node.receive(msg));
    const good = await events.take(2, "the two valid events");
    assert.deepEqual(good.map((msg) => [msg.payload.sensorId, msg.offset]), [["first", 0], ["last", 4]]);
    const bad = (await invalid.take(3, "the three invalid values")).map((msg) => msg.payload);
    assert.deepEqual(
      bad.map(({ raw, field, offset, key, topic: from, partition }) => ({ raw, field, offset, key, from, partition })),
      [
        { raw: "{not json", field: "payload", offset: 1, key: "b", from: topic, partition: 0 },
        { raw: "", field: "value", offset: 2, key: "c", from: topic, partition: 0 },
        { raw: JSON.stringify({ sensorId: "x", timestamp: T0, readings: { vibration: "n/a" } }), field: "readings.vibration", offset: 3, key: "d", from: topic, partition: 0 },
      ],
    );
    assert.match(bad[0].error, /not valid JSON/);
    // Invalid values are acknowledged at once: with the two valid ones acked, the partition commits to its end.
    await eventually(() => committedOffsets(groupId, topic), (offsets) => offsets.get(0) === 5, "offsets committed past the invalid values");
  });

  it("reads packed records (JSON arrays) event by event; a bad event goes to output 2 with its index; commits once all are back", async () => {
    const topic = await createTopic("in-packed", 1);
    const bad = { sensorId: "pump-1", timestamp: T0, readings: { vibration: "n/a" } };
    await produceRaw(topic, [
      { key: null, value: `[${eventJson("pump-0", 0)},${eventJson("pump-1", 1)},${eventJson("pump-0", 2)}]` },
      { key: "pump-2", value: eventJson("pump-2", 3) },
      { key: null, value: `[${eventJson("pump-0", 4)},${JSON.stringify(bad)},${eventJson("pump-1", 5)}]` },
    ]);
    const groupId = uniqueName("in-packed");
    const { node, events, invalid } = await start({ topics: topic, groupId, batchSize: 2 });
    const messages = await events.take(3, "three messages of up to two events");
    assert.deepEqual(
      messages.map((msg) => [msg.payload.map((event: { timestamp: number }) => event.timestamp - T0), msg.kafka.offsets, msg.kafka.indexes]),
      [
        [[0, 1000], [0, 0], [0, 1]],
        [[2000, 3000], [0, 1], [2, -1]],
        [[4000, 5000], [2, 2], [0, 2]],
      ],
      "events in order; a packed record's events share its offset and carry their index",
    );
    const rejected = (await invalid.next("the bad event")).payload;
    assert.deepEqual([rejected.offset, rejected.index, rejected.field, JSON.parse(rejected.raw)], [2, 1, "readings.vibration", bad]);

    // Acknowledging all but the first record's last event commits nothing: the record is not finished.
    node.receive({ kafka: { ...messages[0].kafka } });
    node.receive({ kafka: { ...messages[2].kafka } });
    node.receive({ kafka: { ...messages[1].kafka, offsets: [1], indexes: [-1] } });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(total(await committedOffsets(groupId, topic)), 0, "offset 0 waits for its third event");
    node.receive({ kafka: messages[1].kafka });
    await eventually(() => committedOffsets(groupId, topic), (offsets) => offsets.get(0) === 3, "every record committed once all its events are back");
  });

  it("writes invalid values to the dead-letter topic with the error and where they came from", async () => {
    const topic = await createTopic("in-dlq-source", 1);
    const deadLetterTopic = await createTopic("in-dlq", 1);
    await produceRaw(topic, [
      { key: "a", value: "temperature=41.3", headers: { origin: "gateway-7" } },
      { key: "b", value: eventJson("ok", 1) },
      { key: "c", value: JSON.stringify({ timestamp: T0, readings: { vibration: 1 } }) },
    ]);
    const { invalid } = await start({ topics: topic, groupId: uniqueName("in-dlq"), deadLetterTopic, ackMode: "send" });
    await invalid.take(2, "the invalid values on output 2");
    await eventually(() => endOffsets(deadLetterTopic), (offsets) => offsets.get(0) === 2, "two dead letters");

    const letters = await readDeadLetters(deadLetterTopic, 2);
    assert.deepEqual(letters.map((letter) => [letter.key, letter.value]), [
      ["a", "temperature=41.3"],
      ["c", JSON.stringify({ timestamp: T0, readings: { vibration: 1 } })],
    ]);
    assert.equal(letters[0].headers["x-source-topic"], topic);
    assert.equal(letters[0].headers["x-source-partition"], "0");
    assert.equal(letters[0].headers["x-source-offset"], "0");
    assert.match(letters[0].headers["x-error"], /not valid JSON/);
    assert.equal(letters[0].headers.origin, "gateway-7", "the original headers are kept");
    assert.equal(letters[1].headers["x-source-offset"], "2");
    assert.equal(letters[1].headers["x-error-field"], "sensorId");
  });

  /**
   * kafka-in -> a sink that fails the messages `failure` names (done(err), which Catch nodes see) and passes the rest
   * back as acknowledgements; a Catch node scoped to the sink wired back into kafka-in, as the README's Gold flow.
   */
  async function startWithFailingSink(kafkaIn: Record<string, unknown>, failure: (msg: Message) => string | null) {
    const seen: Message[] = [];
    function failingSinkNode(RED: NodeAPI) {
      RED.nodes.registerType("test-failing-sink", function (this: Node, config: NodeDef) {
        RED.nodes.createNode(this, config);
        this.on("input", (msg: NodeMessage, send: (msg: NodeMessage) => void, done: (error?: Error) => void) => {
          seen.push(structuredClone(msg));
          const reason = failure(msg);
          if (reason !== null) return done(new Error(reason));
          send(msg);
          done();
        });
      });
    }
    const flow: FlowNode[] = [
      { id: "f1", type: "tab", label: "kafka-in failures" },
      { id: "broker", type: "iot-kafka-broker", name: "", brokers, clientId: "kafka-in-test", tls: false, saslMechanism: "none" },
      { id: "in", z: "f1", type: "iot-kafka-in", name: "", broker: "broker", fromBeginning: true, batchSize: 1, maxInFlight: 5000, ackMode: "input", deadLetterTopic: "", sessionTimeout: 10000, wires: [["sink"], ["invalid"]], ...kafkaIn },
      { id: "sink", z: "f1", type: "test-failing-sink", name: "Gold DB", wires: [["in", "stored"]] },
      { id: "onCatch", z: "f1", type: "catch", scope: ["sink"], uncaught: false, wires: [["in"]] },
      { id: "stored", z: "f1", type: "helper" },
      { id: "invalid", z: "f1", type: "helper" },
    ];
    await helper.load([kafkaBrokerNode, kafkaInNode, failingSinkNode], flow);
    return { node: helper.getNode("in"), seen, stored: inbox(helper.getNode("stored")), invalid: inbox(helper.getNode("invalid")) };
  }

  /** Offsets of a message's events, and which attempt each is. */
  const offsetsOf = (msg: Message): number[] => msg.kafka.offsets;
  const attemptsOf = (msg: Message): number[] => msg.kafka.attempts ?? msg.kafka.offsets.map(() => 1);

  it("sends an event a Catch node reports failed again after 1 s, 2 s, ... and commits past it once it succeeds", async () => {
    const topic = await createTopic("in-retry", 1);
    const groupId = uniqueName("in-retry");
    await produceEvents(topic, 10, 1);
    // Offset 3 fails on its first two attempts (say, a database that was away), then goes through.
    const { node, seen, stored } = await startWithFailingSink({ topics: topic, groupId }, (msg) =>
      offsetsOf(msg).includes(3) && attemptsOf(msg)[0] < 3 ? "database away" : null,
    );
    const warnings: string[] = [];
    (node as unknown as EventEmitter).on("call:warn", (call: { args: [string] }) => warnings.push(String(call.args[0])));
    const storedMessages = await stored.take(10, "every event stored once", 15_000);
    assert.deepEqual(storedMessages.map((msg) => msg.offset).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const tries = seen.filter((msg) => offsetsOf(msg).includes(3));
    assert.deepEqual(tries.map(attemptsOf), [[1], [2], [3]], "offset 3 was tried three times, each attempt numbered");
    assert.deepEqual(tries[1].payload, tries[0].payload, "a retry carries the event as the topic holds it");
    // One warning per kind of failure (repeats are rate-limited); the test runtime shows the message key, not its text.
    assert.ok(warnings.length >= 1 && warnings.every((text) => /retrying/.test(text)), warnings.join("\n"));
    await eventually(() => committedOffsets(groupId, topic), (offsets) => total(offsets) === 10, "all 10 offsets committed");
    const metrics = await metricsText();
    assert.match(metrics, new RegExp(`^iot_anomaly_kafka_retries_total\\{group="${groupId}",topic="${topic}"\\} 2$`, "m"));
    // No dead letters, and the counter says so (it exists from the node's start, for the dashboard's rate()).
    assert.match(metrics, new RegExp(`^iot_anomaly_kafka_dead_lettered_total\\{group="${groupId}",topic="${topic}"\\} 0$`, "m"));
  });

  it("after maxAttempts writes only the failing event of a batch to the dead letters and output 2, and commits past it", async () => {
    const topic = await createTopic("in-poison", 1);
    const deadLetterTopic = await createTopic("in-poison-dlq", 1);
    const groupId = uniqueName("in-poison");
    await produceRaw(topic, [0, 1, 2, 3, 4].map((index) => ({ key: "pump-0", value: eventJson("pump-0", index), headers: { origin: "line-2" } })));
    // Every message holding offset 1 fails: the first batch of three, then offset 1 alone (retries go out one by one).
    const { seen, stored, invalid } = await startWithFailingSink({ topics: topic, groupId, batchSize: 3, maxAttempts: 2, deadLetterTopic }, (msg) =>
      offsetsOf(msg).includes(1) ? "constraint failed" : null,
    );
    const gaveUp = await invalid.next("the event given up, on output 2", 15_000);
    assert.deepEqual({ ...gaveUp.payload, error: undefined }, { raw: eventJson("pump-0", 1), error: undefined, attempts: 2, topic, partition: 0, offset: 1, key: "pump-0" });
    assert.match(gaveUp.payload.error, /constraint failed/);
    const [letter] = await readDeadLetters(deadLetterTopic, 1);
    assert.equal(letter.value, eventJson("pump-0", 1), "the dead letter is the record as the topic holds it");
    assert.equal(letter.key, "pump-0");
    assert.deepEqual([letter.headers["x-attempts"], letter.headers["x-source-offset"], letter.headers.origin], ["2", "1", "line-2"]);
    assert.match(letter.headers["x-error"], /^test-failing-sink "Gold DB": (Error: )?constraint failed$/, "the error, and the node that reported it");
    await eventually(() => committedOffsets(groupId, topic), (offsets) => total(offsets) === 5, "all 5 offsets committed");
    // Committed, so everything is back: [0, 1, 2] failed, then 0 and 2 alone, and [3, 4] as one batch.
    const storedOffsets = (await stored.take(stored.queued, "the good events")).flatMap(offsetsOf).sort((a, b) => a - b);
    assert.deepEqual(storedOffsets, [0, 2, 3, 4], "the batch-mates of the failing event are stored, not dead-lettered");
    assert.deepEqual(seen.filter((msg) => offsetsOf(msg).includes(1)).map(attemptsOf), [[1, 1, 1], [2]]);
    const metrics = await metricsText();
    assert.match(metrics, new RegExp(`^iot_anomaly_kafka_retries_total\\{group="${groupId}",topic="${topic}"\\} 3$`, "m"), "the batch of three sent again");
    assert.match(metrics, new RegExp(`^iot_anomaly_kafka_dead_lettered_total\\{group="${groupId}",topic="${topic}"\\} 1$`, "m"));
  });

  it("retries one event of a packed record by its position, and commits the record once all of its events are back", async () => {
    const topic = await createTopic("in-retry-packed", 1);
    const groupId = uniqueName("in-retry-packed");
    const events = [0, 1, 2].map((index) => JSON.parse(eventJson("pump-0", index)));
    await produceRaw(topic, [{ key: null, value: JSON.stringify(events) }]);
    // The event at position 1 fails once; the message holding it is the record's first batch of three.
    const { seen, stored } = await startWithFailingSink({ topics: topic, groupId, batchSize: 3 }, (msg) =>
      (msg.kafka.indexes as number[]).includes(1) && attemptsOf(msg).every((attempt) => attempt === 1) ? "busy" : null,
    );
    await eventually(() => committedOffsets(groupId, topic), (offsets) => total(offsets) === 1, "the packed record committed");
    const retried = seen.filter((msg) => msg.kafka.attempts !== undefined);
    assert.equal(retried.length, 3, "each event of the failed message is sent again on its own");
    assert.deepEqual(retried.map((msg) => [msg.kafka.offsets, msg.kafka.indexes, msg.kafka.attempts]).sort(), [
      [[0], [0], [2]],
      [[0], [1], [2]],
      [[0], [2], [2]],
    ]);
    // Batch size 3: a payload is an array, here of the one event, which validation gave its eventId.
    assert.deepEqual(retried.find((msg) => msg.kafka.indexes[0] === 1)!.payload, [{ eventId: `pump-0:${T0 + 1000}`, ...events[1] }], "decoded afresh from its place in the record");
    assert.equal(stored.queued, 3);
  });

  it("never gives an event up without a dead-letter topic: it is tried again and its partition's commit point waits", async () => {
    const topic = await createTopic("in-hold", 1);
    const groupId = uniqueName("in-hold");
    await produceEvents(topic, 5, 1);
    const { node, seen, stored, invalid } = await startWithFailingSink({ topics: topic, groupId, maxAttempts: 2 }, (msg) =>
      offsetsOf(msg).includes(1) ? "disk full" : null,
    );
    await stored.take(4, "the other events");
    await nextStatus(node, (status) => /retrying/.test(String(status.text)), "the retry counted in the status", 5000);
    await eventually(async () => seen.filter((msg) => offsetsOf(msg).includes(1)).length, (tries) => tries >= 3, "a third attempt, past maxAttempts");
    assert.equal(invalid.queued, 0, "nothing given up");
    await eventually(() => committedOffsets(groupId, topic), (offsets) => total(offsets) === 1, "the commit point held at offset 1");
  });

  it("pauses at maxInFlight unacknowledged events (yellow status) and resumes as acknowledgements come back", async () => {
    const topic = await createTopic("in-inflight", 1);
    await produceEvents(topic, 40, 4);
    const { node, events } = await start({ topics: topic, groupId: uniqueName("in-inflight"), maxInFlight: 10 });
    const paused = nextStatus(node, (status) => status.fill === "yellow" && /paused/.test(String(status.text)), "the paused status");
    const firstTen = await events.take(10, "the first 10 events");
    await paused;
    assert.equal(await events.next("nothing beyond the bound", 1000).catch(() => null), null, "no 11th event while 10 are unacknowledged");

    const resumed = nextStatus(node, (status) => status.fill === "green", "the running status again");
    helper.getNode("events").on("input", (msg: NodeMessage) => node.receive(msg));
    firstTen.forEach((msg) => node.receive(msg));
    await resumed;
    const rest = await events.take(30, "the remaining 30 events");
    assert.equal(new Set([...firstTen, ...rest].map((msg) => msg.payload.eventId)).size, 40);
  });

  it("turns red for an unreachable broker without crashing, and closes in time", async () => {
    const { node } = await start({ topics: "anything", groupId: "nobody" }, "127.0.0.1:1");
    const red = await nextStatus(node, (status) => status.fill === "red", "a red status for 127.0.0.1:1", 10_000);
    assert.match(String(red.text), /ECONNREFUSED|disconnected/);
    const started = Date.now();
    await helper.unload();
    const closeTime = Date.now() - started;
    assert.ok(closeTime < 15_000, `close took ${closeTime} ms (Node-RED allows 15 s)`);
  });
});

describe("kafka-in acknowledgement matching (AckRegistry)", () => {
  /** A held event whose ack calls `ack` (its record's value is not needed to match acknowledgements). */
  function heldAt(ack: () => void, options: { attempt?: number } = {}): HeldEvent {
    return { ack, value: null, attempt: options.attempt ?? 1, failed: false };
  }

  /** Held events that record which offsets were acknowledged. */
  function tracked(offsets: number[]) {
    const acked: number[] = [];
    return { acked, acks: offsets.map((offset) => heldAt(() => acked.push(offset))) };
  }

  it("acknowledges the offsets of its own current delivery, once", () => {
    const registry = new AckRegistry("in-1");
    const delivery = registry.deliveryFor("iot.raw", 0, 1);
    const { acked, acks } = tracked([10, 11, 12]);
    registry.hold(delivery, [10, 11, 12], acks);
    const meta = { consumer: "in-1", generation: delivery.token, topic: "iot.raw", partition: 0, offsets: [10, 12] };
    assert.equal(registry.acknowledge(meta), 2);
    assert.equal(registry.acknowledge(meta), 0, "a repeated acknowledgement changes nothing");
    assert.deepEqual(acked, [10, 12]);
  });

  it("ignores another node's messages, other partitions and anything that is not msg.kafka", () => {
    const registry = new AckRegistry("in-1");
    const delivery = registry.deliveryFor("iot.raw", 0, 1);
    const { acked, acks } = tracked([5]);
    registry.hold(delivery, [5], acks);
    const meta = { consumer: "in-1", generation: delivery.token, topic: "iot.raw", partition: 0, offsets: [5] };
    for (const foreign of [undefined, null, "5", { ...meta, consumer: "in-2" }, { ...meta, partition: 1 }, { ...meta, topic: "iot.scored" }, { ...meta, offsets: 5 }]) {
      assert.equal(registry.acknowledge(foreign), 0, JSON.stringify(foreign));
    }
    assert.deepEqual(acked, []);
  });

  it("ignores acknowledgements of a delivery replaced by a rebalance, even for the same offsets", () => {
    const registry = new AckRegistry("in-1");
    const first = registry.deliveryFor("iot.raw", 0, 1);
    const old = tracked([0, 1]);
    registry.hold(first, [0, 1], old.acks);
    const second = registry.deliveryFor("iot.raw", 0, 2); // the core re-delivers the partition from its last commit
    assert.notEqual(second.token, first.token);
    const again = tracked([0, 1]);
    registry.hold(second, [0, 1], again.acks);
    assert.equal(registry.acknowledge({ consumer: "in-1", generation: first.token, topic: "iot.raw", partition: 0, offsets: [0, 1] }), 0);
    assert.deepEqual(again.acked, [], "the late acknowledgement of the old copies does not finish the new ones");
    assert.equal(registry.acknowledge({ consumer: "in-1", generation: second.token, topic: "iot.raw", partition: 0, offsets: [0, 1] }), 2);
    assert.deepEqual(again.acked, [0, 1]);
  });

  it("acknowledges the events of a packed record one by one, across messages, each once", () => {
    const registry = new AckRegistry("in-1");
    const delivery = registry.deliveryFor("iot.raw", 0, 1);
    const acked: string[] = [];
    const ack = (offset: number, index?: number) => heldAt(() => acked.push(index === undefined ? `${offset}` : `${offset}#${index}`));
    // Offset 7 is a packed record of three events, split over two messages; offset 8 is a record of one event.
    registry.hold(delivery, [7, 7], [ack(7, 0), ack(7, 1)], [0, 1]);
    registry.hold(delivery, [7, 8], [ack(7, 2), ack(8)], [2, -1]);
    const meta = (offsets: number[], indexes?: number[]) => ({ consumer: "in-1", generation: delivery.token, topic: "iot.raw", partition: 0, offsets, indexes });
    assert.equal(registry.acknowledge(meta([7, 8], [2, -1])), 2);
    assert.equal(registry.acknowledge(meta([7, 8], [2, -1])), 0, "a repeated acknowledgement changes nothing");
    assert.equal(registry.acknowledge(meta([7])), 0, "an event of a packed record needs its index");
    assert.equal(registry.acknowledge(meta([7, 7], [0, 1])), 2);
    assert.deepEqual(acked, ["7#2", "8", "7#0", "7#1"]);
    assert.equal(delivery.pending.size, 0, "nothing left once every event is back");
  });

  it("reports a failure of the current attempt once, with its origin from msg.kafka; a retry replaces the event", () => {
    const registry = new AckRegistry("in-1");
    const delivery = registry.deliveryFor("iot.raw", 0, 1);
    const { acked, acks } = tracked([3, 4]);
    registry.hold(delivery, [3, 4], acks);
    const meta = {
      consumer: "in-1",
      generation: delivery.token,
      topic: "iot.raw",
      partition: 0,
      offsets: [3, 4],
      keys: ["s1", "s2"],
      timestamps: [T0, T0 + 1],
      headers: [{ trace: "a" }, {}],
    };
    const failed = registry.fail(meta);
    assert.deepEqual(
      failed.map(({ record }) => record),
      [
        { topic: "iot.raw", partition: 0, offset: "3", key: "s1", timestamp: String(T0), headers: { trace: "a" }, generation: 1, value: null },
        { topic: "iot.raw", partition: 0, offset: "4", key: "s2", timestamp: String(T0 + 1), headers: {}, generation: 1, value: null },
      ],
    );
    assert.deepEqual(registry.fail(meta), [], "a second report of the same attempt (two Catch nodes) is ignored");
    assert.ok(registry.isHeld(failed[0]), "a failed event stays held until it is retried or dead-lettered");
    assert.equal(acked.length, 0);

    const retry = heldAt(() => acked.push(33), { attempt: 2 });
    registry.hold(delivery, [3], [retry]);
    assert.equal(registry.isHeld(failed[0]), false, "the retry replaced the first attempt");
    assert.deepEqual(registry.fail(meta), [], "the first attempt's report names nothing current");
    const second = registry.fail({ ...meta, offsets: [3], attempts: [2] });
    assert.deepEqual(second.map(({ held }) => held), [retry]);
    assert.equal(registry.acknowledge({ ...meta, offsets: [3, 4] }), 2, "a success of any attempt finishes the event");
    assert.deepEqual(acked, [33, 4]);
    assert.equal(registry.isHeld(second[0]), false, "acknowledged: nothing left to retry");
  });

  it("reports failures of packed-record events by position, and only of this node's current delivery", () => {
    const registry = new AckRegistry("in-1");
    const delivery = registry.deliveryFor("iot.raw", 0, 1);
    const second = heldAt(() => {});
    registry.hold(delivery, [7, 7], [heldAt(() => {}), second], [0, 1]);
    const meta = { consumer: "in-1", generation: delivery.token, topic: "iot.raw", partition: 0, offsets: [7], indexes: [1] };
    assert.deepEqual(registry.fail({ ...meta, consumer: "in-2" }), []);
    assert.deepEqual(registry.fail({ ...meta, generation: delivery.token + 1 }), []);
    const failed = registry.fail(meta);
    assert.deepEqual(failed.map(({ held, record }) => [held, record.index]), [[second, 1]]);
    registry.deliveryFor("iot.raw", 0, 2); // a rebalance: the partition is delivered afresh
    assert.equal(registry.isHeld(failed[0]), false, "an event of a replaced delivery is not retried: it comes again anyway");
  });

  it("never reuses a token, not even in a node redeployed with the same id", () => {
    const before = new AckRegistry("in-1").deliveryFor("iot.raw", 0, 1).token;
    const after = new AckRegistry("in-1").deliveryFor("iot.raw", 0, 1).token;
    assert.notEqual(after, before);
  });
});
