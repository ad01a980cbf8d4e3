// At-least-once offset bookkeeping for a Kafka consumer whose messages finish downstream asynchronously and in any
// order. Per partition it knows which handed-out offsets are still unfinished, and commits only up to the first of
// them: a crash then replays unfinished messages (duplicates) but never skips one (loss).
//
// Commits are coalesced (every `commitEveryAcks` acks or every `commitIntervalMs`), never one per message: a
// package that committed per message queued ~42k OffsetCommit requests behind its fetches, they timed out and
// the consumer stalled (shared NOTES). Pure: no kafkajs, no timers; the consumer drives it.
//
// Offsets are JavaScript numbers inside (exact up to 2^53, i.e. 9 quadrillion messages per partition) and strings
// at the edges, as kafkajs gives and takes them.

/** The offset to commit for one partition: the offset of the next message the group should read. */
export interface CommitOffset {
  topic: string;
  partition: number;
  offset: string;
}

/** Returned by `track`; pass it back to `ack` when the message is finished. Stale after its partition is revoked. */
export interface TrackedOffset {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  /** Generation of the partition's bookkeeping this delivery belongs to (PartitionState.generation). */
  readonly generation: number;
  /** Events the message holds (more than 1 for a packed record): what it weighs in `inFlight`. */
  readonly events: number;
  /** @internal the partition state the offset belongs to */
  readonly state: PartitionState;
}

/** A partition whose commit point has not moved for a while although events of it are still in flight. */
export interface StalledPartition {
  topic: string;
  partition: number;
  /** The first unacknowledged offset: the message holding the commit point. */
  offset: number;
  /** Events of the partition handed out and not acknowledged. */
  inFlight: number;
  /** How long the commit point has stood still, in ms (at least the `afterMs` asked for). */
  forMs: number;
}

export interface OffsetTrackerOptions {
  /** Commit once this many events have been acked since the last commit (default 1000). */
  commitEveryAcks?: number;
  /** Otherwise commit finished offsets at most this long after they finished (default 1000 ms). */
  commitIntervalMs?: number;
}

/** @internal Bookkeeping of one assigned partition. Replaced (not reset) on revoke, so late acks for it are recognised as stale. */
export class PartitionState {
  revoked = false;
  /** Handed-out offsets, ascending; entries before `head` are finished and behind the commit point. */
  private offsets: number[] = [];
  /** Parallel to `offsets`: true once that message is finished. */
  private done: boolean[] = [];
  private head = 0;
  unfinished = 0;
  /** Events of the unfinished messages (a packed record counts each of its events). */
  unfinishedEvents = 0;
  /** Next offset after everything handed out (or skipped); null before the first message. */
  end: number | null = null;
  /** Last offset committed for this partition in this assignment (next offset to read); null if none yet. */
  committed: number | null = null;

  constructor(
    readonly topic: string,
    readonly partition: number,
    /** Unique per tracker and growing: a partition delivered again (rebalance, rewind) gets a new number. */
    readonly generation: number = 0,
  ) {}

  /** False when `offset` is not after the last handed-out offset (a rewind: the caller starts a new state). */
  canTrack(offset: number): boolean {
    return this.end === null || offset >= this.end;
  }

  track(offset: number): void {
    this.offsets.push(offset);
    this.done.push(false);
    this.unfinished++;
    this.end = offset + 1;
  }

