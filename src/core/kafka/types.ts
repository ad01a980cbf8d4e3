// The small interface the Kafka nodes program against. kafkajs sits behind it (producer.ts, consumer.ts), so the
// client library could be swapped without touching the nodes. No kafkajs type appears here.
import type { SensorEvent } from "../event";
import type { CommitOffset, StalledPartition } from "./offset-tracker";
import type { KafkaDecodeError, OutgoingMessage } from "./serialisation";

/**
 * connecting: first connection or reconnect under way; connected: working; rebalancing: the group is re-assigning
 * partitions; paused: the consumer holds `maxInFlight` unfinished messages and waits for acks; disconnected: lost
 * the brokers (the client retries by itself); stopped: closed by us.
 */
export type KafkaClientState = "connecting" | "connected" | "rebalancing" | "paused" | "disconnected" | "stopped";

export interface KafkaClientStatus {
  state: KafkaClientState;
  /** Short text for a node status, e.g. "3 partitions" or "retry in 2.4 s". */
  detail?: string;
  /** The error behind a "disconnected" state. */
  error?: Error;
}

/** Something went wrong that the client handles by itself (retry, redelivery); for the node's log, not a crash. */
export interface KafkaClientProblem {
  /** What we were doing: "connect", "send", "commit", "handler", "consumer crash". */
  context: string;
  error: Error;
}

export type Acks = "all" | "leader" | "none";
export type Compression = "gzip" | "none";

export interface SendOptions {
  /** "all" (default): every in-sync replica has the batch; "leader": the leader only; "none": fire and forget. */
  acks?: Acks;
  compression?: Compression;
  /** Event field used as the message key (default "sensorId"); null sends without a key. */
  keyField?: string | null;
  headers?: Record<string, string>;
  /** Packed records (see SendMessagesOptions.pack). Default false. */
  pack?: boolean;
}

/** Options of a send of messages already encoded (sendMessages). */
export interface SendMessagesOptions {
  acks?: Acks;
  compression?: Compression;
  /**
   * Packed records: the messages (one event each, as eventToMessage makes them) go out as one JSON-array record per
   * partition, on the partition each event's key hashes to (serialisation.ts, packMessages). Default false.
   */
  pack?: boolean;
}

export interface SendResult {
  topic: string;
  /** Events (messages given) written. */
  count: number;
  /** Kafka records written: `count` unpacked, fewer packed. */
  records: number;
  /** First offset written per partition (absent for acks "none"). */
  partitions: Array<{ partition: number; baseOffset: string | null }>;
}

export interface EventProducer {
  /** Connects, retrying with backoff until it succeeds: true, or false when `close()` came first. Never rejects. */
  connect(): Promise<boolean>;
  /** Sends the events as one batch request. Rejects with a KafkaSendError naming topic and cause. */
  send(topic: string, events: SensorEvent[], options?: SendOptions): Promise<SendResult>;
  /** Sends messages already encoded (e.g. with eventToMessage, or raw values for a dead-letter topic). */
  sendMessages(topic: string, messages: OutgoingMessage[], options?: SendMessagesOptions): Promise<SendResult>;
  close(): Promise<void>;
  readonly status: KafkaClientStatus;
  on(event: "status", listener: (status: KafkaClientStatus) => void): this;
  on(event: "problem", listener: (problem: KafkaClientProblem) => void): this;
}

interface ConsumedRecordBase {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  /** Kafka record timestamp (ms since epoch, as text). */
  timestamp: string;
  headers: Record<string, string>;
  /**
   * Delivery generation of this record's partition: a new number whenever the partition's bookkeeping starts over
   * (group re-joined after a rebalance, consumer crash, rewind), when everything of it not yet committed is
   * delivered again. An ack of an earlier generation changes nothing; the new delivery's ack is the one that counts.
   */
  generation: number;
  /** Position of the event in a packed record (a JSON array of events); absent for a record of one event. */
  index?: number;
  /** The record's value as fetched, kept so a failed event can be decoded afresh for a redelivery (redelivery.ts). */
  value: Buffer | null;
}

/** A consumed event (one per record, or one per element of a packed record): a valid event, or the structured reason why it is not one. Both must be acked. */
export type ConsumedRecord =
  | (ConsumedRecordBase & { ok: true; event: SensorEvent; error?: undefined })
  | (ConsumedRecordBase & { ok: false; error: KafkaDecodeError; event?: undefined });

/**
 * Called once per consumed event, in offset order per partition (a packed record's events in their order). Call
 * `ack` when downstream has finished with it (later, in any order); a record's offset can be committed once every
 * event of it is acked. Calling it twice is harmless.
 */
export type ConsumedRecordHandler = (record: ConsumedRecord, ack: () => void) => void;

export interface StopOptions {
  /** Wait up to this long for unfinished messages to be acked before the last commit (default 2000 ms). */
  drainTimeoutMs?: number;
}

/**
 * Messages of a partition not yet handed out by this consumer: measured when a fetched batch has been handed out,
 * and every `lagIntervalMs` from the broker's watermarks for each assigned partition.
 */
export interface PartitionLag {
  topic: string;
  partition: number;
  lag: number;
}

/** Partitions per topic assigned to this member of the group ({} while it is not a member). */
export type PartitionAssignment = Record<string, number[]>;

export interface EventConsumer {
  /** Connects, joins the group and starts delivering; retries with backoff until `stop()`. Never rejects on broker trouble. */
  start(handler: ConsumedRecordHandler): Promise<void>;
  /** Commits what has been acked, leaves the group and disconnects. Unacked messages are redelivered later. */
  stop(options?: StopOptions): Promise<void>;
  readonly status: KafkaClientStatus;
  /** Unacked messages. */
  readonly inFlight: number;
  /** Partitions assigned to this member by the group (0 before the first join). */
  readonly assignedPartitions: number;
  on(event: "status", listener: (status: KafkaClientStatus) => void): this;
  on(event: "problem", listener: (problem: KafkaClientProblem) => void): this;
  on(event: "commit", listener: (offsets: CommitOffset[]) => void): this;
  on(event: "lag", listener: (lag: PartitionLag) => void): this;
  /** A partition's commit point has stood still for stallWarnMs with events in flight (reported once per stall). */
  on(event: "stalled", listener: (stalled: StalledPartition) => void): this;
  /** After each group join (and {} when the consumer crashed): lag of other partitions is another member's to report. */
  on(event: "assignment", listener: (assignment: PartitionAssignment) => void): this;
}
