// kafka-out on a real Apache Kafka broker (test/support/kafka-broker.ts): keys and per-sensor order through a
// kafka-in, one request per batch payload, msg.topic / msg.key / msg.headers, bad input, a big batch split under the
// broker's size limit, and an unreachable broker.
import assert from "node:assert/strict";
import helper from "node-red-node-test-helper";
import kafkaBrokerNode from "../../nodes/kafka-broker/kafka-broker";
import kafkaInNode from "../../nodes/kafka-in/kafka-in";
import kafkaOutNode from "../../nodes/kafka-out/kafka-out";
import type { KafkaBrokerConfigNode } from "../../src/runtime/kafka-connection";
import { createTopic, endOffsets, kafkaBrokers, uniqueName } from "../support/kafka-broker";
import { inbox, nextStatus } from "../support/node-inbox";

helper.init(require.resolve("node-red"));

/** A node of a test flow: any properties besides id and type. */
type FlowNode = { id: string; type: string } & Record<string, any>;

const T0 = Date.UTC(2025, 0, 1);
const event = (sensor: number, index: number) => ({ sensorId: `pump-${sensor}`, timestamp: T0 + index * 1000, readings: { vibration: 2 + (index % 7) / 10, temperature: 40 } });

describe("iot-kafka-out node (real broker)", function () {
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

  /** broker + kafka-out (+ Catch/Complete on it), and optionally a kafka-in reading `inTopic` into helper "events". */
  function flow(out: Record<string, unknown>, options: { inTopic?: string; brokerAddress?: string } = {}) {
    const nodes: FlowNode[] = [
      { id: "f1", type: "tab", label: "kafka-out" },
      { id: "broker", type: "iot-kafka-broker", name: "test broker", brokers: options.brokerAddress ?? brokers, clientId: "kafka-out-test", tls: false, saslMechanism: "none" },
      { id: "out", z: "f1", type: "iot-kafka-out", name: "", broker: "broker", topic: "", keyField: "sensorId", acks: "all", compression: "none", wires: [["sent"]], ...out },
      { id: "sent", z: "f1", type: "helper" },
      { id: "onCatch", z: "f1", type: "catch", scope: ["out"], uncaught: false, wires: [["caught"]] },
      { id: "caught", z: "f1", type: "helper" },
    ];
    if (options.inTopic) {
      nodes.push(
        { id: "in", z: "f1", type: "iot-kafka-in", name: "", broker: "broker", topics: options.inTopic, groupId: uniqueName("out-test"), fromBeginning: true, batchSize: 1, maxInFlight: 5000, ackMode: "send", deadLetterTopic: "", sessionTimeout: 10000, wires: [["events"], ["invalid"]] },
        { id: "events", z: "f1", type: "helper" },
        { id: "invalid", z: "f1", type: "helper" },
      );
    }
    return nodes;
  }

  async function start(out: Record<string, unknown>, options: { inTopic?: string; brokerAddress?: string } = {}) {
    await helper.load([kafkaBrokerNode, kafkaOutNode, kafkaInNode], flow(out, options));
    return {
      out: helper.getNode("out"),
      sent: inbox(helper.getNode("sent")),
      caught: inbox(helper.getNode("caught")),
      events: options.inTopic ? inbox(helper.getNode("events")) : null,
    };
  }

  it("keys each event by its sensor id, so a kafka-in reads every sensor's events in order, from one partition", async () => {
    const topic = await createTopic("out-roundtrip", 3);
    const { out, sent, events } = await start({ topic }, { inTopic: topic });
    const connected = nextStatus(out, (status) => status.fill === "green", "a green status");
    const input: ReturnType<typeof event>[] = [];
    for (let index = 0; index < 60; index++) input.push(event(index % 6, index));
    for (const item of input) out.receive({ payload: item });

    const acknowledged = await sent.take(60, "kafka-out's output after the broker's ack");
    assert.deepEqual(acknowledged[0].sent, { topic, count: 1 });
    assert.equal(acknowledged[0].payload.sensorId, "pump-0", "the original message is sent on");
    assert.equal((await connected).shape, "dot");

    const received = await events!.take(60, "kafka-in's events");
    const partitionOf = new Map<string, number>();
    const lastTimestamp = new Map<string, number>();
    for (const msg of received) {
      const sensor = msg.payload.sensorId as string;
      assert.equal(msg.key, sensor, "the message key is the sensor id");
      assert.equal(partitionOf.get(sensor) ?? msg.partition, msg.partition, `${sensor} stays on one partition`);
      partitionOf.set(sensor, msg.partition);
      assert.ok((lastTimestamp.get(sensor) ?? -Infinity) < msg.payload.timestamp, `${sensor}'s events arrive in order`);
      lastTimestamp.set(sensor, msg.payload.timestamp);
    }
    assert.equal(new Set(received.map((msg) => msg.payload.eventId)).size, 60, "every event once");
  });

  it("sends an array payload as one request and answers with one message counting all of them", async () => {
    const topic = await createTopic("out-batch", 3);
    const { out, sent } = await start({ topic });
    const broker = helper.getNode("broker") as unknown as KafkaBrokerConfigNode;
    const producer = broker.kafka!.producer();
    let requests = 0;
    const original = producer.sendMessages.bind(producer);
    producer.sendMessages = (...args) => {
      requests++;
      return original(...args);
    };
    const batch = Array.from({ length: 500 }, (_, index) => event(index % 25, index));
    out.receive({ payload: batch });
    const msg = await sent.next("the batch to be acknowledged");
    assert.deepEqual(msg.sent, { topic, count: 500 });
    assert.equal((msg.payload as unknown[]).length, 500);
    assert.equal(requests, 1, "one send for the whole payload");
    const ends = await endOffsets(topic);
    assert.equal([...ends.values()].reduce((sum, end) => sum + end, 0), 500, "all 500 events are on the topic");
  });

  it("with records 'packed' writes a partition's events as one JSON-array record, on the partition their key hashes to", async () => {
    const unpacked = await createTopic("out-unpacked", 3);
    const packed = await createTopic("out-packed", 3);
    const batch = Array.from({ length: 300 }, (_, index) => event(index % 12, index));
    const reference = await start({ topic: unpacked }, { inTopic: unpacked });
    reference.out.receive({ payload: batch });
    await reference.sent.next("the unpacked batch acknowledged");
    const partitionOf = new Map((await reference.events!.take(300, "the unpacked events")).map((msg) => [msg.payload.sensorId as string, msg.partition as number]));
    await helper.unload();

    const { out, sent, events } = await start({ topic: packed, records: "packed" }, { inTopic: packed });
    out.receive({ payload: batch });
    assert.deepEqual((await sent.next("the first batch acknowledged")).sent, { topic: packed, count: 300 });
    out.receive({ payload: Array.from({ length: 300 }, (_, index) => event(index % 12, 300 + index)) });
    assert.deepEqual((await sent.next("the second batch acknowledged")).sent, { topic: packed, count: 300 });
    // The producer's first send to a topic carries one event on its own (it learns the partition count); then at
    // most one record per partition and send.
    const records = [...(await endOffsets(packed)).values()].reduce((sum, end) => sum + end, 0);
    assert.ok(records <= 1 + 3 + 3, `${records} records for 600 events`);

    const received = await events!.take(600, "every event through kafka-in");
    const lastTimestamp = new Map<string, number>();
    for (const msg of received.slice(300)) {
      const sensor = msg.payload.sensorId as string;
      assert.equal(msg.partition, partitionOf.get(sensor), `${sensor} is on the partition its key hashes to`);
      assert.ok((lastTimestamp.get(sensor) ?? -Infinity) < msg.payload.timestamp, `${sensor}'s events arrive in order`);
      lastTimestamp.set(sensor, msg.payload.timestamp);
    }
    assert.equal(new Set(received.map((msg) => msg.payload.eventId)).size, 600, "every event once");
  });

  it("with select 'flagged' writes only flagged events and still passes every message on whole, flagged or not", async () => {
    const topic = await createTopic("out-flagged", 3);
    const { sent } = await start({ topic, select: "flagged" });
    const out = helper.getNode("out");
    const flagged = (index: number, anomaly: boolean) => ({ ...event(index % 5, index), detectors: { rolling3Sigma: { anomaly, ready: true, metrics: {} } } });
    const batch = Array.from({ length: 40 }, (_, index) => flagged(index, index % 10 === 0));
    out.receive({ payload: batch });
    out.receive({ payload: [flagged(100, false), flagged(101, false)] });
    const [withAnomalies, without] = await sent.take(2, "both messages passed on");
    assert.deepEqual(withAnomalies.sent, { topic, count: 4 });
    assert.equal((withAnomalies.payload as unknown[]).length, 40, "the message goes on whole");
    assert.deepEqual(without.sent, { topic, count: 0 });
    const ends = await endOffsets(topic);
    assert.equal([...ends.values()].reduce((sum, end) => sum + end, 0), 4, "only the 4 flagged events are on the topic");
  });

  it("splits a batch larger than the broker's message size limit into several requests, losing nothing", async () => {
    const topic = await createTopic("out-big", 1);
    const { out, sent } = await start({ topic, compression: "gzip" });
    // ~12k events of ~230 bytes: about 2.8 MB, over the broker's 1 MiB record batch limit on one partition.
    const batch = Array.from({ length: 12_000 }, (_, index) => ({ ...event(index % 40, index), readings: { vibration: index / 7, temperature: 40 + index / 1000, pressure: 1.01325 + index / 1e6, flow: 12.5 } }));
    out.receive({ payload: batch });
    const msg = await sent.next("the big batch to be acknowledged");
    assert.deepEqual(msg.sent, { topic, count: 12_000 });
    assert.deepEqual(await endOffsets(topic), new Map([[0, 12_000]]));
  });

  it("uses msg.topic only when the node has no topic, and msg.key and msg.headers when given", async () => {
    const configured = await createTopic("out-configured", 1);
    const fromMessage = await createTopic("out-msg-topic", 1);
    const first = await start({ topic: "" }, { inTopic: fromMessage });
    first.out.receive({ topic: fromMessage, key: "line-3", headers: { plant: "north", line: 3 }, payload: event(1, 1) });
    const got = await first.events!.next("the event sent to msg.topic");
    assert.equal(got.topic, fromMessage);
    assert.equal(got.key, "line-3", "msg.key overrides the sensor id");
    assert.deepEqual(got.headers, { plant: "north", line: "3" });
    await helper.unload();

    const second = await start({ topic: configured }, { inTopic: configured });
    second.out.receive({ topic: fromMessage, payload: event(2, 2) });
    const msg = await second.sent.next("the send to the configured topic");
    assert.equal(msg.sent.topic, configured, "the node's topic wins over msg.topic");
    assert.equal((await second.events!.next("the event on the configured topic")).payload.sensorId, "pump-2");
  });

  it("refuses bad input with done(err) naming the field and a red status, then sends the next good message", async () => {
    const topic = await createTopic("out-bad", 1);
    const { out, sent, caught } = await start({ topic: "" });
    const red = nextStatus(out, (status) => status.fill === "red", "a red status");

    out.receive({ topic, payload: "{not json" });
    assert.match((await caught.next("the malformed JSON error")).error.message, /payload is not valid JSON/);
    out.receive({ topic, payload: { timestamp: T0, readings: { vibration: 1 } } });
    assert.match((await caught.next("the missing sensorId error")).error.message, /sensorId/);
    out.receive({ topic, payload: { sensorId: "pump-1", timestamp: T0, readings: { vibration: "n/a" } } });
    assert.match((await caught.next("the non-numeric reading error")).error.message, /vibration/);
    out.receive({ topic, payload: "x".repeat(1024 * 1024) });
    assert.match((await caught.next("the 1 MB payload error")).error.message, /too large/);
    out.receive({ payload: event(1, 1) });
    assert.match((await caught.next("the missing topic error")).error.message, /no topic/);
    out.receive({ topic: "bad topic!", payload: event(1, 1) });
    assert.match((await caught.next("the bad msg.topic error")).error.message, /"msg.topic" may use letters/);
    out.receive({ topic, headers: { trace: { id: 1 } }, payload: event(1, 1) });
    assert.match((await caught.next("the bad header error")).error.message, /header "trace" must be text/);
    assert.equal((await red).shape, "ring");

    out.receive({ topic, payload: event(1, 2) });
    assert.deepEqual((await sent.next("the good message after the bad ones")).sent, { topic, count: 1 });
    assert.deepEqual(await endOffsets(topic), new Map([[0, 1]]), "only the good event was written");

    // A batch with one bad event: the good ones are written and acknowledged, the bad one is reported.
    out.receive({ topic, payload: [event(1, 3), { sensorId: "pump-1", timestamp: T0, readings: { vibration: null } }, event(1, 4)] });
    assert.deepEqual((await sent.next("the batch's good events")).sent, { topic, count: 2 });
    assert.match((await caught.next("the batch's bad event")).error.message, /event \[1\].*vibration/);
    assert.deepEqual(await endOffsets(topic), new Map([[0, 3]]));
  });

  it("shows a red status for an unreachable broker, never acknowledges a message it could not send, and closes in time", async () => {
    const { out, sent, caught } = await start({ topic: "nowhere" }, { brokerAddress: "127.0.0.1:1" });
    const red = await nextStatus(out, (status) => status.fill === "red", "a red status for 127.0.0.1:1", 10_000);
    assert.match(String(red.text), /ECONNREFUSED|disconnected/);
    out.receive({ payload: event(1, 1) });
    assert.equal(await sent.next("no acknowledgement", 500).catch(() => null), null, "nothing is sent on without the broker's ack");
    assert.equal(await caught.next("no error yet", 10).catch(() => null), null, "the send waits for the broker (retrying) rather than failing at once");
    const started = Date.now();
    await helper.unload();
    const closeTime = Date.now() - started;
    assert.ok(closeTime < 15_000, `close took ${closeTime} ms (Node-RED allows 15 s)`);
  });
});