  /** Index of a live handed-out offset, or -1. Offsets are usually consecutive, so the first guess nearly always hits. */
  private indexOf(offset: number): number {
    const { offsets, head } = this;
    const length = offsets.length;
    if (head >= length || offset < offsets[head] || offset > offsets[length - 1]) return -1;
    const guess = head + (offset - offsets[head]);
    if (guess < length && offsets[guess] === offset) return guess;
    let low = head;
    let high = length - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const value = offsets[middle];
      if (value === offset) return middle;
      if (value < offset) low = middle + 1;
      else high = middle - 1;
    }
    return -1;
  }

  /** Marks one handed-out offset finished; false if it was not outstanding (unknown or already acked). */
  finish(offset: number): boolean {
    const index = this.indexOf(offset);
    if (index < 0 || this.done[index]) return false;
    this.done[index] = true;
    this.unfinished--;
    // Advance past the finished prefix: everything before the first unfinished offset is done.
    const { done } = this;
    let head = this.head;
    while (head < done.length && done[head]) head++;
    this.head = head;
    if (head === done.length) {
      this.offsets.length = 0;
      this.done.length = 0;
      this.head = 0;
      return true;
    }
    // Finished entries behind the first unfinished one are only kept to be skipped over later. Behind a message that
    // stays out for long (a retry, a sink waiting for its disk) they would pile up with every later message: drop them
    // once they outnumber the unfinished ones. Each compaction follows at least 1024 acks, so it costs O(1) per ack.
    const live = done.length - head;
    const finishedBehind = live - this.unfinished;
    if (finishedBehind > 1024 && finishedBehind * 2 > live) this.compact();
    else if (head > 1024 && head * 2 > done.length) {
      this.offsets = this.offsets.slice(head);
      this.done = this.done.slice(head);
      this.head = 0;
    }
    return true;
  }

  /** Keeps only the unfinished offsets (still ascending): the commit point and later lookups are unchanged. */
  private compact(): void {
    const { offsets, done } = this;
    const kept: number[] = [];
    for (let index = this.head; index < offsets.length; index++) if (!done[index]) kept.push(offsets[index]);
    this.offsets = kept;
    this.done = new Array<boolean>(kept.length).fill(false);
    this.head = 0;
  }

  /** @internal Entries kept (unfinished ones and finished ones not yet dropped), for tests of the memory bound. */
  get entries(): number {
    return this.offsets.length - this.head;
  }

  /** The batch ended at `nextOffset` without more messages for us (e.g. transaction markers): nothing to wait for there. */
  skipTo(nextOffset: number): void {
    if (this.end === null || nextOffset > this.end) this.end = nextOffset;
  }

  /** First unfinished offset, or the end when everything handed out is finished; null before any message. */
  commitPoint(): number | null {
    if (this.head < this.offsets.length) return this.offsets[this.head];
    return this.end;
  }

  needsCommit(): boolean {
    const point = this.commitPoint();
    return point !== null && (this.committed === null || point > this.committed);
  }
}

