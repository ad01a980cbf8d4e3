// Helpers for the Kafka end-to-end tests and bench: the shipped Bronze/Silver/Gold examples loaded and rewritten to
// unique topics and groups (tests never collide, not even with an earlier run against a kept broker), real Node-RED
// runtimes started with KAFKA_BROKERS in their environment and killed at the end, and outcome probes: rows in the
// SQLite file, messages on a topic, members of a consumer group.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Kafka, logLevel, type IHeaders, type KafkaMessage } from "kafkajs";
import { repositoryRoot, startNodeRed, type RunningNodeRed } from "../../scripts/node-red-runtime";
import { committedOffsets, createTopic, endOffsets, kafkaBrokers, uniqueName } from "./kafka-broker";

export interface FlowNode {
  id: string;
  type: string;
  z?: string;
  wires?: string[][];
  [property: string]: unknown;
}

export type ExampleName = "bronze" | "silver" | "gold" | "medallion";

/** Tab ids of the three layers (the same in the single-layer examples and in medallion.json). */
export const TABS = { bronze: "b000000000000001", silver: "c000000000000001", gold: "d000000000000001" } as const;
export type Layer = keyof typeof TABS;

/** The names the shipped examples use; tests replace them with unique ones. */
export const SHIPPED_NAMES = {
  raw: "iot.raw",
  scored: "iot.scored",
  anomalies: "iot.anomalies",
  deadLetter: "iot.raw.dlq",
  silverGroup: "iot-silver",
  goldGroup: "iot-gold",
} as const;
export type PipelineNames = { [K in keyof typeof SHIPPED_NAMES]: string };

export function loadExample(name: ExampleName): FlowNode[] {
  return JSON.parse(readFileSync(join(repositoryRoot, "examples", `${name}.json`), "utf8")) as FlowNode[];
}

/** The medallion example reduced to some of its tabs (config nodes, which have no tab, always stay). */
export function medallionLayers(...layers: Layer[]): FlowNode[] {
  const keep = new Set<string>(layers.map((layer) => TABS[layer]));
  return loadExample("medallion").filter((node) => (node.type === "tab" ? keep.has(node.id) : node.z === undefined || keep.has(node.z)));
}

/**
 * Fresh topics (created through the admin client with `partitions` partitions, so a test never depends on the
 * broker's auto-creation) and fresh group ids. The dead-letter topic is left to auto-creation on first use.
 */
export async function createPipelineNames(partitions = 3): Promise<PipelineNames> {
  const [raw, scored, anomalies] = await Promise.all([createTopic("iot.raw", partitions), createTopic("iot.scored", partitions), createTopic("iot.anomalies", partitions)]);
  return { raw, scored, anomalies, deadLetter: uniqueName("iot.raw.dlq"), silverGroup: uniqueName("iot-silver"), goldGroup: uniqueName("iot-gold") };
}

function renameTopics(value: unknown, names: PipelineNames): string {
  const text = String(value ?? "");
  return text
    .split(",")
    .map((topic) => {
      const trimmed = topic.trim();
      const key = (Object.keys(SHIPPED_NAMES) as Array<keyof typeof SHIPPED_NAMES>).find((name) => SHIPPED_NAMES[name] === trimmed);
      return key ? names[key] : trimmed;
    })
    .join(",");
}

export interface FlowChanges {
  names?: PipelineNames;
  /** Merged into every sensor-sim. */
  sim?: Record<string, unknown>;
  /** Merged into every kafka-in. */
  kafkaIn?: Record<string, unknown>;
  /** Merged into every kafka-out. */
  kafkaOut?: Record<string, unknown>;
  /** Merged into every sqlite-sink. */
  sink?: Record<string, unknown>;
  /** Debug nodes also print to the runtime's log (the tests read it), or are switched off entirely. */
  debug?: "console" | "off";
}

