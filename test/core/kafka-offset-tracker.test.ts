import assert from "node:assert/strict";
import { OffsetTracker, type CommitOffset } from "../../src/core/kafka/offset-tracker";

const T = "sensor-events";

/** The offsets a commit would write now, as { partition: offset } (what a restarted consumer resumes from). */
function commitPoints(tracker: OffsetTracker): Record<number, number> {
  const result: Record<number, number> = {};
  for (const { partition, offset } of tracker.takeCommit(0)) result[partition] = Number(offset);
  return result;
}

describe("core/kafka/offset-tracker", () => {
  it("commits past every message once all are acked in order", () => {
    const tracker = new OffsetTracker();
    const tracked = [0, 1, 2].map((offset) => tracker.track(T, 0, String(offset)));
    tracked.forEach((entry) => assert.equal(tracker.ack(entry), true));
    assert.deepEqual(commitPoints(tracker), { 0: 3 });
    assert.equal(tracker.inFlight, 0);
  });

  it("never commits past an unacked message when acks come out of order", () => {
    const tracker = new OffsetTracker();
    const [m10, m11, m12, m13] = [10, 11, 12, 13].map((offset) => tracker.track(T, 0, offset));
    tracker.ack(m13);
    tracker.ack(m11);
    assert.equal(tracker.hasUncommitted(), true, "10 is the resume point even before any ack");
    assert.deepEqual(commitPoints(tracker), { 0: 10 }, "10 is unfinished: a crash must replay it");
    tracker.markCommitted([{ topic: T, partition: 0, offset: "10" }]);
    tracker.ack(m10);
    assert.deepEqual(commitPoints(tracker), { 0: 12 }, "10 and 11 done, 12 still open");
    tracker.ack(m12);
    assert.deepEqual(commitPoints(tracker), { 0: 14 });
    assert.equal(tracker.inFlight, 0);
  });

  it("handles offset gaps (compacted topics, transaction markers): contiguity is over handed-out offsets", () => {
    const tracker = new OffsetTracker();
    const a = tracker.track(T, 0, 5);
    const b = tracker.track(T, 0, 9);
    const c = tracker.track(T, 0, 20);
    tracker.ack(c);
    tracker.ack(a);
    assert.deepEqual(commitPoints(tracker), { 0: 9 });
    tracker.ack(b);
    assert.deepEqual(commitPoints(tracker), { 0: 21 });
    tracker.skipTo(T, 0, 25);
    assert.deepEqual(commitPoints(tracker), { 0: 25 }, "markers after the last message need no ack");
  });

  it("counts a packed record's events in flight, and lets a revoke release them", () => {
    const tracker = new OffsetTracker();
    const packed = tracker.track("t", 0, 0, 250);
    tracker.track("t", 0, 1);
    tracker.track("t", 1, 0, 40);
    assert.equal(tracker.inFlight, 291, "events, not records");
    assert.equal(tracker.ack(packed), true);
    assert.equal(tracker.inFlight, 41);
    assert.equal(tracker.acksSinceCommit, 250);
    tracker.revoke("t", 1);
    assert.equal(tracker.inFlight, 1);
  });

  it("knows each partition's position: the next offset it hands out, acked or not, past skipped offsets", () => {
    const tracker = new OffsetTracker();
    assert.equal(tracker.position(T, 0), null, "nothing handed out yet");
    tracker.track(T, 0, 7);
    tracker.track(T, 0, 8);
    assert.equal(tracker.position(T, 0), 9);
    tracker.skipTo(T, 0, 12);
    assert.equal(tracker.position(T, 0), 12);
    tracker.revoke(T, 0);
    assert.equal(tracker.position(T, 0), null, "a revoked partition is read from its commit again");
  });

  it("keeps partitions independent", () => {
    const tracker = new OffsetTracker();
    const p0 = [0, 1].map((offset) => tracker.track(T, 0, offset));
    const p1 = [100, 101].map((offset) => tracker.track(T, 1, offset));
    const other = tracker.track("alarms", 0, 7);
    tracker.ack(p0[1]);
    tracker.ack(p1[0]);
    tracker.ack(other);
    const offsets = tracker.takeCommit(0);
    const byKey = Object.fromEntries(offsets.map((entry: CommitOffset) => [`${entry.topic}/${entry.partition}`, entry.offset]));
    assert.deepEqual(byKey, { [`${T}/0`]: "0", [`${T}/1`]: "101", "alarms/0": "8" });
    assert.equal(tracker.inFlight, 2, "p0@0 and p1@101 are open");
  });

  it("offers a partition for commit only when its point moved past the last commit", () => {
    const tracker = new OffsetTracker();
    const a = tracker.track(T, 0, 0);
    tracker.ack(a);
    const first = tracker.takeCommit(0);
    assert.deepEqual(first, [{ topic: T, partition: 0, offset: "1" }]);
    tracker.markCommitted(first);
    assert.deepEqual(tracker.takeCommit(0), [], "nothing new");
    assert.equal(tracker.hasUncommitted(), false);
  });

  it("offers the same offsets again after a failed commit (not marked committed)", () => {
    const tracker = new OffsetTracker();
    tracker.ack(tracker.track(T, 0, 0));
    assert.deepEqual(tracker.takeCommit(0), [{ topic: T, partition: 0, offset: "1" }]);
    assert.deepEqual(tracker.takeCommit(0), [{ topic: T, partition: 0, offset: "1" }]);
  });

  it("ignores a repeated ack and an ack for an offset never handed out", () => {
    const tracker = new OffsetTracker();
    const a = tracker.track(T, 0, 0);
    tracker.track(T, 0, 1);
    assert.equal(tracker.ack(a), true);
    assert.equal(tracker.ack(a), false);
    assert.equal(tracker.inFlight, 1);
    assert.equal(tracker.acksSinceCommit, 1);
  });

  it("drops a revoked partition: its late acks are stale, in-flight shrinks, other partitions keep going", () => {
    const tracker = new OffsetTracker();
    const lost = [0, 1, 2].map((offset) => tracker.track(T, 0, offset));
    const kept = tracker.track(T, 1, 0);
    assert.equal(tracker.inFlight, 4);
    tracker.revoke(T, 0);
    assert.equal(tracker.inFlight, 1);
    assert.equal(tracker.ack(lost[0]), false, "the new owner of partition 0 replays it; this ack must not commit for it");
    tracker.ack(kept);
    assert.deepEqual(commitPoints(tracker), { 1: 1 });
  });

  it("starts a partition over when it is reassigned and delivered again from the committed offset", () => {
    const tracker = new OffsetTracker();
    const old = [0, 1, 2, 3].map((offset) => tracker.track(T, 0, offset));
    tracker.ack(old[0]);
    tracker.revokeAll();
    assert.equal(tracker.inFlight, 0);
    const again = [1, 2, 3].map((offset) => tracker.track(T, 0, offset));
    tracker.ack(old[1]); // a late ack of the first delivery
    assert.deepEqual(commitPoints(tracker), { 0: 1 }, "only acks of the current delivery count");
    again.forEach((entry) => tracker.ack(entry));
    assert.deepEqual(commitPoints(tracker), { 0: 4 });
  });

  it("treats a rewind (offset at or before one handed out) as a new delivery of the partition", () => {
    const tracker = new OffsetTracker();
    const first = [5, 6, 7].map((offset) => tracker.track(T, 0, offset));
    const replay = tracker.track(T, 0, 6);
    assert.equal(tracker.inFlight, 1, "the earlier deliveries were dropped");
    assert.equal(tracker.ack(first[0]), false);
    tracker.ack(replay);
    assert.deepEqual(commitPoints(tracker), { 0: 7 });
  });

  it("numbers each delivery of a partition with a new generation, so an ack can say which delivery it belongs to", () => {
    const tracker = new OffsetTracker();
    const first = [0, 1].map((offset) => tracker.track(T, 0, offset));
    const other = tracker.track(T, 1, 0);
    assert.equal(first[0].generation, first[1].generation, "one delivery, one generation");
    assert.notEqual(other.generation, first[0].generation, "partitions are numbered apart");
    const rewound = tracker.track(T, 0, 0);
    assert.ok(rewound.generation > first[0].generation, "a rewind starts a new generation");
    assert.equal(tracker.track(T, 1, 1).generation, other.generation, "the other partition keeps its generation");
    tracker.revokeAll();
    const rejoined = tracker.track(T, 1, 0);
    assert.ok(rejoined.generation > rewound.generation, "a re-join starts new generations");
  });

  it("coalesces commits: due after commitEveryAcks acks, or after commitIntervalMs with something to commit", () => {
    const tracker = new OffsetTracker({ commitEveryAcks: 3, commitIntervalMs: 1000 }, 0);
    const tracked = [0, 1, 2, 3].map((offset) => tracker.track(T, 0, offset));
    tracker.ack(tracked[0]);
    tracker.ack(tracked[1]);
    assert.equal(tracker.commitDue(10), false, "2 acks, 10 ms: not yet");
    tracker.ack(tracked[2]);
    assert.equal(tracker.commitDue(10), true, "3 acks");
    tracker.markCommitted(tracker.takeCommit(10));
    tracker.ack(tracked[3]);
    assert.equal(tracker.commitDue(500), false);
    assert.equal(tracker.commitDue(1010), true, "interval passed since the last commit");
    tracker.markCommitted(tracker.takeCommit(1010));
    assert.equal(tracker.commitDue(5000), false, "nothing new to commit, however long it has been");
  });

  it("is not due when acks only filled gaps behind an unfinished offset", () => {
    const tracker = new OffsetTracker({ commitEveryAcks: 2, commitIntervalMs: 1000 }, 0);
    const tracked = [0, 1, 2].map((offset) => tracker.track(T, 0, offset));
    tracker.markCommitted([{ topic: T, partition: 0, offset: "0" }]);
    tracker.ack(tracked[1]);
    tracker.ack(tracked[2]);
    assert.equal(tracker.commitDue(10), false, "offset 0 is still open, the commit point has not moved");
  });

  it("keeps exact bookkeeping over 100k messages acked in shuffled order", () => {
    const tracker = new OffsetTracker();
    const count = 100_000;
    const tracked = Array.from({ length: count }, (_, offset) => tracker.track(T, 0, offset));
    // Deterministic shuffle (LCG) so a failure is reproducible.
    let seed = 12345;
    for (let index = count - 1; index > 0; index--) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const other = seed % (index + 1);
      [tracked[index], tracked[other]] = [tracked[other], tracked[index]];
    }
    let lowestOpen = 0;
    const done = new Uint8Array(count);
    for (let index = 0; index < count; index++) {
      tracker.ack(tracked[index]);
      done[tracked[index].offset] = 1;
      while (lowestOpen < count && done[lowestOpen]) lowestOpen++;
      if (index % 9973 === 0) assert.deepEqual(commitPoints(tracker), { 0: lowestOpen });
    }
    assert.equal(tracker.inFlight, 0);
    assert.deepEqual(commitPoints(tracker), { 0: count });
  });

  it("keeps its memory bounded behind a message that stays out: finished offsets after it are dropped, the commit point holds", () => {
    const tracker = new OffsetTracker();
    const stuck = tracker.track(T, 0, 0);
    const late = tracker.track(T, 0, 1);
    for (let offset = 2; offset <= 200_000; offset++) tracker.ack(tracker.track(T, 0, offset));
    assert.ok(stuck.state.entries <= 2 * 1024 + 2, `${stuck.state.entries} entries kept for 2 messages out`);
    assert.deepEqual(commitPoints(tracker), { 0: 0 }, "the commit point waits for offset 0");
    assert.equal(tracker.ack(tracker.track(T, 0, 200_001)), true);
    assert.equal(tracker.inFlight, 2);
    assert.equal(tracker.ack(stuck), true);
    assert.deepEqual(commitPoints(tracker), { 0: 1 }, "then for offset 1, also kept");
    assert.equal(tracker.ack(late), true);
    assert.equal(tracker.ack(late), false, "a repeated ack is still recognised");
    assert.deepEqual(commitPoints(tracker), { 0: 200_002 });
    assert.equal(tracker.inFlight, 0);
  });

  it("reports a partition whose commit point stands still with events in flight, once per stall", () => {
    const tracker = new OffsetTracker();
    const held = tracker.track(T, 0, 10); // never acked: a node failed it
    for (const tracked of [tracker.track(T, 0, 11), tracker.track(T, 0, 12, 5)]) tracker.ack(tracked); // the point stays at 10
    tracker.ack(tracker.track(T, 1, 40)); // partition 1 is all acknowledged
    assert.deepEqual(tracker.stalls(60_000, 0), [], "the first look only notes where each commit point is");
    assert.deepEqual(tracker.stalls(60_000, 59_999), []);
    assert.deepEqual(tracker.stalls(60_000, 60_000), [{ topic: T, partition: 0, offset: 10, inFlight: 1, forMs: 60_000 }]);
    assert.deepEqual(tracker.stalls(60_000, 300_000), [], "reported once");

    // The held message finishes and the next one holds the partition: a new stall, reported after 60 s again.
    const next = tracker.track(T, 0, 13, 3);
    tracker.ack(held);
    assert.deepEqual(tracker.stalls(60_000, 310_000), []);
    assert.deepEqual(tracker.stalls(60_000, 370_000), [{ topic: T, partition: 0, offset: 13, inFlight: 3, forMs: 60_000 }]);
    tracker.ack(next);
    assert.deepEqual(tracker.stalls(60_000, 1_000_000), [], "nothing in flight: nothing stalled");
  });

  it("rejects options and offsets that cannot work, naming them", () => {
    assert.throws(() => new OffsetTracker({ commitEveryAcks: 0 }), /commitEveryAcks/);
    assert.throws(() => new OffsetTracker({ commitIntervalMs: 0 }), /commitIntervalMs/);
    const tracker = new OffsetTracker();
    assert.throws(() => tracker.track(T, 0, "-1"), /offset of sensor-events\[0\]/);
    assert.throws(() => tracker.track(T, 0, "abc"), /non-negative integer/);
  });
});
