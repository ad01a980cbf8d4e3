// Consumes sensor events from Kafka through kafkajs with at-least-once delivery into an asynchronous downstream:
// each message is handed to the handler with an `ack`; offsets are committed only up to the first unacked message
// per partition (offset-tracker.ts), coalesced; at most `maxInFlight` unacked messages exist, beyond that fetching
// waits for acks. Broker trouble is retried and reported as status; nothing here throws at Node-RED.
// First: replaces two slow steps of kafkajs before kafkajs loads (see the file).
import "./kafkajs-speedups";
import { Kafka, type Admin, type Consumer, type EachBatchPayload, type KafkaMessage } from "kafkajs";
import { backoffDelay, checkTopicName, KafkaConfigError, type KafkaConnection, type KafkaConnectionSettings } from "./connection-options";
import { isConnectionError, isRetriableKafkaError, settleWithin, Sleeper, StatusEmitter, toConnection } from "./client-support";
import { OffsetTracker, type TrackedOffset } from "./offset-tracker";
import { partitionLags, type Watermarks } from "./partition-lag";
import { bufferText, headersText, messageToEvents, type DecodeResult } from "./serialisation";
import type { ConsumedRecord, ConsumedRecordHandler, EventConsumer, PartitionAssignment, PartitionLag, StopOptions } from "./types";

/**
 * Events handed out from one fetched batch before letting the event loop run. A fetch holds thousands of events; handed
 * out in one go, all of them are parsed and alive before the first reaches the next node, so they outlive young-
 * generation collections (copied, then promoted) and the first waits for the last. Yielding lets the flow take each
 * slice while the rest is still undecoded.
 */
const YIELD_EVERY_EVENTS = 500;

export interface ConsumerOptions {
  groupId: string;
  topics: string[];
  /** A new group (no committed offsets) starts at the oldest message rather than at new ones (default false). */
  fromBeginning?: boolean;
  /**
   * How long the broker waits for a heartbeat before it declares this member dead and gives its partitions to the
   * others (default 10000 ms, kafkajs' default is 30000). After a crash (SIGKILL, power loss) the partitions sit idle
   * for this long: measured here, 30 s left a killed Node-RED's partitions unread for ~26 s. Much lower risks false
   * expiries when Node-RED's event loop is blocked for seconds (heartbeats run on it); the broker accepts 6 s..30 min.
   */
  sessionTimeoutMs?: number;
  /** Heartbeat period (default a third of the session timeout, as Kafka recommends). */
  heartbeatIntervalMs?: number;
  /** Unacked messages at which delivery waits for acks (default 1000). Bounds memory when downstream is slow. */
  maxInFlight?: number;
  /** Delivery resumes once unacked messages drop to this (default half of maxInFlight). */
  resumeBelow?: number;
  /** Commit after this many acks (default 1000) ... */
  commitEveryAcks?: number;
  /** ... or this long after the first uncommitted ack (default 1000 ms). */
  commitIntervalMs?: number;
  /** Longest time the broker holds a fetch open when there is no new data (default 500 ms; kafkajs' 5000). */
  maxWaitTimeMs?: number;
  /** Upper bound of data fetched per partition and request (default 1 MiB). */
  maxBytesPerPartition?: number;
  /**
   * How often the lag of every assigned partition is read from the broker's watermarks (default 10000 ms; 0: only
   * after each fetched batch). Without it the lag freezes while delivery waits for acks, when it matters most.
   */
  lagIntervalMs?: number;
  /**
   * A partition whose commit point has not moved for this long while some of its events are in flight is reported
   * once with a "stalled" event (default 60000 ms; 0: never). A message that never comes back, failed in a node or
   * dropped without being passed back, holds its partition's commits; this says which one.
   */
  stallWarnMs?: number;
}

interface CheckedConsumerOptions extends Required<ConsumerOptions> {}