/** A copy of the flow with topics and groups renamed and node settings overridden. */
export function configureFlow(flow: FlowNode[], changes: FlowChanges): FlowNode[] {
  const copy = JSON.parse(JSON.stringify(flow)) as FlowNode[];
  const groups: Record<string, string> = changes.names ? { [SHIPPED_NAMES.silverGroup]: changes.names.silverGroup, [SHIPPED_NAMES.goldGroup]: changes.names.goldGroup } : {};
  for (const node of copy) {
    switch (node.type) {
      case "iot-kafka-in":
        if (changes.names) {
          node.topics = renameTopics(node.topics, changes.names);
          node.groupId = groups[String(node.groupId)] ?? node.groupId;
          if (node.deadLetterTopic) node.deadLetterTopic = renameTopics(node.deadLetterTopic, changes.names);
        }
        Object.assign(node, changes.kafkaIn);
        break;
      case "iot-kafka-out":
        if (changes.names) node.topic = renameTopics(node.topic, changes.names);
        Object.assign(node, changes.kafkaOut);
        break;
      case "iot-sensor-sim":
        Object.assign(node, changes.sim);
        break;
      case "iot-sqlite-sink":
        Object.assign(node, changes.sink);
        break;
      case "debug":
        if (changes.debug === "console") node.console = true;
        if (changes.debug === "off") node.active = false;
        break;
      default:
        break;
    }
  }
  return copy;
}

/** The one node of a type (on a tab, if given); throws when there is not exactly one. */
export function nodeOf(flow: FlowNode[], type: string, layer?: Layer): FlowNode {
  const found = flow.filter((node) => node.type === type && (layer === undefined || node.z === TABS[layer]));
  if (found.length !== 1) throw new Error(`expected one ${type}${layer ? ` on the ${layer} tab` : ""}, found ${found.length}`);
  return found[0];
}

/** Real Node-RED runtimes for one test file: each gets KAFKA_BROKERS and its own state directory; all die at the end. */
export class Runtimes {
  private readonly running = new Set<RunningNodeRed>();
  private readonly dirs: string[] = [];

  /** A fresh user directory, removed by cleanup(). */
  userDir(label: string): string {
    const dir = mkdtempSync(join(tmpdir(), `iot-anomaly-${label}-`));
    this.dirs.push(dir);
    return dir;
  }

  /** Starts a runtime on `userDir` (flows omitted: the ones already there, as after a crash). */
  async start(userDir: string, flows?: FlowNode[], env: Record<string, string> = {}): Promise<RunningNodeRed> {
    const stateDir = join(userDir, "iot-anomaly-state");
    mkdirSync(stateDir, { recursive: true });
    const runtime = await startNodeRed({
      userDir,
      flows,
      env: { KAFKA_BROKERS: await kafkaBrokers(), IOT_ANOMALY_STATE_DIR: stateDir, NODE_RED_LOG_LEVEL: "info", ...env },
      echo: process.env.IOT_ANOMALY_ECHO_RUNTIME === "1",
    });
    this.running.add(runtime);
    void new Promise((resolve) => runtime.child.once("exit", resolve)).then(() => this.running.delete(runtime));
    return runtime;
  }

