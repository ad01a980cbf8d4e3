// Matches acknowledgements arriving on a kafka-in's input (its own messages coming back from a sink or kafka-out)
// to the deliveries they belong to. A message carries msg.kafka = { consumer, generation, topic, partition, offsets };
// it acknowledges only when `consumer` is this node and `generation` is the partition's current delivery.
//
// Why the generation: after a rebalance (or a consumer restart) the core revokes a partition and delivers everything
// after its last commit again. The old copies may still be in the flow; when they finish, their acknowledgement names
// the same offsets as the new copies. Matched by offset alone they would mark the new copies finished while those
// are still being processed, and a crash right then would lose them. The core already ignores acks of a revoked
// delivery (offset-tracker: a stale TrackedOffset); the token carries that distinction through the flow.

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
  keys: (string | null)[];
  timestamps: number[];
  headers: Record<string, string>[];
}

/** The ack of a one-event record, or the acks of a packed record's events still in the flow, by position. */
export type PendingAck = (() => void) | Map<number, () => void>;

/** One delivery of one partition: the acks of its events still in the flow, by offset. */
export interface PartitionDelivery {
  /** The core's generation number of this delivery (ConsumedRecord.generation). */
  readonly coreGeneration: number;
  /** Our token for it, unique in this process: a redeployed node never reuses one. */
  readonly token: number;
  readonly pending: Map<number, PendingAck>;
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

  /** Keeps the acks of events sent in one message until that message comes back (`indexes` as in KafkaMessageMeta). */
  hold(delivery: PartitionDelivery, offsets: number[], acks: Array<() => void>, indexes?: number[]): void {
    const pending = delivery.pending;
    for (let item = 0; item < offsets.length; item++) {
      const position = indexes === undefined ? -1 : indexes[item];
      if (position < 0) {
        pending.set(offsets[item], acks[item]);
        continue;
      }
      let slots = pending.get(offsets[item]);
      if (typeof slots !== "object") {
        slots = new Map();
        pending.set(offsets[item], slots);
      }
      slots.set(position, acks[item]);
    }
  }

  /**
   * Acknowledges the offsets named by a message's msg.kafka when it is this node's and of the current delivery.
   * Returns how many events it acknowledged: 0 for a foreign, stale or repeated acknowledgement (ignored, no error).
   */
  acknowledge(meta: unknown): number {
    if (meta === null || typeof meta !== "object") return 0;
    const { consumer, generation, topic, partition, offsets, indexes } = meta as Partial<KafkaMessageMeta>;
    if (consumer !== this.consumerId || !Array.isArray(offsets)) return 0;
    const delivery = this.deliveries.get(`${partition}:${topic}`);
    if (!delivery || delivery.token !== generation) return 0;
    let acknowledged = 0;
    const pending = delivery.pending;
    for (let item = 0; item < offsets.length; item++) {
      const offset = offsets[item];
      const entry = pending.get(offset);
      if (entry === undefined) continue;
      let ack: (() => void) | undefined;
      if (typeof entry === "function") {
        ack = entry;
        pending.delete(offset);
      } else {
        const position = Array.isArray(indexes) ? indexes[item] : undefined;
        ack = position === undefined ? undefined : entry.get(position);
        if (ack === undefined) continue;
        entry.delete(position!);
        if (entry.size === 0) pending.delete(offset);
      }
      ack();
      acknowledged++;
    }
    return acknowledged;
  }

  /** Forgets everything (close): acks arriving later are ignored. */
  clear(): void {
    this.deliveries.clear();
  }
}
