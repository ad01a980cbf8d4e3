// Readiness probe for scripts/kafka-local.sh: exits 0 once a real client (kafkajs, as the nodes use) can create a
// topic on the broker, see its partition leader and find a group coordinator, 1 after the timeout.
//   node scripts/kafka/wait-ready.js 127.0.0.1:9092 [timeoutSeconds]
// "Kafka Server started" in the log comes slightly before the controller hands out partition leaders, so a test
// that creates a topic right after it could still fail; this probe closes that gap.
"use strict";
const { Kafka, logLevel } = require("kafkajs");

const PROBE_TOPIC = "iot-anomaly-ready-probe";
const PROBE_GROUP = "iot-anomaly-ready-probe";

async function probe(brokers) {
  const kafka = new Kafka({
    clientId: "iot-anomaly-wait-ready",
    brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1000,
    requestTimeout: 5000,
    retry: { retries: 0 },
  });
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic: PROBE_TOPIC, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true });
    const metadata = await admin.fetchTopicMetadata({ topics: [PROBE_TOPIC] });
    const partition = metadata.topics[0] && metadata.topics[0].partitions[0];
    if (!partition || partition.leader < 0) throw new Error(`topic ${PROBE_TOPIC} has no partition leader yet`);
    // Looking up a group coordinator makes the broker create __consumer_offsets now, so the first consumer of a
    // test does not meet "the group coordinator is not available" while it is being created.
    await admin.describeGroups([PROBE_GROUP]);
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

async function main() {
  const address = process.argv[2];
  const timeoutSeconds = Number(process.argv[3] || 60);
  if (!address) {
    console.error("usage: node scripts/kafka/wait-ready.js host:port[,host:port] [timeoutSeconds]");
    process.exit(2);
  }
  const brokers = address.split(",");
  const deadline = Date.now() + timeoutSeconds * 1000;
  let lastError;
  for (;;) {
    try {
      await probe(brokers);
      return;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      console.error(`wait-ready: no client could create a topic at ${address} within ${timeoutSeconds} s: ${lastError && lastError.message}`);
      process.exit(1);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

main().catch((error) => {
  console.error(`wait-ready: ${error.stack || error}`);
  process.exit(1);
});
