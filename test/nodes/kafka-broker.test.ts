// The kafka-broker config node: secrets kept as credentials (not in the flow), ${KAFKA_BROKERS} from the
// environment, one shared producer that closes when its last user leaves, and settings that cannot work reported on
// the users' status and log, naming the field. Uses the real broker of test/support/kafka-broker.ts.
import assert from "node:assert/strict";
import type { NodeMessage, NodeStatus } from "node-red";
import helper from "node-red-node-test-helper";
import kafkaBrokerNode from "../../nodes/kafka-broker/kafka-broker";
import kafkaInNode from "../../nodes/kafka-in/kafka-in";
import kafkaOutNode from "../../nodes/kafka-out/kafka-out";
import type { KafkaBrokerConfigNode } from "../../src/runtime/kafka-connection";
import { createTopic, endOffsets, kafkaBrokers } from "../support/kafka-broker";

helper.init(require.resolve("node-red"));

/** A node of a test flow: any properties besides id and type. */
type FlowNode = { id: string; type: string } & Record<string, any>;

type Message = Record<string, any>;
type LogEntry = { level: number; id?: string; type?: string; msg?: unknown };
type StatusSpy = { getCalls(): Array<{ thisValue: unknown; args: [NodeStatus] }> };

const T0 = Date.UTC(2025, 0, 1);
const event = { sensorId: "pump-1", timestamp: T0, readings: { vibration: 2.5 } };

/** Errors the runtime logged for node `id` (node.error at construction happens before a test can listen). */
function loggedErrors(id: string): string[] {
  const log = helper.log() as unknown as { ERROR: number; args: Array<[LogEntry]> };
  return log.args.filter(([entry]) => entry.level === log.ERROR && entry.id === id).map(([entry]) => String(entry.msg));
}

/** Statuses node `id` has shown so far. */
function statuses(id: string): NodeStatus[] {
  const node = helper.getNode(id);
  return (node.status as unknown as StatusSpy)
    .getCalls()
    .filter((call) => call.thisValue === node)
    .map((call) => call.args[0]);
}

