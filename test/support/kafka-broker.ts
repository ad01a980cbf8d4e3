// The real Kafka broker for tests: KAFKA_BROKERS if given, otherwise the project's own single-node broker started
// by scripts/kafka-local.sh on a test port (default 19092, so a developer's broker on 9092 and its data are never
// touched). Started once per test process and stopped at exit only if this process started it. No skipping:
// Java and Maven are on every machine of this project, so a broker that cannot start fails the tests.
import { spawn, spawnSync } from "child_process";
import path from "path";
import { Kafka, logLevel, Partitioners, type Admin, type Message } from "kafkajs";

const REPO_DIR = path.resolve(__dirname, "../..");
const SCRIPT = path.join(REPO_DIR, "scripts", "kafka-local.sh");

/** Client port of the test broker (its controller listens on the next port). */
export const TEST_KAFKA_PORT = Number(process.env.KAFKA_TEST_PORT ?? 19092);
export const TEST_KAFKA_ADDRESS = `127.0.0.1:${TEST_KAFKA_PORT}`;

let brokersPromise: Promise<string> | null = null;
let startedByThisProcess = false;
let exitHookInstalled = false;

interface ScriptResult {
  code: number;
  output: string;
}

function scriptEnv(): NodeJS.ProcessEnv {
  return { ...process.env, KAFKA_PORT: String(TEST_KAFKA_PORT), KAFKA_CONTROLLER_PORT: String(TEST_KAFKA_PORT + 1) };
}

