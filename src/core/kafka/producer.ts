// Sends sensor events to Kafka in batches through kafkajs: one `send` per array of events (a node's msg.payload),
// which is what makes the difference between ~1.5k and ~50k msgs/s (shared NOTES). Connects with retry and reports
// connected / disconnected through "status" events; errors come back as rejected promises, never thrown at Node-RED.
// First: replaces two slow steps of kafkajs before kafkajs loads (see the file).
import "./kafkajs-speedups";
import { CompressionTypes, Kafka, type PartitionMetadata, type Producer, type RecordMetadata } from "kafkajs";
import { CachingDefaultPartitioner } from "./caching-partitioner";
import type { SensorEvent } from "../event";
import { backoffDelay, checkTopicName, KafkaConfigError, type KafkaConnection, type KafkaConnectionSettings } from "./connection-options";
import { isConnectionError, isRetriableKafkaError, KafkaClientClosedError, rootMessage, settleWithin, Sleeper, StatusEmitter, toConnection } from "./client-support";
import { checkKeyField, eventToMessage, packMessages, type OutgoingMessage, type PackedRecord, type RecordToSend } from "./serialisation";
import type { Acks, Compression, EventProducer, SendMessagesOptions, SendOptions, SendResult } from "./types";

export interface ProducerOptions {
  /** How long a `send` waits for a (re)connection before failing (default 30000 ms). */
  connectWaitMs?: number;
  /** Let the broker create a missing topic on first send, if the broker allows it (default true, as kafkajs). */
  allowAutoTopicCreation?: boolean;
  /**
   * Largest request, in bytes of keys, values and headers before compression (default 900000). A bigger send is
   * split into several requests, sent one after the other so order per key is kept. The broker refuses a record
   * batch over its `message.max.bytes` (1 MiB by default) with MESSAGE_TOO_LARGE, and kafkajs puts all of one
   * send's messages for a partition into one record batch.
   */
  maxRequestBytes?: number;
}

/** Per-record overhead of Kafka's record format (length, attributes, deltas, header counts), roughly. */
const RECORD_OVERHEAD_BYTES = 24;

/** Bytes a message adds to a request, before compression (UTF-8 length of key, value and headers). */
export function messageBytes(message: RecordToSend): number {
  let bytes = RECORD_OVERHEAD_BYTES + Buffer.byteLength(message.value);
  if (message.key !== null && message.key !== undefined) bytes += Buffer.byteLength(message.key);
  if (message.headers) for (const name in message.headers) bytes += Buffer.byteLength(name) + Buffer.byteLength(message.headers[name]) + 4;
  return bytes;
}

/** Cuts messages into consecutive runs of at most `maxBytes` each (a single larger message is a run of its own). */
export function splitBySize<T extends RecordToSend>(messages: T[], maxBytes: number): T[][] {
  const chunks: T[][] = [];
  let start = 0;
  let bytes = 0;
  for (let index = 0; index < messages.length; index++) {
    const size = messageBytes(messages[index]);
    if (index > start && bytes + size > maxBytes) {
      chunks.push(messages.slice(start, index));
      start = index;
      bytes = 0;
    }
    bytes += size;
  }
  if (start < messages.length) chunks.push(start === 0 ? messages : messages.slice(start));
  return chunks;
}

/** A batch that could not be written. `retriable`: the same send may succeed later (broker down, leader moving). */
export class KafkaSendError extends Error {
  readonly topic: string;
  readonly count: number;
  readonly retriable: boolean;
  readonly cause: unknown;
  /** Messages of the send that were written before the failure (a send split into several requests). */
  readonly written: number;
  constructor(topic: string, count: number, cause: unknown, written = 0) {
    const part = written > 0 ? ` (the first ${written} were written)` : "";
    super(`could not send ${count} event${count === 1 ? "" : "s"} to topic "${topic}"${part}: ${rootMessage(cause)}`);
    this.name = "KafkaSendError";
    this.topic = topic;
    this.count = count;
    this.written = written;
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
  if (options.pack !== undefined && typeof options.pack !== "boolean") throw new KafkaConfigError("pack", `"pack" must be true or false (got ${JSON.stringify(options.pack)})`);
  return { acks, compression, keyField, headers: options.headers, pack: options.pack === true };
}

export class KafkaEventProducer extends StatusEmitter implements EventProducer {
  readonly connection: KafkaConnection;
  private readonly producer: Producer;
  private readonly connectWaitMs: number;
  readonly maxRequestBytes: number;
  private readonly sleeper = new Sleeper();
  /** The partitioner kafkajs uses, shared with packing so a packed event lands where it would unpacked. */
  private readonly partitioner = CachingDefaultPartitioner();
  /** Partition count per topic, as kafkajs' metadata last gave it to the partitioner. */
  private readonly partitionCounts = new Map<string, number>();
  private connecting: Promise<void> | null = null;
  private connected = false;
  private closed = false;
  /** Resolves on close(): sends still waiting for a connection fail at once instead of after connectWaitMs. */
  private closedSignal: () => void = () => {};
  private readonly whenClosed = new Promise<false>((resolve) => (this.closedSignal = () => resolve(false)));