function nextMessage(id: string, ms = 20_000): Promise<Message> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for a message on ${id}`)), ms);
    helper.getNode(id).once("input", (msg: NodeMessage) => {
      clearTimeout(timer);
      resolve(msg as Message);
    });
  });
}

describe("iot-kafka-broker config node", function () {
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
    delete process.env.IOT_KAFKA_TEST_BROKERS;
    await helper.unload();
    await new Promise<void>((resolve) => helper.stopServer(resolve));
  });

  const brokerNode = (extra: Record<string, unknown> = {}) => ({
    id: "broker",
    type: "iot-kafka-broker",
    name: "plant kafka",
    brokers,
    clientId: "broker-test",
    tls: false,
    tlsRejectUnauthorized: true,
    saslMechanism: "none",
    ...extra,
  });
  const outNode = (extra: Record<string, unknown> = {}) => ({ id: "out", z: "f1", type: "iot-kafka-out", broker: "broker", topic: "", keyField: "sensorId", acks: "all", compression: "none", wires: [["sent"]], ...extra });
  const inNode = (extra: Record<string, unknown> = {}) => ({
    id: "in",
    z: "f1",
    type: "iot-kafka-in",
    broker: "broker",
    topics: "iot.raw",
    groupId: "iot-silver",
    fromBeginning: true,
    batchSize: 1,
    maxInFlight: 5000,
    ackMode: "input",
    deadLetterTopic: "",
    sessionTimeout: 10000,
    wires: [[], []],
    ...extra,
  });
  const tab = { id: "f1", type: "tab", label: "broker" };
  const sent = { id: "sent", z: "f1", type: "helper" };

  it("keeps the password and TLS key as credentials: used by the connection, absent from the flow configuration", async () => {
    await helper.load([kafkaBrokerNode, kafkaOutNode], [tab, brokerNode(), outNode(), sent]);
    // Deploy as the editor does: credentials travel inside the node object and the runtime takes them out.
    const withCredentials: FlowNode = {
      ...brokerNode({ saslMechanism: "scram-sha-512" }),
      credentials: { username: "node-red", password: "s3cret-pw", tlsKey: "-----BEGIN PRIVATE KEY-----\nkey-material\n-----END PRIVATE KEY-----" },
    };
    await helper.setFlows(
      [tab, withCredentials, outNode(), sent],
      "full",
    );
    const flowJson = JSON.stringify((helper as unknown as { _redNodes: { getFlows(): { flows: unknown[] } } })._redNodes.getFlows().flows);
    assert.ok(!flowJson.includes("s3cret-pw"), "the password is not in the flow configuration");
    assert.ok(!flowJson.includes("key-material"), "the TLS key is not in the flow configuration");
    assert.ok(!flowJson.includes("credentials"), "no credentials object is left in the flow");

    const broker = helper.getNode("broker") as unknown as KafkaBrokerConfigNode & { credentials: Record<string, string> };
    assert.equal(broker.credentials.password, "s3cret-pw", "the running node has its credentials");
    const sasl = broker.kafka!.connection.kafkaConfig.sasl as { mechanism: string; username: string; password: string };
    assert.deepEqual(sasl, { mechanism: "scram-sha-512", username: "node-red", password: "s3cret-pw" });

    const definition = (helper as unknown as { credentials: { getDefinition(type: string): Record<string, { type: string }> } }).credentials.getDefinition("iot-kafka-broker");
    assert.deepEqual(definition, {
      username: { type: "text" },
      password: { type: "password" },
      tlsCa: { type: "text" },
      tlsCert: { type: "text" },
      tlsKey: { type: "password" },
    });
  });

  it("takes the broker list from ${KAFKA_BROKERS}-style environment variables and shares one producer", async () => {
    process.env.IOT_KAFKA_TEST_BROKERS = brokers;
    const topic = await createTopic("broker-env", 1);
    await helper.load(
      [kafkaBrokerNode, kafkaOutNode],
      [tab, brokerNode({ brokers: "${IOT_KAFKA_TEST_BROKERS}" }), outNode({ topic }), outNode({ id: "out2", topic }), sent],
    );
    const broker = helper.getNode("broker") as unknown as KafkaBrokerConfigNode;
    assert.equal(broker.kafka!.brokers, brokers);
    assert.equal(broker.kafka!.userCount, 2, "both kafka-out nodes registered");
    const first = nextMessage("sent");
    helper.getNode("out").receive({ payload: event });
    assert.deepEqual((await first).sent, { topic, count: 1 });
    const second = nextMessage("sent");
    helper.getNode("out2").receive({ payload: { ...event, timestamp: T0 + 1 } });
    assert.deepEqual((await second).sent, { topic, count: 1 });
    assert.deepEqual(await endOffsets(topic), new Map([[0, 2]]));
    assert.equal(broker.kafka!.producer(), broker.kafka!.producer(), "one producer for every user");
  });

  it("reports settings that cannot work on its users, naming the field, and sends nothing", async () => {
    await helper.load(
      [kafkaBrokerNode, kafkaOutNode, kafkaInNode],
      [
        tab,
        brokerNode({ brokers: "" }),
        { ...brokerNode({ id: "tlsBroker", tls: true }) },
        { ...brokerNode({ id: "saslBroker", saslMechanism: "plain" }) },
        outNode(),
        inNode({ broker: "tlsBroker" }),
        inNode({ id: "in2", broker: "saslBroker" }),
        outNode({ id: "out2", broker: "" }),
        outNode({ id: "out3", topic: "bad topic!", broker: "saslBroker" }),
        { ...brokerNode({ id: "envBroker", brokers: "${IOT_KAFKA_TEST_UNSET}" }) },
        outNode({ id: "out4", broker: "envBroker" }),
        sent,
      ],
      { tlsBroker: { tlsKey: "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----" }, saslBroker: { username: "node-red" } },
    );
    assert.match(loggedErrors("broker").join("\n"), /"brokers" is empty/);
    assert.match(loggedErrors("out").join("\n"), /"brokers" is empty/, "the kafka-out names the broker setting");
    assert.match(loggedErrors("in").join("\n"), /"tls.cert"/, "a TLS key without its certificate");
    assert.match(loggedErrors("in2").join("\n"), /"sasl.password" is empty/);
    assert.match(loggedErrors("out2").join("\n"), /"broker" is not set/);
    assert.match(loggedErrors("out3").join("\n"), /"sasl.password" is empty/);
    assert.match(loggedErrors("out4").join("\n"), /environment variable IOT_KAFKA_TEST_UNSET is not set/);
    for (const id of ["out", "in", "in2", "out2", "out3", "out4"]) {
      const shown = statuses(id);
      assert.equal(shown[shown.length - 1]?.fill, "red", `${id} shows a red status`);
    }
    const caught = new Promise<unknown>((resolve) => helper.getNode("out").once("call:error", resolve));
    helper.getNode("out").receive({ topic: "t", payload: event });
    await caught;
  });

  it("refuses kafka-in and kafka-out settings that cannot work, naming the field", async () => {
    await helper.load(
      [kafkaBrokerNode, kafkaOutNode, kafkaInNode],
      [
        tab,
        brokerNode(),
        inNode({ id: "badTopic", topics: "iot.raw, bad topic!" }),
        inNode({ id: "noGroup", groupId: "" }),
        inNode({ id: "badBatch", batchSize: 0 }),
        inNode({ id: "badInFlight", maxInFlight: "lots" }),
        inNode({ id: "loop", deadLetterTopic: "iot.raw" }),
        inNode({ id: "badSession", sessionTimeout: 100 }),
        outNode({ id: "badOutTopic", topic: "no spaces allowed" }),
        outNode({ id: "badKey", keyField: "readings.vibration" }),
        sent,
      ],
    );
    const expected: Record<string, RegExp> = {
      badTopic: /"topics\[1\]" may use letters/,
      noGroup: /"groupId" is empty/,
      badBatch: /"batchSize" must be a whole number from 1/,
      badInFlight: /"maxInFlight" must be a whole number/,
      loop: /"deadLetterTopic" must not be one of the topics read/,
      badSession: /"sessionTimeout" must be a whole number from 6000/,
      badOutTopic: /"topic" may use letters/,
      badKey: /"keyField" must be a top-level event field/,
    };
    for (const [id, pattern] of Object.entries(expected)) {
      assert.match(loggedErrors(id).join("\n"), pattern, id);
      assert.equal(statuses(id).at(-1)?.fill, "red", `${id} shows a red status`);
    }
    const broker = helper.getNode("broker") as unknown as KafkaBrokerConfigNode;
    assert.equal(broker.kafka!.userCount, 0, "nodes with bad settings do not use the connection");
  });

  it("closes its producer when the last user leaves, and a new user gets a new one", async () => {
    const topic = await createTopic("broker-users", 1);
    await helper.load([kafkaBrokerNode, kafkaOutNode], [tab, brokerNode(), outNode({ topic }), sent]);
    const broker = helper.getNode("broker") as unknown as KafkaBrokerConfigNode;
    const producer = broker.kafka!.producer();
    assert.equal(broker.kafka!.userCount, 1);
    // Redeploy only the kafka-out (the config node keeps running): it leaves, then its new version registers.
    await helper.setFlows([tab, brokerNode(), outNode({ topic, name: "renamed" }), sent], "nodes");
    assert.equal(broker.kafka!.userCount, 1);
    assert.equal(producer.status.state, "stopped", "the old producer closed when its only user left");
    const reply = nextMessage("sent");
    helper.getNode("out").receive({ payload: event });
    assert.deepEqual((await reply).sent, { topic, count: 1 });
    assert.notEqual(broker.kafka!.producer(), producer);
  });
});
