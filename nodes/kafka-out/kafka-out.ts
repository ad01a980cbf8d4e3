// Node-RED glue for kafka-out: each message's events -> Kafka messages on the shared producer of the kafka-broker
// config node. Sends go out one request at a time, in arrival order (a sensor's events keep their order even when
// a request is retried); messages that arrive meanwhile are coalesced into the next request. done() and the output
// come only after the broker acknowledged, so the output can serve as an acknowledgement for a kafka-in.
import type { Node, NodeAPI, NodeDef, NodeMessage, NodeMessageInFlow } from "node-red";
import { EventValidationError, isFlaggedByAnyDetector } from "../../src/core/event";
import { checkKeyField, checkSendOptions, checkTopicName, eventToMessage, type Acks, type Compression, type KafkaClientStatus, type OutgoingMessage } from "../../src/core/kafka";
import { readEventMessage, reportInvalidInput } from "../../src/runtime/event-message";
import { lookUpBroker, type KafkaConnectionUser, type SharedKafkaConnection } from "../../src/runtime/kafka-connection";
import { ThrottledStatus } from "../../src/runtime/throttled-status";
import { compactCount, failed, idle, running, shorten, warming } from "../../src/runtime/status";
import { NodeMetrics, serveMetrics } from "../../src/runtime/metrics";

interface KafkaOutNodeDef extends NodeDef {
  broker?: string;
  /** Empty: msg.topic decides. */
  topic?: string;
  /** Event field whose value is the message key ("" = no key). */
  keyField?: string;
  acks?: Acks;
  compression?: Compression;
  /** "all" (default) or "flagged": only events a detector flagged; a message with none passes straight through. */
  select?: string;
  /** "event" (default): one event per Kafka record; "packed": one JSON-array record per partition and request. */
  records?: string;
}

type OutMessage = NodeMessageInFlow & { key?: unknown; headers?: unknown; sent?: { topic: string; count: number } };

interface QueuedSend {
  msg: OutMessage;
  send: (msg: NodeMessage) => void;
  done: (error?: Error) => void;
  topic: string;
  messages: OutgoingMessage[];
  /** Invalid events of a batch: the valid ones are sent, then this error is reported. */
  invalid: Error | null;
}

/** Messages coalesced into one request at most (the core still splits a request by bytes). */
const MAX_MESSAGES_PER_REQUEST = 20_000;
/** Events waiting for the broker before new messages are refused: bounds memory while the broker is away. */
const MAX_QUEUED_MESSAGES = 200_000;
/** Close waits this long for queued and in-flight sends; then the producer may take ~7 s to let go (Node-RED allows 15 s). */
const CLOSE_WAIT_MS = 5_000;
const CLOSED_BEFORE_SENT = "kafka-out closed before the message was sent to Kafka";

/** msg.headers as Kafka headers: text values as they are, numbers and booleans as text; anything else is an error. */
function readHeaders(value: unknown): Record<string, string> | undefined | Error {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "object" || Array.isArray(value)) return new EventValidationError("msg.headers", `"msg.headers" must be an object of name: text`);
  const headers: Record<string, string> = {};
  let any = false;
  for (const [name, item] of Object.entries(value as Record<string, unknown>)) {
    if (typeof item === "string") headers[name] = item;
    else if (typeof item === "number" || typeof item === "boolean") headers[name] = String(item);
    else if (item === undefined || item === null) continue;
    else return new EventValidationError(`msg.headers.${name}`, `header "${name}" must be text (got ${Array.isArray(item) ? "an array" : typeof item})`);
    any = true;
  }
  return any ? headers : undefined;
}

/** msg.key as the key of every message of this send, or undefined when not given. */
function readKey(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  return undefined;
}