function toOffsetNumber(offset: string | number, topic: string, partition: number, what = "offset"): number {
  const value = typeof offset === "number" ? offset : Number(offset);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${what} of ${topic}[${partition}] must be a non-negative integer offset (got ${JSON.stringify(offset)})`);
  }
  return value;
}

export class OffsetTracker {
  readonly commitEveryAcks: number;
  readonly commitIntervalMs: number;
  private readonly partitions = new Map<string, PartitionState>();
  /** The partition of the previous track(): a batch is one partition, so this skips the map lookup. */
  private lastState: PartitionState | null = null;
  private inFlightCount = 0;
  private acksSinceLastCommit = 0;
  private lastCommitAt: number;
  private generations = 0;
  /** Per partition delivery: the commit point last seen by stalls(), since when, and whether it was reported. */
  private readonly stallWatch = new WeakMap<PartitionState, { point: number | null; since: number; reported: boolean }>();

  constructor(options: OffsetTrackerOptions = {}, now: number = Date.now()) {
    this.commitEveryAcks = options.commitEveryAcks ?? 1000;
    this.commitIntervalMs = options.commitIntervalMs ?? 1000;
    if (!Number.isInteger(this.commitEveryAcks) || this.commitEveryAcks < 1) {
      throw new RangeError(`"commitEveryAcks" must be a whole number of at least 1 (got ${JSON.stringify(options.commitEveryAcks)})`);
    }
    if (!Number.isFinite(this.commitIntervalMs) || this.commitIntervalMs < 1) {
      throw new RangeError(`"commitIntervalMs" must be at least 1 ms (got ${JSON.stringify(options.commitIntervalMs)})`);
    }
    this.lastCommitAt = now;
  }

  /** Events handed out and not yet acked, over all partitions (a packed record weighs its event count). */
  get inFlight(): number {
    return this.inFlightCount;
  }

  /** Events acked since the last `takeCommit`. */
  get acksSinceCommit(): number {
    return this.acksSinceLastCommit;
  }

  /** Records that the message at `offset` was handed downstream. Offsets of a partition must come in ascending order;
   *  an offset at or before one already handed out means the client rewound (seek, rebalance): the partition's
   *  bookkeeping starts over and acks of the earlier deliveries are ignored. */
  track(topic: string, partition: number, offset: string | number, events = 1): TrackedOffset {
    const value = toOffsetNumber(offset, topic, partition);
    let state = this.lastState;
    if (state === null || state.partition !== partition || state.topic !== topic || state.revoked) {
      state = this.partitions.get(partitionKey(topic, partition)) ?? null;
    }
    if (state && !state.canTrack(value)) {
      this.revoke(topic, partition);
      state = null;
    }
    if (state === null) {
      state = new PartitionState(topic, partition, ++this.generations);
      this.partitions.set(partitionKey(topic, partition), state);
    }
    this.lastState = state;
    state.track(value);
    state.unfinishedEvents += events;
    this.inFlightCount += events;
    return { topic, partition, offset: value, generation: state.generation, events, state };
  }

  /** Marks a handed-out message finished. Returns false (and changes nothing) for a stale or repeated ack. */
  ack(tracked: TrackedOffset): boolean {
    if (tracked.state.revoked) return false;
    if (!tracked.state.finish(tracked.offset)) return false;
    tracked.state.unfinishedEvents -= tracked.events;
    this.inFlightCount -= tracked.events;
    this.acksSinceLastCommit += tracked.events;
    return true;
  }

  /** A batch of this partition ended at `nextOffset` (exclusive) with no further message to hand out. */
  skipTo(topic: string, partition: number, nextOffset: string | number): void {
    const value = toOffsetNumber(nextOffset, topic, partition, "next offset");
    const state = this.partitions.get(partitionKey(topic, partition));
    if (state) state.skipTo(value);
  }

  /** The partition left this consumer (rebalance, crash): forget it; its outstanding acks become stale. */
  revoke(topic: string, partition: number): void {
    const key = partitionKey(topic, partition);
    const state = this.partitions.get(key);
    if (!state) return;
    state.revoked = true;
    this.inFlightCount -= state.unfinishedEvents;
    this.partitions.delete(key);
  }

  /** Every partition left (the group was re-joined: the client restarts each partition from its committed offset). */
  revokeAll(): void {
    for (const state of this.partitions.values()) state.revoked = true;
    this.partitions.clear();
    this.inFlightCount = 0;
  }

  /** True when some partition has finished offsets past its last commit. */
  hasUncommitted(): boolean {
    for (const state of this.partitions.values()) if (state.needsCommit()) return true;
    return false;
  }

  /** Whether to commit now: after `commitEveryAcks` acks, or once `commitIntervalMs` has passed with something to commit. */
  commitDue(now: number = Date.now()): boolean {
    if (this.acksSinceLastCommit >= this.commitEveryAcks) return this.hasUncommitted();
    return now - this.lastCommitAt >= this.commitIntervalMs && this.hasUncommitted();
  }

  /** The offsets to commit now (one per partition that moved) and restarts the coalescing counters. */
  takeCommit(now: number = Date.now()): CommitOffset[] {
    const offsets: CommitOffset[] = [];
    for (const state of this.partitions.values()) {
      if (!state.needsCommit()) continue;
      offsets.push({ topic: state.topic, partition: state.partition, offset: String(state.commitPoint()) });
    }
    this.acksSinceLastCommit = 0;
    this.lastCommitAt = now;
    return offsets;
  }

  /** The broker accepted these offsets. (Not called after a failed commit: the next `takeCommit` offers them again.) */
  markCommitted(offsets: CommitOffset[]): void {
    for (const { topic, partition, offset } of offsets) {
      const state = this.partitions.get(partitionKey(topic, partition));
      const value = Number(offset);
      if (state && (state.committed === null || value > state.committed)) state.committed = value;
    }
  }

  /** Next offset this consumer hands out on a partition (after everything delivered or skipped); null before its first message. */
  position(topic: string, partition: number): number | null {
    return this.partitions.get(partitionKey(topic, partition))?.end ?? null;
  }

  /**
   * Partitions whose commit point has stood still for `afterMs` while some of their events are in flight: a message
   * that never came back (failed in a node, dropped without being passed back) holds them. Each stall is reported
   * once; a partition is reported again only after its commit point moved and stood still again. Meant to be called
   * periodically: a commit point is seen as standing still from the first call that saw it.
   */
  stalls(afterMs: number, now: number = Date.now()): StalledPartition[] {
    const stalled: StalledPartition[] = [];
    for (const state of this.partitions.values()) {
      const point = state.commitPoint();
      let watch = this.stallWatch.get(state);
      if (watch === undefined || watch.point !== point || state.unfinishedEvents === 0) {
        watch = { point, since: now, reported: false };
        this.stallWatch.set(state, watch);
        continue;
      }
      if (watch.reported || point === null || now - watch.since < afterMs) continue;
      watch.reported = true;
      stalled.push({ topic: state.topic, partition: state.partition, offset: point, inFlight: state.unfinishedEvents, forMs: now - watch.since });
    }
    return stalled;
  }

  /** Position per partition, for status and tests: first unfinished offset (or end) and outstanding count. */
  snapshot(): Array<{ topic: string; partition: number; commitPoint: number | null; committed: number | null; unfinished: number }> {
    return [...this.partitions.values()].map((state) => ({
      topic: state.topic,
      partition: state.partition,
      commitPoint: state.commitPoint(),
      committed: state.committed,
      unfinished: state.unfinished,
    }));
  }
}

function partitionKey(topic: string, partition: number): string {
  return `${partition}:${topic}`;
}
