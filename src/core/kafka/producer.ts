// Sends sensor events to Kafka in batches through kafkajs: one `send` per array of events (a node's msg.payload),
// which is what makes the difference between ~1.5k and ~50k msgs/s (shared NOTES). Connects with retry and reports
// connected / disconnected through "status" events; errors come back as rejected promises, never thrown at Node-RED.
import { CompressionTypes, Kafka, Partitioners, type Producer, type RecordMetadata } from "kafkajs";
import type { SensorEvent } from "../event";
import { backoffDelay, checkTopicName, KafkaConfigError, type KafkaConnection, type KafkaConnectionSettings } from "./connection-options";
import { isConnectionError, isRetriableKafkaError, KafkaClientClosedError, rootMessage, settleWithin, Sleeper, StatusEmitter, toConnection } from "./client-support";
import { checkKeyField, eventToMessage } from "./serialisation";
import type { Acks, Compression, EventProducer, SendOptions, SendResult } from "./types";

export interface ProducerOptions {
  /** How long a `send` waits for a (re)connection before failing (default 30000 ms). */
  connectWaitMs?: number;
  /** Let the broker create a missing topic on first send, if the broker allows it (default true, as kafkajs). */
  allowAutoTopicCreation?: boolean;
}

/** A batch that could not be written. `retriable`: the same send may succeed later (broker down, leader moving). */
export class KafkaSendError extends Error {
  readonly topic: string;
  readonly count: number;
  readonly retriable: boolean;
  readonly cause: unknown;
  constructor(topic: string, count: number, cause: unknown) {
    super(`could not send ${count} event${count === 1 ? "" : "s"} to topic "${topic}": ${rootMessage(cause)}`);
    this.name = "KafkaSendError";
    this.topic = topic;
    this.count = count;
    this.retriable = isRetriableKafkaError(cause);
    this.cause = cause;
  }
}

const ACKS: Record<Acks, number> = { all: -1, leader: 1, none: 0 };
const COMPRESSION: Record<Compression, CompressionTypes> = { gzip: CompressionTypes.GZIP, none: CompressionTypes.None };

/** Checks send options once (a node calls this at construction) and returns them complete. */
export function checkSendOptions(options: SendOptions = {}): Required<Omit<SendOptions, "headers">> & Pick<SendOptions, "headers"> {
  const acks = options.acks ?? "all";
  if (!(acks in ACKS)) throw new KafkaConfigError("acks", `"acks" must be "all", "leader" or "none" (got ${JSON.stringify(options.acks)})`);
  const compression = options.compression ?? "none";
  if (!(compression in COMPRESSION)) throw new KafkaConfigError("compression", `"compression" must be "gzip" or "none" (got ${JSON.stringify(options.compression)})`);
  const keyField = checkKeyField(options.keyField);
  if (options.headers !== undefined) {
    if (options.headers === null || typeof options.headers !== "object") throw new KafkaConfigError("headers", `"headers" must be an object of name: text`);
    for (const [name, value] of Object.entries(options.headers)) {
      if (typeof value !== "string") throw new KafkaConfigError(`headers.${name}`, `header "${name}" must be text (got ${typeof value})`);
    }
  }
  return { acks, compression, keyField, headers: options.headers };
}

export class KafkaEventProducer extends StatusEmitter implements EventProducer {
  readonly connection: KafkaConnection;
  private readonly producer: Producer;
  private readonly connectWaitMs: number;
  private readonly sleeper = new Sleeper();
  private connecting: Promise<void> | null = null;
  private connected = false;
  private closed = false;

  constructor(settings: KafkaConnectionSettings | KafkaConnection, options: ProducerOptions = {}) {
    super();
    this.connection = toConnection(settings);
    this.connectWaitMs = options.connectWaitMs ?? 30_000;
    const kafka = new Kafka(this.connection.kafkaConfig);
    this.producer = kafka.producer({
      // kafkajs' Java-compatible murmur2 partitioner: a key lands on the same partition as with Java clients.
      createPartitioner: Partitioners.DefaultPartitioner,
      allowAutoTopicCreation: options.allowAutoTopicCreation ?? true,
      retry: this.connection.kafkaConfig.retry,
    });
    this.producer.on(this.producer.events.DISCONNECT, () => {
      this.connected = false;
      if (!this.closed) this.setStatus("disconnected");
    });
  }