function runScript(args: string[]): Promise<ScriptResult> {
  return new Promise((resolve) => {
    const child = spawn("bash", [SCRIPT, ...args], { cwd: REPO_DIR, env: scriptEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("error", (error) => resolve({ code: 127, output: `${output}${error.message}\n` }));
    child.on("close", (code) => resolve({ code: code ?? 1, output }));
  });
}

function howToStart(): string {
  return (
    `Start it by hand with: KAFKA_PORT=${TEST_KAFKA_PORT} bash scripts/kafka-local.sh start ` +
    `(needs java 17+ and mvn; the first start downloads ~45 MB of jars from Maven Central), ` +
    `or point the tests at a running broker with KAFKA_BROKERS=host:port.`
  );
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // "exit" handlers must be synchronous; mocha's --exit ends the process through process.exit, which runs them.
  process.on("exit", () => {
    if (!startedByThisProcess) return;
    spawnSync("bash", [SCRIPT, "stop"], { cwd: REPO_DIR, env: scriptEnv(), stdio: "ignore", timeout: 45_000 });
  });
}

async function startLocalBroker(): Promise<string> {
  const status = await runScript(["status"]);
  if (status.code === 0) {
    // Already running on the test port (a developer's or an earlier run's): use it, leave it running.
    const wait = await runScript(["wait"]);
    if (wait.code !== 0) throw new Error(`the local Kafka broker at ${TEST_KAFKA_ADDRESS} is running but not ready:\n${wait.output}`);
    return TEST_KAFKA_ADDRESS;
  }
  const result = await runScript(["start"]);
  if (result.code !== 0) {
    const ci = process.env.CI === "true" ? " (CI: this fails the run; Kafka tests are never skipped)" : "";
    throw new Error(`could not start the local Kafka broker at ${TEST_KAFKA_ADDRESS}${ci}:\n${result.output.trim()}\n${howToStart()}`);
  }
  startedByThisProcess = true;
  installExitHook();
  if (process.env.KAFKA_TEST_VERBOSE) process.stdout.write(result.output);
  return TEST_KAFKA_ADDRESS;
}

/** "host:port[,host:port]" of a broker the tests may use; starts the local one if needed (allow ~60 s cold). */
export function kafkaBrokers(): Promise<string> {
  if (process.env.KAFKA_BROKERS) return Promise.resolve(process.env.KAFKA_BROKERS);
  if (!brokersPromise) {
    brokersPromise = startLocalBroker().catch((error) => {
      brokersPromise = null;
      throw error;
    });
  }
  return brokersPromise;
}

function requireLocalBroker(what: string): void {
  if (process.env.KAFKA_BROKERS) {
    throw new Error(`${what} needs the broker started by scripts/kafka-local.sh; unset KAFKA_BROKERS (${process.env.KAFKA_BROKERS}) to run it`);
  }
}

/** Stops the local test broker (SIGTERM, then SIGKILL); its data is kept for startBroker(). */
export async function stopBroker(): Promise<void> {
  requireLocalBroker("stopBroker()");
  const result = await runScript(["stop"]);
  if (result.code !== 0) throw new Error(`could not stop the local Kafka broker:\n${result.output}`);
}

/** Starts the local test broker again with its earlier data (topics, committed offsets) and waits until it is ready. */
export async function startBroker(): Promise<string> {
  requireLocalBroker("startBroker()");
  const result = await runScript(["start", "--keep-data"]);
  if (result.code !== 0) throw new Error(`could not restart the local Kafka broker:\n${result.output}\n${howToStart()}`);
  startedByThisProcess = true;
  installExitHook();
  brokersPromise = Promise.resolve(TEST_KAFKA_ADDRESS);
  return TEST_KAFKA_ADDRESS;
}

let nameCounter = 0;

/** A topic or group name no other test (or earlier run against a kept broker) has used. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${++nameCounter}`;
}

function testKafka(brokers: string): Kafka {
  return new Kafka({ clientId: "iot-anomaly-tests", brokers: brokers.split(","), logLevel: logLevel.NOTHING });
}

/** Polls the topic's metadata until each of its partitions has a leader (30 s at most). */
async function waitForLeaders(admin: Admin, topic: string, partitions: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
      const led = topics[0]?.partitions.filter((partition) => partition.leader >= 0).length ?? 0;
      if (led === partitions) return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    if (Date.now() > deadline) throw new Error(`topic ${topic}: partitions still without a leader after 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Creates a uniquely named topic with `partitions` partitions and waits for its leaders. */
export async function createTopic(prefix: string, partitions = 3): Promise<string> {
  const brokers = await kafkaBrokers();
  const topic = uniqueName(prefix);
  const admin = testKafka(brokers).admin();
  await admin.connect();
  try {
    try {
      const created = await admin.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: true });
      if (!created) throw new Error(`topic ${topic} already existed`);
    } catch (error) {
      // kafkajs' wait for the leaders gives up when the broker's metadata does not know the new topic yet (seen once
      // in a bench run on a busy machine); the topic was created, so wait for its leaders here.
      if ((error as { type?: string }).type !== "UNKNOWN_TOPIC_OR_PARTITION") throw error;
      await waitForLeaders(admin, topic, partitions);
    }
  } finally {
    await admin.disconnect();
  }
  return topic;
}

/**
 * Deletes those of `topics` that exist. For the bench, whose runs write up to a gigabyte each: kept, they took
 * 21 GB of the broker's disk in 45 minutes of benching, all of it written back to disk while later runs measured.
 */
export async function deleteTopics(topics: string[]): Promise<void> {
  const admin = testKafka(await kafkaBrokers()).admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const present = topics.filter((topic) => existing.has(topic));
    if (present.length > 0) await admin.deleteTopics({ topics: present });
  } finally {
    await admin.disconnect();
  }
}

/** Committed offset per partition of a group on a topic (-1 where nothing is committed). */
export async function committedOffsets(groupId: string, topic: string): Promise<Map<number, number>> {
  const admin = testKafka(await kafkaBrokers()).admin();
  await admin.connect();
  try {
    const [result] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return new Map(result.partitions.map(({ partition, offset }) => [partition, Number(offset)]));
  } finally {
    await admin.disconnect();
  }
}

/** Next offset to be written per partition (the high watermark). */
export async function endOffsets(topic: string): Promise<Map<number, number>> {
  const admin = testKafka(await kafkaBrokers()).admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return new Map(offsets.map(({ partition, high }) => [partition, Number(high)]));
  } finally {
    await admin.disconnect();
  }
}

/** Writes raw messages with plain kafkajs (not our producer), e.g. malformed values a foreign producer might send. */
export async function produceRaw(topic: string, messages: Message[]): Promise<void> {
  const producer = testKafka(await kafkaBrokers()).producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    await producer.send({ topic, messages, acks: -1 });
  } finally {
    await producer.disconnect();
  }
}