/** Checks consumer options once (a node calls this at construction); errors name the option. */
export function checkConsumerOptions(options: ConsumerOptions): CheckedConsumerOptions {
  if (!options || typeof options !== "object") throw new KafkaConfigError("groupId", "consumer options are missing");
  if (typeof options.groupId !== "string" || options.groupId.trim() === "") {
    throw new KafkaConfigError("groupId", `"groupId" is empty: consumers sharing a group id share the partitions, and the group's committed offsets say where to resume`);
  }
  if (!Array.isArray(options.topics) || options.topics.length === 0) throw new KafkaConfigError("topics", `"topics" is empty: give at least one topic`);
  const topics = options.topics.map((topic, index) => checkTopicName(topic, `topics[${index}]`));
  const integer = (value: unknown, field: string, fallback: number, min: number, max: number): number => {
    if (value === undefined || value === null) return fallback;
    if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
      throw new KafkaConfigError(field, `"${field}" must be a whole number from ${min} to ${max} (got ${JSON.stringify(value)})`);
    }
    return value;
  };
  const sessionTimeoutMs = integer(options.sessionTimeoutMs, "sessionTimeoutMs", 10_000, 6_000, 1_800_000);
  const heartbeatIntervalMs = integer(options.heartbeatIntervalMs, "heartbeatIntervalMs", Math.floor(sessionTimeoutMs / 3), 100, sessionTimeoutMs - 1);
  const maxInFlight = integer(options.maxInFlight, "maxInFlight", 1000, 1, 1_000_000);
  const resumeBelow = integer(options.resumeBelow, "resumeBelow", Math.floor(maxInFlight / 2), 0, maxInFlight - 1);
  return {
    groupId: options.groupId,
    topics,
    fromBeginning: options.fromBeginning === true,
    sessionTimeoutMs,
    heartbeatIntervalMs,
    maxInFlight,
    resumeBelow,
    commitEveryAcks: integer(options.commitEveryAcks, "commitEveryAcks", 1000, 1, 1_000_000),
    commitIntervalMs: integer(options.commitIntervalMs, "commitIntervalMs", 1000, 10, 600_000),
    maxWaitTimeMs: integer(options.maxWaitTimeMs, "maxWaitTimeMs", 500, 10, 60_000),
    maxBytesPerPartition: integer(options.maxBytesPerPartition, "maxBytesPerPartition", 1_048_576, 1024, 100 * 1_048_576),
    lagIntervalMs: integer(options.lagIntervalMs, "lagIntervalMs", 10_000, 0, 3_600_000),
    stallWarnMs: integer(options.stallWarnMs, "stallWarnMs", 60_000, 0, 86_400_000),
  };
}

export class KafkaEventConsumer extends StatusEmitter implements EventConsumer {
  readonly connection: KafkaConnection;
  readonly options: CheckedConsumerOptions;
  private readonly kafka: Kafka;
  private readonly tracker: OffsetTracker;
  private readonly sleeper = new Sleeper();
  private consumer: Consumer | null = null;
  private handler: ConsumedRecordHandler | null = null;
  private started = false;
  private stopping = false;
  private running: Promise<void> | null = null;
  private commitTimer: NodeJS.Timeout | null = null;
  private lagTimer: NodeJS.Timeout | null = null;
  private stallTimer: NodeJS.Timeout | null = null;
  /** Reads watermarks and the group's commits for the lag; connected on first use, dropped after a failure. */
  private admin: Admin | null = null;
  private refreshingLag = false;
  /** This member's partitions per topic, from the last group join (empty while not a member). */
  private assignment: PartitionAssignment = {};
  private committing: Promise<void> | null = null;
  private commitAgain = false;
  /** Resolves the wait of a full eachBatch once acks bring in-flight down to `resumeBelow`. */
  private capacityWaiter: (() => void) | null = null;
  /** Resolves stop()'s drain once nothing is in flight. */
  private drainWaiter: (() => void) | null = null;
  private restartAttempt = 0;
  private partitionCount = 0;
  private stopped: Promise<void> | null = null;
  private firstAttemptOver: () => void = () => {};
  private readonly firstAttempt = new Promise<void>((resolve) => (this.firstAttemptOver = resolve));

  constructor(settings: KafkaConnectionSettings | KafkaConnection, options: ConsumerOptions) {
    super();
    this.connection = toConnection(settings);
    this.options = checkConsumerOptions(options);
    this.kafka = new Kafka(this.connection.kafkaConfig);
    this.tracker = new OffsetTracker({ commitEveryAcks: this.options.commitEveryAcks, commitIntervalMs: this.options.commitIntervalMs });
  }