  /** Resolves true once connected, or false if `close()` came first. Never rejects: a Node-RED node may fire and forget it. */
  connect(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    if (this.connected) return Promise.resolve(true);
    if (!this.connecting) {
      this.connecting = this.connectWithRetry().finally(() => {
        this.connecting = null;
      });
    }
    return this.connecting.then(
      () => true,
      () => false,
    );
  }

  private async connectWithRetry(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new KafkaClientClosedError("connect");
      this.setStatus("connecting", attempt === 0 ? undefined : `attempt ${attempt + 1}`);
      try {
        // kafkajs retries inside connect() too (retry.retries times); this loop adds "forever, until close()".
        await this.producer.connect();
        if (this.closed) {
          await this.producer.disconnect().catch(() => {});
          throw new KafkaClientClosedError("connect");
        }
        this.connected = true;
        this.setStatus("connected");
        return;
      } catch (error) {
        if (this.closed) throw new KafkaClientClosedError("connect");
        const delay = backoffDelay(this.connection.retry, attempt);
        this.setStatus("disconnected", `retry in ${(delay / 1000).toFixed(1)} s`, error as Error);
        this.problem("connect", error);
        await this.sleeper.sleep(delay);
      }
    }
  }

  async send(topic: string, events: SensorEvent[], options: SendOptions = {}): Promise<SendResult> {
    checkTopicName(topic);
    const { acks, compression, keyField, headers } = checkSendOptions(options);
    if (!Array.isArray(events)) throw new KafkaConfigError("events", `"events" must be an array of events`);
    if (events.length === 0) return { topic, count: 0, partitions: [] };
    if (this.closed) throw new KafkaSendError(topic, events.length, new KafkaClientClosedError("send"));
    if (!this.connected) await this.waitForConnection(topic, events.length);

    const encode = { keyField, headers };
    const messages = new Array(events.length);
    for (let index = 0; index < events.length; index++) messages[index] = eventToMessage(events[index], encode);

    let metadata: RecordMetadata[];
    try {
      metadata = await this.producer.send({ topic, messages, acks: ACKS[acks], compression: COMPRESSION[compression] });
    } catch (error) {
      const failure = new KafkaSendError(topic, events.length, error);
      if (!this.closed && isConnectionError(error)) this.setStatus("disconnected", undefined, failure);
      throw failure;
    }
    if (this.status.state !== "connected" && !this.closed) this.setStatus("connected");
    return {
      topic,
      count: events.length,
      partitions: metadata.map((entry) => ({ partition: entry.partition, baseOffset: entry.baseOffset ?? null })),
    };
  }

  private async waitForConnection(topic: string, count: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const last = this.status.error ? ` (last error: ${rootMessage(this.status.error)})` : "";
        reject(new KafkaSendError(topic, count, new Error(`not connected to ${this.connection.brokers.join(",")} after ${this.connectWaitMs} ms${last}`)));
      }, this.connectWaitMs);
    });
    try {
      const connected = await Promise.race([this.connect(), timeout]);
      if (!connected) throw new KafkaClientClosedError("send");
    } catch (error) {
      throw error instanceof KafkaSendError ? error : new KafkaSendError(topic, count, error);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.sleeper.wakeAll();
    // A connect attempt in kafkajs' own retry loop cannot be cancelled; do not let it hold up a Node-RED redeploy.
    await settleWithin(this.connecting, 2000);
    try {
      await settleWithin(this.producer.disconnect(), 5000);
    } catch (error) {
      this.problem("disconnect", error);
    }
    this.connected = false;
    this.setStatus("stopped");
  }
}