  /**
   * SIGKILL every runtime still running, then remove the user directories. A runtime started with --cpu-prof in
   * NODE_RED_NODE_ARGS is stopped gracefully instead, as Node.js writes the profile only on a normal exit.
   */
  async cleanup(): Promise<void> {
    const profiling = /--(cpu|heap)-prof/.test(process.env.NODE_RED_NODE_ARGS ?? "");
    await Promise.all([...this.running].map((runtime) => (profiling ? runtime.stop() : runtime.kill())));
    this.running.clear();
    for (const dir of this.dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  }
}

// ---- SQLite probes -------------------------------------------------------------------------------------------

/** Rows in the events table; 0 while the sink has not created the file or table. */
export function countRows(databasePath: string, where = ""): number {
  let database: Database.Database | undefined;
  try {
    database = new Database(databasePath, { readonly: true, fileMustExist: true });
    database.pragma("busy_timeout = 2000");
    return (database.prepare(`SELECT count(*) AS n FROM events ${where}`).get() as { n: number }).n;
  } catch (error) {
    const text = (error as Error).message;
    if (/no such table|unable to open|does not exist|SQLITE_CANTOPEN/i.test(text) || (error as { code?: string }).code === "SQLITE_CANTOPEN") return 0;
    throw error;
  } finally {
    database?.close();
  }
}

export function queryRows<T>(databasePath: string, sql: string, ...parameters: unknown[]): T[] {
  const database = new Database(databasePath, { readonly: true, fileMustExist: true });
  try {
    database.pragma("busy_timeout = 2000");
    return database.prepare(sql).all(...parameters) as T[];
  } finally {
    database.close();
  }
}

export const POLL_INTERVAL_MS = 200;

/** Polls `probe` every POLL_INTERVAL_MS until `done(value)` or the timeout; returns the last value either way. */
export async function pollUntil<T>(probe: () => T | Promise<T>, done: (value: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await probe();
  while (!done(value) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
    value = await probe();
  }
  return value;
}

/** Waits until the events table holds at least `expected` rows (or the timeout); returns the count. */
export function waitForRows(databasePath: string, expected: number, timeoutMs: number): Promise<number> {
  return pollUntil(
    () => countRows(databasePath),
    (count) => count >= expected,
    timeoutMs,
  );
}

/** The last lines of each runtime's log, for an assertion message. */
export function logTails(runtimes: Record<string, RunningNodeRed | undefined>, characters = 2500): string {
  return Object.entries(runtimes)
    .map(([label, runtime]) => `--- ${label} log (last ${characters} chars) ---\n${runtime ? runtime.log().slice(-characters) : "(not started)"}`)
    .join("\n");
}

// ---- Kafka probes --------------------------------------------------------------------------------------------

function adminKafka(brokers: string): Kafka {
  return new Kafka({ clientId: "iot-anomaly-e2e", brokers: brokers.split(","), logLevel: logLevel.NOTHING });
}

/** Records on a topic (high minus low watermark over all partitions; a packed record counts once); 0 if the topic does not exist yet. */
export async function topicMessageCount(topic: string): Promise<number> {
  const admin = adminKafka(await kafkaBrokers()).admin();
  await admin.connect();
  try {
    const topics = await admin.listTopics();
    if (!topics.includes(topic)) return 0;
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets.reduce((sum, { high, low }) => sum + Number(high) - Number(low), 0);
  } finally {
    await admin.disconnect();
  }
}

export interface GroupState {
  state: string;
  members: number;
  /** Partitions assigned to each member (from the members' assignment), by member id. */
  assignments: number[][];
}

/** State and members of a consumer group (assignment decoded by kafkajs' own protocol helper). */
export async function describeGroup(groupId: string): Promise<GroupState> {
  const admin = adminKafka(await kafkaBrokers()).admin();
  await admin.connect();
  try {
    const { groups } = await admin.describeGroups([groupId]);
    const group = groups[0];
    const { AssignerProtocol } = await import("kafkajs");
    const assignments = group.members.map((member) => {
      if (!member.memberAssignment || member.memberAssignment.length === 0) return [];
      const decoded = AssignerProtocol.MemberAssignment.decode(member.memberAssignment);
      return Object.values(decoded?.assignment ?? {}).flat();
    });
    return { state: group.state, members: group.members.length, assignments };
  } finally {
    await admin.disconnect();
  }
}

export interface ReadMessage {
  partition: number;
  offset: number;
  /** Record timestamp (ms): the producer's clock when it sent the message. */
  timestamp: number;
  key: string | null;
  value: string | null;
  headers: Record<string, string>;
}

function headerText(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    out[name] = Array.isArray(value) ? value.map(String).join(",") : String(value);
  }
  return out;
}

/**
 * Runs plain kafkajs (not our consumer) in a fresh group on `topic` from the beginning, handing it every message until
 * `handle` returns true; resolves true then, or false when `timeoutMs` ran out first.
 */
async function consumeFromBeginning(topic: string, group: string, handle: (partition: number, message: KafkaMessage) => boolean, timeoutMs: number): Promise<boolean> {
  const consumer = adminKafka(await kafkaBrokers()).consumer({ groupId: uniqueName(group), sessionTimeout: 10_000, maxWaitTimeInMs: 100 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    let finish: () => void = () => undefined;
    const complete = new Promise<boolean>((resolve) => (finish = () => resolve(true)));
    await consumer.run({
      eachMessage: async ({ partition, message }: { partition: number; message: KafkaMessage }) => {
        if (handle(partition, message)) finish();
      },
    });
    return await Promise.race([complete, new Promise<boolean>((resolve) => setTimeout(() => resolve(false), timeoutMs))]);
  } finally {
    await consumer.disconnect();
  }
}

/** Reads a whole topic from the beginning until `expected` messages arrived (or the time is up: fewer come back). */
export async function readTopic(topic: string, expected: number, timeoutMs = 30_000): Promise<ReadMessage[]> {
  const messages: ReadMessage[] = [];
  await consumeFromBeginning(
    topic,
    "e2e-reader",
    (partition, message) => {
      messages.push({
        partition,
        offset: Number(message.offset),
        timestamp: Number(message.timestamp),
        key: message.key === null ? null : message.key.toString(),
        value: message.value === null ? null : message.value.toString(),
        headers: headerText(message.headers),
      });
      return messages.length >= expected;
    },
    timeoutMs,
  );
  return messages;
}

/**
 * Waits until the group has committed every partition of the topic up to its end (a restart would read nothing
 * again); returns the offsets committed and the end offsets, as "partition:offset" lists, for the assertion.
 */
export async function waitForCommitsToEnd(groupId: string, topic: string, timeoutMs = 15_000): Promise<{ committed: string; ends: string }> {
  const describe = (offsets: Map<number, number>) => [...offsets].sort(([a], [b]) => a - b).map(([partition, offset]) => `${partition}:${offset}`).join(" ");
  return pollUntil(
    async () => ({ committed: describe(await committedOffsets(groupId, topic)), ends: describe(await endOffsets(topic)) }),
    ({ committed, ends }) => committed === ends,
    timeoutMs,
  );
}

export interface TopicEvent {
  partition: number;
  offset: number;
  /** Position in a packed record (a JSON-array value); -1 for a record of one event. */
  index: number;
  key: string | null;
  event: { eventId: string; sensorId: string; timestamp: number } & Record<string, unknown>;
}

/**
 * Every event on a topic as it stands now (up to the end offsets at the call), one-event and packed records alike,
 * read with plain kafkajs in a fresh group. Topic counts in events, where topicMessageCount counts records.
 */
export async function readTopicEvents(topic: string, timeoutMs = 30_000): Promise<TopicEvent[]> {
  const kafka = adminKafka(await kafkaBrokers());
  const admin = kafka.admin();
  await admin.connect();
  let ends: Map<number, number>;
  try {
    if (!(await admin.listTopics()).includes(topic)) return [];
    ends = new Map((await admin.fetchTopicOffsets(topic)).map(({ partition, high }) => [partition, Number(high)]));
  } finally {
    await admin.disconnect();
  }
  const events: TopicEvent[] = [];
  const waiting = new Set([...ends].filter(([, end]) => end > 0).map(([partition]) => partition));
  if (waiting.size === 0) return events;
  const completed = await consumeFromBeginning(
    topic,
    "e2e-events",
    (partition, message) => {
      const offset = Number(message.offset);
      if (offset >= ends.get(partition)!) return false;
      const key = message.key === null ? null : message.key.toString();
      const value = JSON.parse(message.value!.toString()) as TopicEvent["event"] | TopicEvent["event"][];
      if (Array.isArray(value)) value.forEach((event, index) => events.push({ partition, offset, index, key, event }));
      else events.push({ partition, offset, index: -1, key, event: value });
      if (offset === ends.get(partition)! - 1) waiting.delete(partition);
      return waiting.size === 0;
    },
    timeoutMs,
  );
  if (!completed) throw new Error(`reading ${topic}: partitions ${[...waiting].join(", ")} not read to their end within ${timeoutMs} ms`);
  return events;
}

export { kafkaBrokers, uniqueName, createTopic };
