// Matches acknowledgements arriving on a kafka-in's input (its own messages coming back from a sink or kafka-out)
// to the deliveries they belong to. A message carries msg.kafka = { consumer, generation, topic, partition, offsets };
// it acknowledges only when `consumer` is this node and `generation` is the partition's current delivery.
//
// Why the generation: after a rebalance (or a consumer restart) the core revokes a partition and delivers everything
// after its last commit again. The old copies may still be in the flow; when they finish, their acknowledgement names
// the same offsets as the new copies. Matched by offset alone they would mark the new copies finished while those
// are still being processed, and a crash right then would lose them. The core already ignores acks of a revoked
// delivery (offset-tracker: a stale TrackedOffset); the token carries that distinction through the flow.
//
// A message that comes back from a Catch node instead (msg.error set) reports a failure: fail() hands its events to
// kafka-in, which tries them again or writes them to the dead-letter topic (core/kafka/redelivery.ts).

import type { RecordOrigin } from "../core/kafka";

/** What msg.kafka carries: where the events came from, and the token that lets an acknowledgement find them. */
export interface KafkaMessageMeta {
  /** The kafka-in node that read the events (its id). */
  consumer: string;
  /** Delivery generation of the partition: acknowledgements of an older delivery are ignored. */
  generation: number;
  topic: string;
  partition: number;
  offsets: number[];
  /**
   * Parallel to `offsets` when the message holds events of packed records: the event's position in its record, -1
   * for an event that is a record of its own. Absent when no event of the message comes from a packed record.
   */
  indexes?: number[];
  /**
   * Parallel to `offsets` when the message holds an event tried again after a failure: which attempt this is (1 for
   * the first delivery). Absent when every event of the message is on its first attempt.
   */
  attempts?: number[];
  keys: (string | null)[];
  timestamps: number[];
  headers: Record<string, string>[];
}

/**
 * An event handed downstream and not yet back: its ack, its record's value (for a retry), and which attempt is out.
 * Deliberately small: every event in flight has one, and what outlives a young-generation GC is costly. Keeping the
 * whole ConsumedRecord here cost Silver about 2.5 µs of CPU per event (+10 %) in the three-runtime bench; the rest of
 * what a retry needs comes back with the failure report's msg.kafka.
 */
export interface HeldEvent {
  readonly ack: () => void;
  /** The record's value as fetched (one Buffer shared by the events of a packed record). */
  readonly value: Buffer | null;
  /** 1 for the first delivery, one more for each retry. */
  readonly attempt: number;
  /** A failure of this attempt was reported and a retry (or the dead-letter copy) is scheduled: later reports are ignored. */
  failed: boolean;
}

/** A held event a failure report named, with its record rebuilt from the report (what a retry or a dead letter needs). */
export interface FailedEvent {
  readonly held: HeldEvent;
  readonly record: RecordOrigin;
  /** The delivery it is held in: a retry is pointless once the partition has been delivered afresh. */
  readonly delivery: PartitionDelivery;
}

/** The held event of a one-event record, or the held events of a packed record still in the flow, by position. */
export type PendingEntry = HeldEvent | Map<number, HeldEvent>;

/** One delivery of one partition: its events still in the flow, by offset. */
export interface PartitionDelivery {
  /** The core's generation number of this delivery (ConsumedRecord.generation). */
  readonly coreGeneration: number;
  /** Our token for it, unique in this process: a redeployed node never reuses one. */
  readonly token: number;
  readonly pending: Map<number, PendingEntry>;
}

/** Shared by every kafka-in of the runtime, so a token is never handed out twice, not even across redeploys. */
let lastDeliveryToken = 0;

export class AckRegistry {
  private readonly deliveries = new Map<string, PartitionDelivery>();

  constructor(readonly consumerId: string) {}

  /** The current delivery of a partition; a record of a new core generation replaces the old one (its acks go stale). */
  deliveryFor(topic: string, partition: number, coreGeneration: number): PartitionDelivery {
    const key = `${partition}:${topic}`;
    let delivery = this.deliveries.get(key);
    if (!delivery || delivery.coreGeneration !== coreGeneration) {
      delivery = { coreGeneration, token: ++lastDeliveryToken, pending: new Map() };
      this.deliveries.set(key, delivery);
    }
    return delivery;
  }

