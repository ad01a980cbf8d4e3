// Node-RED glue for kafka-in: the core consumer's records -> messages (output 1: events, one or a batch from one
// partition; output 2: values that are not events), and acknowledgements back in. With ackMode "input" an offset
// is committed only after a message carrying it comes back on the input (from a sink or kafka-out downstream), so a
// crash re-reads what was unfinished instead of losing it. A message that comes back from a Catch node (msg.error
// set) reports a failure instead: its events are sent again after a pause, and after "maxAttempts" go to the
// dead-letter topic (core/kafka/redelivery.ts); with no dead-letter topic they are tried until they succeed.
import type { Node, NodeAPI, NodeDef, NodeMessage, NodeMessageInFlow } from "node-red";
import type { SensorEvent } from "../../src/core/event";
import { settleWithin } from "../../src/core/kafka/client-support";
import {
  checkConsumerOptions,
  checkRedeliveryOptions,
  checkTopicName,
  deadLetterHeaders,
  decodeAgain,
  DEFAULT_MAX_ATTEMPTS,
  KafkaConfigError,
  nextRedeliveryStep,
  recordValueText,
  type CheckedRedeliveryOptions,
  type ConsumedRecord,
  type RecordOrigin,
  type KafkaClientStatus,
  type KafkaEventConsumer,
  type OutgoingMessage,
} from "../../src/core/kafka";
import { AckRegistry, type FailedEvent, type HeldEvent, type KafkaMessageMeta, type PartitionDelivery } from "../../src/runtime/kafka-acks";
import { createRepeatLimiter, lookUpBroker, numberSetting, type KafkaConnectionUser, type SharedKafkaConnection } from "../../src/runtime/kafka-connection";
import { ThrottledStatus } from "../../src/runtime/throttled-status";
import { NodeMetrics, recordKafkaFailures, recordKafkaLag, removeKafkaLag, serveMetrics, startKafkaFailureCounts } from "../../src/runtime/metrics";
import { compactCount, failed, running, shorten, warming } from "../../src/runtime/status";

type AckMode = "input" | "send";

interface KafkaInNodeDef extends NodeDef {
  broker?: string;
  /** Comma-separated topic names. */
  topics?: string;
  groupId?: string;
  fromBeginning?: boolean | string;
  batchSize?: number | string;
  maxInFlight?: number | string;
  ackMode?: AckMode;
  deadLetterTopic?: string;
  sessionTimeout?: number | string;
  /** Attempts before a failing event goes to the dead-letter topic; absent in flows saved before it existed. */
  maxAttempts?: number | string;
}

/** What comes back on the input: an acknowledgement, or (with msg.error, from a Catch node) a failure report. */
type AckMessage = NodeMessageInFlow & { kafka?: unknown; error?: unknown };

/** Events of one partition waiting to go out as one message. */
interface PendingBatch {
  delivery: PartitionDelivery;
  topic: string;
  partition: number;
  events: SensorEvent[];
  offsets: number[];
  /** Position of each event in its packed record, -1 for an event that is a record of its own. */
  indexes: number[];
  /** Whether any event of the batch comes from a packed record (then msg.kafka carries `indexes`). */
  packed: boolean;
  /** Which attempt each event is; msg.kafka carries them when some event is a retry. */
  attempts: number[];
  retried: boolean;
  keys: (string | null)[];
  timestamps: number[];
  headers: Record<string, string>[];
  held: HeldEvent[];
}

const MAX_BATCH_SIZE = 10_000;

function integerSetting(field: string, value: unknown, fallback: number, min: number, max: number): number {
  const number = numberSetting(value, fallback);
  if (typeof number !== "number" || !Number.isInteger(number) || number < min || number > max) {
    throw new KafkaConfigError(field, `"${field}" must be a whole number from ${min} to ${max} (got ${JSON.stringify(value)})`);
  }
  return number;
}

/** The text of a Catch node's msg.error ({ message, source }), naming the node that reported it. */
function errorText(error: unknown): string {
  if (typeof error !== "object" || error === null) return String(error);
  const { message, source } = error as { message?: unknown; source?: { type?: unknown; name?: unknown } };
  const text = typeof message === "string" ? message : JSON.stringify(error);
  if (!source || typeof source.type !== "string") return text;
  return `${source.type}${typeof source.name === "string" && source.name !== "" ? ` "${source.name}"` : ""}: ${text}`;
}