export = function register(RED: NodeAPI) {
  function KafkaOutNode(this: Node, config: KafkaOutNodeDef) {
    RED.nodes.createNode(this, config);
    const node = this;
    const status = new ThrottledStatus(node);
    const metrics = new NodeMetrics(node, "iot-kafka-out");
    const queue: QueuedSend[] = [];
    let queuedMessages = 0;
    let sending: Promise<void> | null = null;
    let closing = false;
    let sentCount = 0;
    let connected = false;
    let kafka: SharedKafkaConnection | null = null;
    let configError: Error | null = null;

    const topic = (config.topic ?? "").trim();
    let acks: Acks = "all";
    let compression: Compression = "none";
    let keyField: string | null = "sensorId";
    const onlyFlagged = config.select === "flagged";
    const pack = config.records === "packed";
    try {
      if (config.select && config.select !== "all" && config.select !== "flagged") {
        throw new EventValidationError("select", `"select" must be "all" or "flagged" (got ${JSON.stringify(config.select)})`);
      }
      if (config.records && config.records !== "event" && config.records !== "packed") {
        throw new EventValidationError("records", `"records" must be "event" or "packed" (got ${JSON.stringify(config.records)})`);
      }
      const found = lookUpBroker((id) => RED.nodes.getNode(id), config.broker);
      if (found instanceof Error) throw found;
      if (topic !== "") checkTopicName(topic, "topic");
      keyField = checkKeyField(config.keyField ?? "sensorId");
      ({ acks, compression } = checkSendOptions({ acks: config.acks || "all", compression: config.compression || "none" }));
      kafka = found;
    } catch (error) {
      configError = error as Error;
      node.error(configError.message);
      node.status(failed(shorten(configError.message)));
    }

    const countsStatus = () => (connected ? running(RED._("iot-kafka-out.status.sent", { count: compactCount(sentCount) })) : null);

    const user: KafkaConnectionUser = {
      id: node.id,
      producerStatus: (update: KafkaClientStatus) => showProducerStatus(update),
    };

    function showProducerStatus(update: KafkaClientStatus): void {
      if (closing) return;
      connected = update.state === "connected";
      switch (update.state) {
        case "connected":
          status.now(countsStatus()!);
          break;
        case "connecting":
          status.now(warming(RED._("iot-kafka-out.status.connecting")));
          break;
        case "disconnected": {
          const reason = update.error ? `: ${update.error.message}` : "";
          status.now(failed(shorten(RED._("iot-kafka-out.status.disconnected") + reason)));
          break;
        }
        default:
          status.now(idle(RED._("iot-kafka-out.status.stopped")));
      }
    }

    if (kafka) kafka.register(user);

    /** Sends the queue's head (and the messages behind it for the same topic) as one request; repeats until empty. */
    function pump(): void {
      if (sending || queue.length === 0 || !kafka) return;
      const first = queue[0];
      let count = 0;
      let take = 0;
      while (take < queue.length && queue[take].topic === first.topic && (take === 0 || count + queue[take].messages.length <= MAX_MESSAGES_PER_REQUEST)) {
        count += queue[take].messages.length;
        take++;
      }
      const items = queue.splice(0, take);
      queuedMessages -= count;
      const messages = items.length === 1 ? first.messages : items.flatMap((item) => item.messages);
      const settle = (item: QueuedSend, error: Error | null) => {
        try {
          if (error) return item.done(error);
          item.msg.sent = { topic: item.topic, count: item.messages.length };
          item.send(item.msg);
          if (item.invalid) reportInvalidInput(node, item.invalid, item.done);
          else item.done();
        } catch (failure) {
          // A throwing downstream hook must not leave the other messages of the request without done().
          node.error(failure as Error);
        }
      };
      if (count === 0) {
        // Only messages with nothing to write (select "flagged"): they pass on in their place in the queue.
        for (const item of items) settle(item, null);
        return pump();
      }
      let request: Promise<unknown>;
      try {
        request = kafka.producer().sendMessages(first.topic, messages, { acks, compression, pack });
      } catch (error) {
        request = Promise.reject(error);
      }
      sending = request
        .then(
          () => {
            sentCount += count;
          metrics.sent(count);
            for (const item of items) settle(item, null);
            if (!items.some((item) => item.invalid)) status.soon(countsStatus);
          },
          (error: Error) => {
            if (!closing) status.now(failed(shorten(error.message)));
            for (const item of items) settle(item, error);
          },
        )
        .finally(() => {
          sending = null;
          pump();
        });
    }

    node.on("input", (msg: OutMessage, send, trackedDone) => {
      const done = metrics.track(trackedDone);
      if (!kafka) return done(configError ?? new Error("no Kafka connection"));
      if (closing) return done(new Error(CLOSED_BEFORE_SENT));
      const target = topic || (typeof msg.topic === "string" ? msg.topic.trim() : "");
      try {
        if (target === "") throw new EventValidationError("topic", `no topic: set "topic" in the node, or send msg.topic`);
        if (!topic) checkTopicName(target, "msg.topic");
      } catch (error) {
        return reportInvalidInput(node, error as Error, done);
      }
      const { events: valid, error } = readEventMessage(msg);
      metrics.received(valid.length);
      if (valid.length === 0) return reportInvalidInput(node, error ?? new EventValidationError("payload", "no events to send"), done);
      // With select "flagged" a message may have nothing to write; it is still queued so that it goes on in order
      // (downstream, a kafka-in's acknowledgement waits for it).
      const events = onlyFlagged ? valid.filter(isFlaggedByAnyDetector) : valid;
      const headers = readHeaders(msg.headers);
      if (headers instanceof Error) return reportInvalidInput(node, headers, done);
      if (queuedMessages + events.length > MAX_QUEUED_MESSAGES) {
        return done(new Error(`kafka-out is falling behind: ${queuedMessages} messages already wait for the broker; message refused`));
      }
      const key = readKey(msg.key);
      const encode = { keyField, headers };
      const messages = new Array<OutgoingMessage>(events.length);
      for (let index = 0; index < events.length; index++) {
        const message = eventToMessage(events[index], encode);
        if (key !== undefined) message.key = key;
        messages[index] = message;
      }
      queue.push({ msg, send, done, topic: target, messages, invalid: error });
      queuedMessages += messages.length;
      pump();
    });

    node.on("close", (removed: boolean, done: () => void) => {
      closing = true;
      status.stop();
      if (removed) metrics.remove();
      const finish = () => {
        // Whatever could not be sent in time is reported, not silently dropped.
        for (const item of queue.splice(0)) item.done(new Error(CLOSED_BEFORE_SENT));
        queuedMessages = 0;
        if (!kafka) return done();
        kafka.deregister(user).then(
          () => done(),
          () => done(),
        );
      };
      // Without a connection the queue cannot drain: do not hold up the redeploy for it.
      const drained = () => (!sending && queue.length === 0) || !connected;
      if (drained()) return finish();
      const deadline = Date.now() + CLOSE_WAIT_MS;
      const check = () => {
        if (drained() || Date.now() >= deadline) return finish();
        setTimeout(check, 20);
      };
      check();
    });
  }

  RED.nodes.registerType("iot-kafka-out", KafkaOutNode);
  serveMetrics(RED);
};