  constructor(settings: KafkaConnectionSettings | KafkaConnection, options: ProducerOptions = {}) {
    super();
    this.connection = toConnection(settings);
    this.connectWaitMs = options.connectWaitMs ?? 30_000;
    this.maxRequestBytes = options.maxRequestBytes ?? 900_000;
    if (!Number.isInteger(this.maxRequestBytes) || this.maxRequestBytes < 1024) {
      throw new KafkaConfigError("maxRequestBytes", `"maxRequestBytes" must be a whole number of at least 1024 (got ${JSON.stringify(options.maxRequestBytes)})`);
    }
    const kafka = new Kafka(this.connection.kafkaConfig);
    this.producer = kafka.producer({
      // kafkajs' Java-compatible murmur2 partitioner: a key lands on the same partition as with Java clients.
      createPartitioner: () => (args) => {
        this.partitionCounts.set(args.topic, args.partitionMetadata.length);
        return this.partitioner(args);
      },
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
    const { acks, compression, keyField, headers, pack } = checkSendOptions(options);
    if (!Array.isArray(events)) throw new KafkaConfigError("events", `"events" must be an array of events`);
    const encode = { keyField, headers };
    const messages = new Array<OutgoingMessage>(events.length);
    for (let index = 0; index < events.length; index++) messages[index] = eventToMessage(events[index], encode);
    return this.sendMessages(topic, messages, { acks, compression, pack });
  }

  /**
   * Sends encoded messages: one request, or several in order when they exceed `maxRequestBytes`. Rejects with a
   * KafkaSendError naming topic and cause (and how many were written when a later request failed).
   */
  async sendMessages(topic: string, messages: OutgoingMessage[], options: SendMessagesOptions = {}): Promise<SendResult> {
    checkTopicName(topic);
    const { acks, compression } = checkSendOptions({ acks: options.acks, compression: options.compression });
    if (!Array.isArray(messages)) throw new KafkaConfigError("messages", `"messages" must be an array of messages`);
    if (messages.length === 0) return { topic, count: 0, records: 0, partitions: [] };
    if (this.closed) throw new KafkaSendError(topic, messages.length, new KafkaClientClosedError("send"));
    if (!this.connected) await this.waitForConnection(topic, messages.length);

    const partitions: SendResult["partitions"] = [];
    let written = 0;
    let records = 0;
    for (const chunk of this.requests(topic, messages, options.pack === true)) {
      let metadata: RecordMetadata[];
      try {
        metadata = await this.producer.send({ topic, messages: chunk, acks: ACKS[acks], compression: COMPRESSION[compression] });
      } catch (error) {
        const failure = new KafkaSendError(topic, messages.length, error, written);
        if (!this.closed && isConnectionError(error)) this.setStatus("disconnected", undefined, failure);
        throw failure;
      }
      written += chunk.events;
      records += chunk.length;
      for (const entry of metadata) partitions.push({ partition: entry.partition, baseOffset: entry.baseOffset ?? null });
    }
    if (this.status.state !== "connected" && !this.closed) this.setStatus("connected");
    return { topic, count: messages.length, records, partitions };
  }

  /**
   * The requests of a send, in order, each with the number of events it carries. Packed, the messages become one
   * record per partition; until the producer knows the topic's partition count (its first send to the topic), the
   * first message goes alone, unpacked, and kafkajs' metadata for it tells the count for the rest.
   */
  private *requests(topic: string, messages: OutgoingMessage[], pack: boolean): Generator<RecordToSend[] & { events: number }> {
    const counted = (chunk: RecordToSend[], events: number) => Object.assign(chunk, { events });
    if (!pack) {
      for (const chunk of splitBySize(messages, this.maxRequestBytes)) yield counted(chunk, chunk.length);
      return;
    }
    let rest = messages;
    if (!this.partitionCounts.has(topic)) {
      yield counted([messages[0]], 1);
      rest = messages.slice(1);
      if (rest.length === 0) return;
    }
    const packed = packMessages(rest, (key) => this.partitionOf(topic, key));
    for (const chunk of splitBySize(packed, this.maxRequestBytes)) yield counted(chunk, chunk.reduce((sum, record: PackedRecord) => sum + record.events, 0));
  }

  /** The partition kafkajs would give a message with this key, for the topic's last known partition count. */
  private partitionOf(topic: string, key: string): number {
    const partitionMetadata = placeholderPartitions(this.partitionCounts.get(topic)!);
    return this.partitioner({ topic, partitionMetadata, message: { key, value: null } });
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
      const connected = await Promise.race([this.connect(), timeout, this.whenClosed]);
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
    this.closedSignal();
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

/** Partition metadata of the right length for the partitioner: a keyed message's partition depends only on the count. */
const placeholders: PartitionMetadata[][] = [];
function placeholderPartitions(count: number): PartitionMetadata[] {
  if (placeholders[count] === undefined) {
    placeholders[count] = Array.from({ length: count }, (_, partitionId) => ({ partitionErrorCode: 0, partitionId, leader: 0, replicas: [0], isr: [0] }));
  }
  return placeholders[count];
}