export = function register(RED: NodeAPI) {
  function KafkaInNode(this: Node, config: KafkaInNodeDef) {
    RED.nodes.createNode(this, config);
    const node = this;
    const status = new ThrottledStatus(node);
    const shouldWarn = createRepeatLimiter();
    const acks = new AckRegistry(node.id);
    const metrics = new NodeMetrics(node, "iot-kafka-in");
    const lagSeries = new Map<string, { topic: string; partition: number }>();
    let batch: PendingBatch | null = null;
    let flushHandle: NodeJS.Immediate | undefined;
    let closing = false;
    let received = 0;
    let invalidCount = 0;
    let kafka: SharedKafkaConnection | null = null;
    let consumer: KafkaEventConsumer | null = null;

    let batchSize = 1;
    let ackMode: AckMode = "input";
    let deadLetterTopic = "";
    let redelivery: CheckedRedeliveryOptions = checkRedeliveryOptions({ deadLetter: false });
    let groupId = "";
    try {
      const found = lookUpBroker((id) => RED.nodes.getNode(id), config.broker);
      if (found instanceof Error) throw found;
      const topics = String(config.topics ?? "")
        .split(",")
        .map((topic) => topic.trim())
        .filter((topic) => topic !== "");
      batchSize = integerSetting("batchSize", config.batchSize, 1, 1, MAX_BATCH_SIZE);
      ackMode = config.ackMode || "input";
      if (ackMode !== "input" && ackMode !== "send") throw new KafkaConfigError("ackMode", `"ackMode" must be "input" or "send" (got ${JSON.stringify(config.ackMode)})`);
      const options = checkConsumerOptions({
        groupId: String(config.groupId ?? "").trim(),
        topics,
        fromBeginning: config.fromBeginning === undefined || config.fromBeginning === "" ? true : config.fromBeginning === true || config.fromBeginning === "true",
        maxInFlight: integerSetting("maxInFlight", config.maxInFlight, 5000, 1, 1_000_000),
        sessionTimeoutMs: integerSetting("sessionTimeout", config.sessionTimeout, 10_000, 6000, 1_800_000),
      });
      deadLetterTopic = (config.deadLetterTopic ?? "").trim();
      if (deadLetterTopic !== "") {
        checkTopicName(deadLetterTopic, "deadLetterTopic");
        if (options.topics.includes(deadLetterTopic)) {
          throw new KafkaConfigError("deadLetterTopic", `"deadLetterTopic" must not be one of the topics read ("${deadLetterTopic}"): invalid values would come back forever`);
        }
      }
      redelivery = checkRedeliveryOptions({ maxAttempts: integerSetting("maxAttempts", config.maxAttempts, DEFAULT_MAX_ATTEMPTS, 1, 100), deadLetter: deadLetterTopic !== "" });
      groupId = options.groupId;
      startKafkaFailureCounts(groupId, options.topics);
      kafka = found;
      consumer = kafka.createConsumer(options, {
        log: (line, level) => (level === "error" || level === "warn" ? node.log(line) : node.debug(line)),
        connectionTrouble: (message) => {
          const state = consumer?.status.state;
          if (closing || state === "connected" || state === "paused") return;
          status.now(failed(shorten(`${RED._("iot-kafka-in.status.disconnected")}: ${message}`)));
        },
      });
    } catch (error) {
      node.error((error as Error).message);
      node.status(failed(shorten((error as Error).message)));
    }

    const user: KafkaConnectionUser = { id: node.id };

    const countsStatus = () => {
      if (!consumer || consumer.status.state !== "connected") return null;
      const partitions = consumer.assignedPartitions;
      const text = RED._("iot-kafka-in.status.running", {
        group: groupId,
        partitions,
        unit: partitions === 1 ? RED._("iot-kafka-in.status.partition") : RED._("iot-kafka-in.status.partitions"),
        count: compactCount(received),
      });
      const invalid = invalidCount > 0 ? ` · ${RED._("iot-kafka-in.status.invalid", { count: compactCount(invalidCount) })}` : "";
      const retrying = waiting > 0 ? ` · ${RED._("iot-kafka-in.status.retrying", { count: compactCount(waiting) })}` : "";
      return running(text + invalid + retrying);
    };

    function showConsumerStatus(update: KafkaClientStatus): void {
      if (closing) return;
      switch (update.state) {
        case "connected":
          status.now(countsStatus()!);
          break;
        case "connecting":
          status.now(warming(RED._("iot-kafka-in.status.connecting")));
          break;
        case "rebalancing":
          status.now(warming(RED._("iot-kafka-in.status.rebalancing")));
          break;
        case "paused":
          status.now(warming(RED._("iot-kafka-in.status.paused", { count: consumer?.inFlight ?? 0 })));
          break;
        case "disconnected": {
          const reason = update.error ? `: ${update.error.message}` : "";
          status.now(failed(shorten(RED._("iot-kafka-in.status.disconnected") + reason)));
          break;
        }
        default:
          break;
      }
    }

    function deliveryOf(record: ConsumedRecord): PartitionDelivery {
      // Fast path: the core hands out a fetched batch of one partition record after record.
      if (batch && batch.partition === record.partition && batch.topic === record.topic && batch.delivery.coreGeneration === record.generation) return batch.delivery;
      return acks.deliveryFor(record.topic, record.partition, record.generation);
    }

    function flush(): void {
      if (flushHandle !== undefined) clearImmediate(flushHandle);
      flushHandle = undefined;
      const current = batch;
      batch = null;
      if (!current || closing) return;
      const kafkaMeta: KafkaMessageMeta = {
        consumer: node.id,
        generation: current.delivery.token,
        topic: current.topic,
        partition: current.partition,
        offsets: current.offsets,
        ...(current.packed ? { indexes: current.indexes } : {}),
        ...(current.retried ? { attempts: current.attempts } : {}),
        keys: current.keys,
        timestamps: current.timestamps,
        headers: current.headers,
      };
      const msg: NodeMessage & Record<string, unknown> =
        batchSize === 1
          ? {
              topic: current.topic,
              partition: current.partition,
              payload: current.events[0],
              key: current.keys[0],
              offset: current.offsets[0],
              ...(current.packed ? { index: current.indexes[0] } : {}),
              timestamp: current.timestamps[0],
              headers: current.headers[0],
              kafka: kafkaMeta,
            }
          : { topic: current.topic, partition: current.partition, payload: current.events, kafka: kafkaMeta };
      if (ackMode === "input") acks.hold(current.delivery, current.offsets, current.held, current.packed ? current.indexes : undefined);
      if (!current.retried) received += current.events.length; // "N in" counts events read, not retries
      metrics.sent(current.events.length);
      node.send([msg, null]);
      if (ackMode === "send") for (const held of current.held) held.ack();
      status.soon(countsStatus);
    }

    // Dead-letter copies, sent together: of invalid values (acked once the broker has them, or the send failed: an
    // invalid value never holds up its partition), and of events that kept failing (`held`; acked only once the broker
    // has them, otherwise written again later: they are good events and must not be lost).
    let deadLetters: Array<{ message: OutgoingMessage; ack: () => void; failed?: FailedEvent }> = [];
    let deadLetterHandle: NodeJS.Immediate | undefined;
    const deadLetterSends = new Set<Promise<void>>();

    function flushDeadLetters(): void {
      deadLetterHandle = undefined;
      const items = deadLetters;
      deadLetters = [];
      if (items.length === 0 || !kafka) return;
      let request: Promise<unknown>;
      try {
        request = kafka.producer().sendMessages(
          deadLetterTopic,
          items.map((item) => item.message),
        );
      } catch (error) {
        request = Promise.reject(error);
      }
      const sent = request
        .then(
          () => true,
          (error: Error) => {
            const text = RED._("iot-kafka-in.errors.deadLetter", { topic: deadLetterTopic, error: error.message });
            if (shouldWarn(text)) node.error(text);
            return false;
          },
        )
        .then((written) => {
          deadLetterSends.delete(sent);
          for (const item of items) {
            if (written || item.failed === undefined) item.ack();
            else later(redelivery.maxDelayMs, () => writeDeadLetter(item.failed!, item.message));
          }
        });
      deadLetterSends.add(sent);
    }

    function queueDeadLetter(item: (typeof deadLetters)[number]): void {
      deadLetters.push(item);
      if (deadLetterHandle === undefined) deadLetterHandle = setImmediate(flushDeadLetters);
    }

    /** Output 2: a value that is not an event, or an event given up; `details` says which (field, or attempts). */
    function sendRejected(record: RecordOrigin, raw: string | null, error: string, details: Record<string, unknown>): void {
      const { topic, partition, offset, index, key } = record;
      const payload = { raw, error, ...details, topic, partition, offset: Number(offset), ...(index === undefined ? {} : { index }), key };
      node.send([null, { topic, partition, payload }]);
    }

    function handleInvalid(record: ConsumedRecord, ack: () => void): void {
      const error = record.error!;
      invalidCount++;
      metrics.failed();
      sendRejected(record, error.rawValue, error.message, { field: error.field });
      if (deadLetterTopic === "" || !kafka) {
        ack();
      } else {
        const headers = deadLetterHeaders(record, { "x-error": error.message, "x-error-field": error.field });
        if (error.rawValue === null) headers["x-value-null"] = "true";
        queueDeadLetter({ message: { key: record.key, value: error.rawValue ?? "", headers }, ack });
      }
      status.soon(countsStatus);
    }

    // Pauses before a retry or a second dead-letter write; cleared on close (the events are read again after a restart).
    const timers = new Set<NodeJS.Timeout>();
    let waiting = 0;

    function later(delayMs: number, run: () => void): void {
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (!closing) run();
      }, delayMs);
      timers.add(timer);
    }

    /** Sends failed events again, unless they were acknowledged or their partition delivered afresh meanwhile. */
    function retry(events: FailedEvent[]): void {
      waiting -= events.length;
      for (const failed of events) if (acks.isHeld(failed)) handleRecord(decodeAgain(failed.record), failed.held.ack, failed.held.attempt + 1);
      status.soon(countsStatus);
    }

    /** An event that failed `maxAttempts` times: a copy on output 2, and the dead-letter topic; acked once the topic has it. */
    function giveUp(failed: FailedEvent, reason: string): void {
      const { record, held } = failed;
      const raw = recordValueText(record);
      metrics.failed();
      sendRejected(record, raw, reason, { attempts: held.attempt });
      const headers = deadLetterHeaders(record, { "x-error": reason, "x-attempts": String(held.attempt) });
      writeDeadLetter(failed, { key: record.key, value: raw ?? "", headers });
    }

    function writeDeadLetter(failed: FailedEvent, message: OutgoingMessage): void {
      if (acks.isHeld(failed)) queueDeadLetter({ message, ack: failed.held.ack, failed });
    }

    /** A message came back from a Catch node: its events' current attempt failed. */
    function handleFailure(msg: AckMessage): void {
      const events = acks.fail(msg.kafka);
      if (events.length === 0) return;
      const reason = errorText(msg.error);
      const retries = new Map<number, FailedEvent[]>();
      let deadLettered = 0;
      for (const failed of events) {
        const step = nextRedeliveryStep(redelivery, failed.held.attempt);
        if (step.action === "dead-letter") {
          giveUp(failed, reason);
          deadLettered++;
          continue;
        }
        const group = retries.get(step.delayMs);
        if (group) group.push(failed);
        else retries.set(step.delayMs, [failed]);
      }
      const { topic, partition } = events[0].record;
      recordKafkaFailures(groupId, topic, events.length - deadLettered, deadLettered);
      for (const [delayMs, group] of retries) {
        waiting += group.length;
        later(delayMs, () => retry(group));
        const text = RED._("iot-kafka-in.errors.retrying", { count: group.length, topic, partition, attempt: group[0].held.attempt, error: reason, seconds: delayMs / 1000 });
        if (shouldWarn(text)) node.warn(text);
      }
      if (deadLettered > 0) node.error(RED._("iot-kafka-in.errors.gaveUp", { count: deadLettered, topic, partition, attempts: redelivery.maxAttempts, error: reason, deadLetterTopic }));
      status.soon(countsStatus);
    }

    function handleRecord(record: ConsumedRecord, ack: () => void, attempt = 1): void {
      // While closing nothing goes out and nothing is acked: it is read again after the restart.
      if (closing) return;
      if (attempt === 1) metrics.received(1);
      if (!record.ok) return handleInvalid(record, ack);
      const delivery = deliveryOf(record);
      // A retry goes out as a message of its own, so one bad event does not take its batch-mates to the dead letters.
      if (batch && (attempt > 1 || batch.delivery !== delivery || batch.partition !== record.partition || batch.topic !== record.topic)) flush();
      if (!batch) {
        batch = {
          delivery,
          topic: record.topic,
          partition: record.partition,
          events: [],
          offsets: [],
          indexes: [],
          packed: false,
          attempts: [],
          retried: false,
          keys: [],
          timestamps: [],
          headers: [],
          held: [],
        };
      }
      batch.events.push(record.event);
      batch.offsets.push(Number(record.offset));
      if (record.index === undefined) batch.indexes.push(-1);
      else {
        batch.indexes.push(record.index);
        batch.packed = true;
      }
      batch.keys.push(record.key);
      batch.timestamps.push(Number(record.timestamp));
      batch.headers.push(record.headers);
      batch.attempts.push(attempt);
      if (attempt > 1) batch.retried = true;
      batch.held.push({ ack, value: record.value, attempt, failed: false });
      if (attempt > 1 || batch.events.length >= batchSize) flush();
      // The core hands out a fetched batch synchronously; what is left when it pauses or ends goes out next tick.
      else if (flushHandle === undefined) flushHandle = setImmediate(flush);
    }

    if (kafka && consumer) {
      const client = consumer;
      kafka.register(user);
      status.now(warming(RED._("iot-kafka-in.status.connecting")));
      client.on("status", showConsumerStatus);
      client.on("lag", ({ topic, partition, lag }) => {
        lagSeries.set(`${topic}\u0000${partition}`, { topic, partition });
        recordKafkaLag(groupId, topic, partition, lag);
      });
      client.on("assignment", (assignment) => {
        // Partitions that moved to another member are that member's to report: a stale series would double-count.
        for (const [key, { topic, partition }] of lagSeries) {
          if (assignment[topic]?.includes(partition)) continue;
          removeKafkaLag(groupId, topic, partition);
          lagSeries.delete(key);
        }
      });
      // A message that never came back holds its partition's commits: say which one, once per stall.
      client.on("stalled", ({ topic, partition, offset, inFlight, forMs }) => {
        if (!closing) node.warn(RED._("iot-kafka-in.errors.stalled", { topic, partition, offset, count: inFlight, seconds: Math.round(forMs / 1000) }));
      });
      client.on("problem", ({ context, error }) => {
        if (closing) return;
        const text = RED._("iot-kafka-in.errors.problem", { context, error: error.message });
        if (shouldWarn(text)) node.warn(text);
      });
      client.start(handleRecord).catch((error: Error) => node.error(error.message));
    }

    node.on("input", (msg: AckMessage, _send, done) => {
      // Only this node's messages of a partition's current delivery count; others are ignored.
      if (ackMode === "input") {
        if (msg.error !== undefined && msg.error !== null) handleFailure(msg);
        else acks.acknowledge(msg.kafka);
      }
      done();
    });

    node.on("close", (removed: boolean, done: () => void) => {
      closing = true;
      status.stop();
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      if (flushHandle !== undefined) clearImmediate(flushHandle);
      if (deadLetterHandle !== undefined) {
        clearImmediate(deadLetterHandle);
        flushDeadLetters();
      }
      batch = null;
      const finish = async () => {
        if (consumer) {
          // Commits what was acknowledged, then leaves the group (bounded inside: ~10 s with a dead broker).
          // Acks cannot reach a closing node, so waiting long for them would only slow every redeploy.
          await settleWithin(consumer.stop({ drainTimeoutMs: ackMode === "input" ? 200 : 0 }), 12_000);
          kafka?.releaseConsumer(consumer);
        }
        await settleWithin(Promise.all([...deadLetterSends]), 2000);
        acks.clear();
        // Another member of the group reports these partitions from now on.
        for (const { topic, partition } of lagSeries.values()) removeKafkaLag(groupId, topic, partition);
        if (removed) metrics.remove();
        if (kafka) await kafka.deregister(user);
      };
      finish().then(
        () => done(),
        (error: Error) => {
          node.warn(error.message);
          done();
        },
      );
    });
  }

  RED.nodes.registerType("iot-kafka-in", KafkaInNode);
  serveMetrics(RED);
};