  get inFlight(): number {
    return this.tracker.inFlight;
  }

  get assignedPartitions(): number {
    return this.partitionCount;
  }

  /**
   * Resolves once the first connection attempt is over: running, or failed and retrying in the background (see the
   * "status" events). Never rejects.
   */
  start(handler: ConsumedRecordHandler): Promise<void> {
    if (this.started) return this.firstAttempt;
    this.started = true;
    this.handler = handler;
    this.commitTimer = setInterval(() => {
      if (this.tracker.commitDue()) void this.commitNow();
    }, Math.max(10, Math.floor(this.options.commitIntervalMs / 2)));
    this.commitTimer.unref();
    if (this.options.lagIntervalMs > 0) {
      this.lagTimer = setInterval(() => void this.refreshLag(), this.options.lagIntervalMs);
      this.lagTimer.unref();
    }
    if (this.options.stallWarnMs > 0) {
      // Looked at a few times per period, so a stall is reported at most a quarter period late.
      this.stallTimer = setInterval(() => {
        for (const stalled of this.tracker.stalls(this.options.stallWarnMs)) this.safeEmit("stalled", stalled);
      }, Math.max(10, Math.min(10_000, Math.floor(this.options.stallWarnMs / 4))));
      this.stallTimer.unref();
    }
    this.running = this.runWithRestart();
    return this.firstAttempt;
  }