  /**
   * Keeps the events sent in one message until that message comes back (`indexes` as in KafkaMessageMeta). An event
   * sent again (a retry) replaces its earlier attempt.
   */
  hold(delivery: PartitionDelivery, offsets: number[], events: HeldEvent[], indexes?: number[]): void {
    const pending = delivery.pending;
    for (let item = 0; item < offsets.length; item++) {
      const position = indexes === undefined ? -1 : indexes[item];
      if (position < 0) {
        pending.set(offsets[item], events[item]);
        continue;
      }
      let slots = pending.get(offsets[item]);
      if (!(slots instanceof Map)) {
        slots = new Map();
        pending.set(offsets[item], slots);
      }
      slots.set(position, events[item]);
    }
  }

  /**
   * Acknowledges the offsets named by a message's msg.kafka when it is this node's and of the current delivery.
   * Returns how many events it acknowledged: 0 for a foreign, stale or repeated acknowledgement (ignored, no error).
   * Any attempt's success counts: a late acknowledgement of an earlier attempt finishes the event too.
   */
  acknowledge(meta: unknown): number {
    let acknowledged = 0;
    this.visit(meta, (held, { pending }, offset, position) => {
      if (position < 0) pending.delete(offset);
      else {
        const slots = pending.get(offset) as Map<number, HeldEvent>;
        slots.delete(position);
        if (slots.size === 0) pending.delete(offset);
      }
      held.ack();
      acknowledged++;
    });
    return acknowledged;
  }

  /**
   * The events a failure report (a message back from a Catch node) names, when they are held and the report is of
   * their current attempt; each is marked failed and returned once, so a second report of the same attempt is ignored.
   * They stay held: the caller retries them (hold() replaces them) or acknowledges them once dead-lettered.
   */
  fail(meta: unknown): FailedEvent[] {
    const failed: FailedEvent[] = [];
    const { topic, partition, attempts, keys, timestamps, headers } = (meta ?? {}) as Partial<KafkaMessageMeta>;
    this.visit(meta, (held, delivery, offset, position, item) => {
      const attempt = Array.isArray(attempts) ? attempts[item] : 1;
      if (held.failed || held.attempt !== attempt) return;
      held.failed = true;
      const record: RecordOrigin = {
        topic: topic!,
        partition: partition!,
        offset: String(offset),
        key: keys?.[item] ?? null,
        timestamp: String(timestamps?.[item] ?? ""),
        headers: headers?.[item] ?? {},
        generation: delivery.coreGeneration,
        value: held.value,
        ...(position < 0 ? {} : { index: position }),
      };
      failed.push({ held, record, delivery });
    });
    return failed;
  }

  /** Whether a failed event is still held as that attempt (not acknowledged, not sent again, partition not delivered afresh). */
  isHeld({ held, delivery, record }: FailedEvent): boolean {
    if (this.deliveries.get(`${record.partition}:${record.topic}`) !== delivery) return false;
    const entry = delivery.pending.get(Number(record.offset));
    return entry instanceof Map ? entry.get(record.index ?? -1) === held : entry === held;
  }

  /**
   * Calls `found` for each event named by `meta` that is held by this node's current delivery, with where it is held
   * (the delivery, its offset, its position in a packed record or -1 for a record of its own) and its item in the message.
   */
  private visit(meta: unknown, found: (held: HeldEvent, delivery: PartitionDelivery, offset: number, position: number, item: number) => void): void {
    if (meta === null || typeof meta !== "object") return;
    const { consumer, generation, topic, partition, offsets, indexes } = meta as Partial<KafkaMessageMeta>;
    if (consumer !== this.consumerId || !Array.isArray(offsets)) return;
    const delivery = this.deliveries.get(`${partition}:${topic}`);
    if (!delivery || delivery.token !== generation) return;
    const pending = delivery.pending;
    for (let item = 0; item < offsets.length; item++) {
      const offset = offsets[item];
      const entry = pending.get(offset);
      if (entry === undefined) continue;
      if (!(entry instanceof Map)) {
        found(entry, delivery, offset, -1, item);
        continue;
      }
      const position = Array.isArray(indexes) ? indexes[item] : undefined;
      const held = position === undefined ? undefined : entry.get(position);
      if (held !== undefined) found(held, delivery, offset, position!, item);
    }
  }

  /** Forgets everything (close): acks arriving later are ignored. */
  clear(): void {
    this.deliveries.clear();
  }
}