  /** One kafkajs consumer's life; on failure (or a crash kafkajs will not restart from) a fresh one after a backoff. */
  private async runWithRestart(): Promise<void> {
    while (!this.stopping) {
      const consumer = this.createConsumer();
      this.consumer = consumer;
      try {
        this.setStatus("connecting", this.restartAttempt === 0 ? undefined : `attempt ${this.restartAttempt + 1}`);
        await consumer.connect();
        if (!this.stopping) await consumer.subscribe({ topics: this.options.topics, fromBeginning: this.options.fromBeginning });
        // autoCommit off: kafkajs would commit what it fetched, not what downstream finished (the ~21 % loss per
        // SIGKILL measured in NOTES). eachBatchAutoResolve off: a batch cut short by stop() is fetched again.
        if (!this.stopping) {
          await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: 1, eachBatch: (payload) => this.eachBatch(payload) });
        }
        // stop() came while kafkajs was still connecting (its retries cannot be cancelled): release this client.
        if (this.stopping) await this.discard(consumer);
        break; // running; kafkajs restarts itself after retriable crashes, the CRASH listener handles the rest
      } catch (error) {
        await this.discard(consumer);
        if (this.stopping) break;
        const delay = backoffDelay(this.connection.retry, this.restartAttempt++);
        this.reportDisconnected(error, "connect", delay);
        this.firstAttemptOver();
        await this.sleeper.sleep(delay);
      }
    }
    this.firstAttemptOver();
  }

  private reportDisconnected(error: unknown, context: string, retryInMs: number | null): void {
    this.setStatus("disconnected", retryInMs === null ? "restarting" : `retry in ${(retryInMs / 1000).toFixed(1)} s`, error as Error);
    this.problem(context, error);
  }

  private createConsumer(): Consumer {
    const consumer = this.kafka.consumer({
      groupId: this.options.groupId,
      sessionTimeout: this.options.sessionTimeoutMs,
      heartbeatInterval: this.options.heartbeatIntervalMs,
      maxWaitTimeInMs: this.options.maxWaitTimeMs,
      maxBytesPerPartition: this.options.maxBytesPerPartition,
      retry: this.connection.kafkaConfig.retry,
    });
    const { GROUP_JOIN, REBALANCING, CRASH, STOP } = consumer.events;
    consumer.on(GROUP_JOIN, (event) => {
      // A new generation: kafkajs restarts every assigned partition from its committed offset, so whatever we had
      // handed out and not committed will come again. Acks for the old deliveries are ignored from here on.
      this.tracker.revokeAll();
      this.releaseCapacity();
      this.restartAttempt = 0;
      const partitions = Object.values(event.payload.memberAssignment).reduce((sum, list) => sum + list.length, 0);
      this.partitionCount = partitions;
      this.setAssignment(event.payload.memberAssignment);
      this.setStatus("connected", `${partitions} partition${partitions === 1 ? "" : "s"}`);
    });
    consumer.on(REBALANCING, () => {
      this.setStatus("rebalancing");
      // Best effort: commit what is finished before the partitions move (the coordinator still accepts this
      // generation's commits while it prepares the rebalance).
      void this.commitNow();
    });
    consumer.on(CRASH, (event) => {
      const { error, restart } = event.payload;
      this.tracker.revokeAll();
      this.partitionCount = 0;
      this.setAssignment({});
      this.releaseCapacity();
      if (this.stopping) return;
      if (restart) {
        this.reportDisconnected(error, "consumer crash", null); // kafkajs restarts it after its own backoff
      } else {
        // kafkajs gives up on non-retriable errors; we still try again later (credentials may be fixed, ACLs
        // granted), with a fresh client and a growing backoff.
        void this.restartLater(consumer, error);
      }
    });
    consumer.on(STOP, () => {
      if (this.stopping) this.setStatus("stopped");
    });
    return consumer;
  }

  private async restartLater(crashed: Consumer, error: unknown): Promise<void> {
    const delay = backoffDelay(this.connection.retry, this.restartAttempt++);
    this.reportDisconnected(error, "consumer crash", delay);
    await this.discard(crashed);
    await this.sleeper.sleep(delay);
    if (this.stopping || this.consumer !== crashed) return;
    this.running = this.runWithRestart();
  }

  private async discard(consumer: Consumer): Promise<void> {
    try {
      await consumer.disconnect();
    } catch {
      // already broken; nothing to release
    }
  }

  private async eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload;
    const { topic, partition } = batch;
    const messages = batch.messages;
    let lastDelivered: string | null = null;
    let sinceYield = 0;
    try {
      for (let index = 0; index < messages.length; index++) {
        if (this.stopping || !isRunning() || isStale()) return;
        if (this.tracker.inFlight >= this.options.maxInFlight) {
          await this.waitForCapacity(heartbeat, isRunning);
          sinceYield = 0;
          if (this.stopping || !isRunning() || isStale()) return;
        } else if (sinceYield >= YIELD_EVERY_EVENTS) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          sinceYield = 0;
          if (this.stopping || !isRunning() || isStale()) return;
        }
        const message = messages[index];
        const decoded = messageToEvents(message.value, { topic, partition, offset: message.offset }, bufferText(message.key));
        const tracked = this.tracker.track(topic, partition, message.offset, decoded.length);
        this.deliver(topic, partition, message, decoded, tracked);
        lastDelivered = message.offset;
        sinceYield += decoded.length;
      }
      // Everything up to the batch's end is handed out (transaction markers after the last message need no ack).
      this.tracker.skipTo(topic, partition, Number(batch.lastOffset()) + 1);
      // What is left on the partition once this batch is handed out (0 when keeping up), for the lag gauge; not for
      // a batch that finished just after its partition moved to another member (that member reports it now).
      if (this.assignment[topic]?.includes(partition)) {
        this.emit("lag", { topic, partition, lag: Math.max(0, Number(batch.highWatermark) - Number(batch.lastOffset()) - 1) } satisfies PartitionLag);
      }
    } finally {
      // kafkajs fetches next from here; undelivered messages of a batch cut short come again in the next fetch.
      if (lastDelivered !== null) resolveOffset(lastDelivered);
    }
  }

  /**
   * Hands a record's events to the handler: one for a one-event record, each event of a packed record with its index.
   * Each event has its own ack; the record (its offset) is finished once every one of its events is acked.
   */
  private deliver(topic: string, partition: number, message: KafkaMessage, decoded: DecodeResult[], tracked: TrackedOffset): void {
    const key = bufferText(message.key);
    const headers = headersText(message.headers);
    const first = decoded[0];
    // A JSON array is a packed record, even of one event; an array that failed as a whole (empty, too large) is not.
    const packed = decoded.length > 1 || (isPackedValue(message.value) && (first.ok || first.error.index !== null));
    let unacked = decoded.length;
    for (let index = 0; index < decoded.length; index++) {
      const result = decoded[index];
      const { offset, timestamp, value } = message;
      const generation = tracked.generation;
      const record: ConsumedRecord = result.ok
        ? { ok: true, event: result.event, topic, partition, offset, key, timestamp, headers, generation, value }
        : { ok: false, error: result.error, topic, partition, offset, key, timestamp, headers, generation, value };
      if (packed) record.index = index;
      let acked = false;
      const ack = (): void => {
        if (acked) return;
        acked = true;
        if (--unacked === 0) this.onAck(tracked);
      };
      try {
        this.handler!(record, ack);
      } catch (error) {
        // A throwing handler must not stall the partition (its offset could never be committed) nor reach kafkajs.
        this.problem("handler", error);
        ack();
      }
    }
  }

  private onAck(tracked: TrackedOffset): void {
    if (!this.tracker.ack(tracked)) return;
    const inFlight = this.tracker.inFlight;
    if (this.capacityWaiter && inFlight <= this.options.resumeBelow) this.releaseCapacity();
    if (this.drainWaiter && inFlight === 0) {
      const resolve = this.drainWaiter;
      this.drainWaiter = null;
      resolve();
    }
    if (this.tracker.acksSinceCommit >= this.tracker.commitEveryAcks && !this.committing) void this.commitNow();
  }

  private setAssignment(assignment: PartitionAssignment): void {
    this.assignment = Object.fromEntries(Object.entries(assignment).map(([topic, partitions]) => [topic, [...partitions].sort((a, b) => a - b)]));
    this.safeEmit("assignment", this.assignment);
  }

  /** Emits the lag of every assigned partition from the broker's watermarks; skipped while not a working member. */
  private async refreshLag(): Promise<void> {
    const state = this.status.state;
    if (this.refreshingLag || this.stopping || (state !== "connected" && state !== "paused")) return;
    const topics = Object.keys(this.assignment).filter((topic) => this.assignment[topic].length > 0);
    if (topics.length === 0) return;
    this.refreshingLag = true;
    try {
      if (this.admin === null) {
        const connecting = this.kafka.admin({ retry: { retries: 1 } });
        await connecting.connect();
        if (this.stopping) {
          void settleWithin(connecting.disconnect(), 2000);
          return;
        }
        this.admin = connecting;
      }
      const admin = this.admin;
      const [committed, ...watermarks] = await Promise.all([
        admin.fetchOffsets({ groupId: this.options.groupId, topics }),
        ...topics.map((topic) => admin.fetchTopicOffsets(topic)),
      ]);
      if (this.stopping) return;
      topics.forEach((topic, index) => {
        // The group may have rebalanced meanwhile: only partitions still assigned are reported.
        const partitions = this.assignment[topic] ?? [];
        const commits = committed.find((entry) => entry.topic === topic)?.partitions ?? [];
        const lags = partitionLags({
          topic,
          partitions,
          watermarks: new Map<number, Watermarks>(watermarks[index].map((entry) => [entry.partition, { low: Number(entry.low), high: Number(entry.high) }])),
          position: (partition) => this.tracker.position(topic, partition),
          committed: new Map(commits.filter((entry) => Number(entry.offset) >= 0).map((entry) => [entry.partition, Number(entry.offset)])),
          fromBeginning: this.options.fromBeginning,
        });
        for (const lag of lags) this.safeEmit("lag", lag);
      });
    } catch (error) {
      // The consumer reports a broker that is down, and a passing error is tried again next time; anything else (say,
      // no right to describe the group) is news.
      if (!isConnectionError(error) && !isRetriableKafkaError(error)) this.problem("lag", error);
      const admin = this.admin;
      this.admin = null;
      if (admin) void settleWithin(admin.disconnect(), 2000);
    } finally {
      this.refreshingLag = false;
    }
  }

  private releaseCapacity(): void {
    const resolve = this.capacityWaiter;
    this.capacityWaiter = null;
    if (resolve) resolve();
  }

  /**
   * Holds eachBatch, and with it kafkajs' fetch loop (it fetches again only after the batch is handled), until
   * acks bring in-flight down to `resumeBelow`. Heartbeats keep the membership alive meanwhile; when the group
   * rebalances, heartbeat() throws and kafkajs re-joins (unacked messages are then delivered again).
   */
  private async waitForCapacity(heartbeat: () => Promise<void>, isRunning: () => boolean): Promise<void> {
    this.setStatus("paused", `${this.tracker.inFlight} unacked`);
    const heartbeatEvery = Math.max(100, Math.floor(this.options.heartbeatIntervalMs / 2));
    while (this.tracker.inFlight > this.options.resumeBelow && !this.stopping && isRunning()) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.capacityWaiter = null;
          resolve();
        }, heartbeatEvery);
        this.capacityWaiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      if (this.stopping) return;
      await heartbeat();
    }
    if (!this.stopping && this.status.state === "paused") this.setStatus("connected");
  }

  /** Commits every partition's first unacked offset (or end). One commit request at a time; never rejects. */
  commitNow(): Promise<void> {
    if (this.committing) {
      this.commitAgain = true;
      return this.committing;
    }
    const consumer = this.consumer;
    if (!consumer) return Promise.resolve();
    const offsets = this.tracker.takeCommit();
    if (offsets.length === 0) return Promise.resolve();
    this.committing = (async () => {
      try {
        await consumer.commitOffsets(offsets);
        this.tracker.markCommitted(offsets);
        this.safeEmit("commit", offsets);
      } catch (error) {
        // Not marked committed: the next interval offers these offsets again. After a rebalance they may belong to
        // another member; then the failure is expected and the messages are redelivered there.
        if (!this.stopping || !isConnectionError(error)) this.problem("commit", error);
      } finally {
        this.committing = null;
        if (this.commitAgain) {
          this.commitAgain = false;
          void this.commitNow();
        }
      }
    })();
    return this.committing;
  }

  /** Waits for in-flight messages (up to drainTimeoutMs), commits what was acked, leaves the group, disconnects. */
  stop(options: StopOptions = {}): Promise<void> {
    if (!this.stopped) this.stopped = this.stopOnce(options);
    return this.stopped;
  }

  private async stopOnce(options: StopOptions): Promise<void> {
    const drainTimeoutMs = options.drainTimeoutMs ?? 2000;
    if (this.tracker.inFlight > 0 && drainTimeoutMs > 0 && this.started) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.drainWaiter = null;
          resolve();
        }, drainTimeoutMs);
        this.drainWaiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    this.stopping = true;
    this.sleeper.wakeAll();
    this.releaseCapacity();
    if (this.commitTimer) clearInterval(this.commitTimer);
    this.commitTimer = null;
    if (this.lagTimer) clearInterval(this.lagTimer);
    this.lagTimer = null;
    if (this.stallTimer) clearInterval(this.stallTimer);
    this.stallTimer = null;
    // Final commit while still a member of the group (after leaving, the coordinator rejects it). Bounded: with
    // the broker gone, kafkajs would retry the commit for a minute and hold up a Node-RED redeploy.
    // Node-RED gives a closing node 15 s; drain (2 s) + commit (4 s) + leave (5 s) + 1 s stays inside it.
    const commitDeadline = Date.now() + 4000;
    await settleWithin(this.committing, 4000);
    await settleWithin(this.commitNow(), Math.max(0, commitDeadline - Date.now()));
    const consumer = this.consumer;
    this.consumer = null;
    const admin = this.admin;
    this.admin = null;
    await settleWithin(Promise.all([consumer ? this.discard(consumer) : undefined, admin?.disconnect()]), 5000);
    await settleWithin(this.running, 1000);
    this.setStatus("stopped");
  }
}

/** Whether a record's value is a JSON array (a packed record, possibly of one event): its first non-blank byte is "[". */
function isPackedValue(value: Buffer | null): boolean {
  if (value === null) return false;
  for (let index = 0; index < value.length; index++) {
    const byte = value[index];
    if (byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09) continue;
    return byte === 0x5b;
  }
  return false;
}
