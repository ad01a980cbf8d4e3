// The Kafka core against a real Apache Kafka broker (scripts/kafka-local.sh, or KAFKA_BROKERS): batching producer,
// at-least-once consumer with acks and coalesced commits, resume after a stop, malformed values, the in-flight bound.
import assert from "node:assert/strict";
import net from "node:net";
import { validateEvent, type SensorEvent } from "../../src/core/event";
import { KafkaEventConsumer, type ConsumerOptions } from "../../src/core/kafka/consumer";
import { KafkaEventProducer, KafkaSendError } from "../../src/core/kafka/producer";
import type { CommitOffset } from "../../src/core/kafka/offset-tracker";
import type { ConsumedRecord, KafkaClientStatus } from "../../src/core/kafka/types";
import { committedOffsets, createTopic, endOffsets, kafkaBrokers, produceRaw, uniqueName } from "../support/kafka-broker";
import { pollUntil } from "../support/medallion";

function makeEvents(count: number, sensors: number, startTime = 1_700_000_000_000): SensorEvent[] {
  const events: SensorEvent[] = [];
  for (let index = 0; index < count; index++) {
    events.push(
      validateEvent({
        sensorId: `pump-${index % sensors}`,
        timestamp: startTime + index * 1000,
        readings: { vibration: 2 + (index % 7) * 0.1, temperature: 40 + (index % 5) },
      }),
    );
  }
  return events;
}

/** A promise with its resolve/reject outside, for "wait until the handler has seen N messages". */
function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: Error) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Fails with `what` if `promise` has not settled after `ms` (so a hang names what it waited for). */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

describe("integration: Kafka core against a real broker", function () {
  this.timeout(60_000);
  let brokers: string;
  const cleanups: Array<() => Promise<void>> = [];

  before(async function () {
    this.timeout(240_000); // a cold first start downloads the broker's jars
    brokers = await kafkaBrokers();
  });

  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()!().catch(() => {});
  });

  function producer(): KafkaEventProducer {
    const client = new KafkaEventProducer({ brokers, clientId: "kafka-core-test" });
    cleanups.push(() => client.close());
    return client;
  }

  function consumer(options: Omit<ConsumerOptions, "fromBeginning"> & { fromBeginning?: boolean }): KafkaEventConsumer {
    const client = new KafkaEventConsumer({ brokers, clientId: "kafka-core-test" }, { fromBeginning: true, ...options });
    const problems: string[] = [];
    client.on("problem", ({ context, error }) => problems.push(`${context}: ${error.message}`));
    cleanups.push(() => client.stop({ drainTimeoutMs: 0 }));
    return client;
  }

  it("delivers 5000 events sent in 1000-event batches exactly once, in order per sensor, with few coalesced commits", async () => {
    const topic = await createTopic("core-roundtrip", 3);
    const groupId = uniqueName("core-roundtrip");
    const events = makeEvents(5000, 25);
    const out = producer();
    assert.equal(await out.connect(), true);
    let sent = 0;
    for (let start = 0; start < events.length; start += 1000) {
      const result = await out.send(topic, events.slice(start, start + 1000), { compression: start === 0 ? "gzip" : "none" });
      sent += result.count;
      assert.ok(result.partitions.length >= 1);
    }
    assert.equal(sent, 5000);

    const seen = new Map<string, number>();
    const lastTimestamp = new Map<string, number>();
    let outOfOrder = 0;
    const all = deferred();
    const commits: CommitOffset[][] = [];
    const input = consumer({ groupId, topics: [topic] });
    input.on("commit", (offsets) => commits.push(offsets));
    const pendingAcks: Array<() => void> = [];
    await input.start((record, ack) => {
      assert.equal(record.ok, true, record.error?.message);
      const event = record.event!;
      seen.set(event.eventId, (seen.get(event.eventId) ?? 0) + 1);
      if ((lastTimestamp.get(event.sensorId) ?? -Infinity) > event.timestamp) outOfOrder++;
      lastTimestamp.set(event.sensorId, event.timestamp);
      // Downstream finishes asynchronously, a few at a time, like Node-RED's message delivery.
      pendingAcks.push(ack);
      if (pendingAcks.length === 1) setImmediate(() => pendingAcks.splice(0).forEach((done) => done()));
      if (seen.size === 5000) all.resolve();
    });
    await within(all.promise, 30_000, "all 5000 events");
    await input.stop();

    assert.equal(seen.size, 5000, "every event arrived");
    assert.deepEqual([...seen.values()].filter((count) => count !== 1), [], "none twice");
    assert.equal(outOfOrder, 0, "each sensor's events kept their order (one key, one partition)");
    assert.deepEqual(await committedOffsets(groupId, topic), await endOffsets(topic), "the group committed up to the end of every partition");
    assert.ok(commits.length >= 1 && commits.length <= 25, `commits were coalesced (${commits.length} commit requests for 5000 acks)`);
  });

  it("resumes a group from the first unacked offset per partition after a consumer stops: nothing lost", async () => {
    const topic = await createTopic("core-resume", 3);
    const groupId = uniqueName("core-resume");
    await producer().send(topic, makeEvents(300, 30));
    const ends = await endOffsets(topic);
    // Per partition, the first consumer acks the first half out of order, leaves one message (the hole) unacked,
    // acks the one after it, and never acks the rest.
    const hole = new Map([...ends].map(([partition, end]) => [partition, Math.floor(end / 2)]));

    const received = new Map<number, Array<{ offset: number; ack: () => void }>>();
    let count = 0;
    const firstAll = deferred();
    const first = consumer({ groupId, topics: [topic] });
    await first.start((record, ack) => {
      const list = received.get(record.partition) ?? [];
      list.push({ offset: Number(record.offset), ack });
      received.set(record.partition, list);
      if (++count === 300) firstAll.resolve();
    });
    await within(firstAll.promise, 20_000, "the first consumer to receive 300 events");
    const ackedByFirst = new Set<string>();
    for (const [partition, list] of received) {
      const holeOffset = hole.get(partition)!;
      for (const entry of [...list].reverse()) {
        if (entry.offset < holeOffset || entry.offset === holeOffset + 1) {
          entry.ack();
          ackedByFirst.add(`${partition}@${entry.offset}`);
        }
      }
    }
    assert.equal(first.inFlight, 300 - ackedByFirst.size);
    await first.stop({ drainTimeoutMs: 0 });
    assert.deepEqual(await committedOffsets(groupId, topic), hole, "committed exactly up to each partition's first unacked offset");

    const second = consumer({ groupId, topics: [topic] });
    const expected = [...ends].reduce((sum, [partition, end]) => sum + end - hole.get(partition)!, 0);
    const secondOffsets = new Map<number, number[]>();
    let secondCount = 0;
    const secondAll = deferred();
    await second.start((record, ack) => {
      const list = secondOffsets.get(record.partition) ?? [];
      list.push(Number(record.offset));
      secondOffsets.set(record.partition, list);
      ack();
      if (++secondCount === expected) secondAll.resolve();
    });
    await within(secondAll.promise, 20_000, `the second consumer to receive ${expected} events`);
    await second.stop();

    for (const [partition, end] of ends) {
      const offsets = secondOffsets.get(partition) ?? [];
      const holeOffset = hole.get(partition)!;
      assert.deepEqual(offsets, Array.from({ length: end - holeOffset }, (_, index) => holeOffset + index), `partition ${partition} resumed at ${holeOffset}`);
      for (let offset = 0; offset < end; offset++) {
        assert.ok(ackedByFirst.has(`${partition}@${offset}`) || offsets.includes(offset), `partition ${partition} offset ${offset} was lost`);
      }
      const duplicates = offsets.filter((offset) => ackedByFirst.has(`${partition}@${offset}`));
      assert.deepEqual(duplicates, [holeOffset + 1], "only the message acked behind the hole came twice");
    }
    assert.deepEqual(await committedOffsets(groupId, topic), ends);
  });

  it("reports malformed values as errors with their offsets and goes on consuming", async () => {
    const topic = await createTopic("core-malformed", 1);
    const good = (sensorId: string) => JSON.stringify({ sensorId, timestamp: 1_700_000_000_000, readings: { vibration: 1 } });
    await produceRaw(topic, [
      { key: "a", value: good("first") },
      { key: "b", value: "temperature=41.3" },
      { key: "c", value: "" },
      { key: "d", value: null },
      { key: "e", value: JSON.stringify({ timestamp: 1, readings: { vibration: 1 } }) },
      { key: "f", value: JSON.stringify({ sensorId: "x", timestamp: 1, readings: { vibration: "n/a" } }) },
      { key: "g", value: good("last") },
    ]);
    const records: ConsumedRecord[] = [];
    const all = deferred();
    const groupId = uniqueName("core-malformed");
    const input = consumer({ groupId, topics: [topic] });
    await input.start((record, ack) => {
      records.push(record);
      ack();
      if (records.length === 7) all.resolve();
    });
    await within(all.promise, 20_000, "7 records");
    await input.stop();

    assert.deepEqual(
      records.filter((record) => record.ok).map((record) => [record.offset, record.event!.sensorId]),
      [
        ["0", "first"],
        ["6", "last"],
      ],
    );
    const errors = records.filter((record) => !record.ok).map((record) => record.error!);
    assert.deepEqual(
      errors.map((error) => [error.offset, error.field, error.rawValue, error.key]),
      [
        ["1", "payload", "temperature=41.3", "b"],
        ["2", "value", "", "c"],
        ["3", "value", null, "d"],
        ["4", "sensorId", JSON.stringify({ timestamp: 1, readings: { vibration: 1 } }), "e"],
        ["5", "readings.vibration", JSON.stringify({ sensorId: "x", timestamp: 1, readings: { vibration: "n/a" } }), "f"],
      ],
    );
    assert.match(errors[0].message, new RegExp(`^${topic}\\[0\\]@1: payload is not valid JSON`));
    assert.deepEqual(await committedOffsets(groupId, topic), new Map([[0, 7]]), "errors are acked too: the partition is not stuck");
  });

  it("holds delivery at maxInFlight unacked messages and resumes as acks come back", async () => {
    const topic = await createTopic("core-inflight", 3);
    await producer().send(topic, makeEvents(1000, 10));
    const input = consumer({ groupId: uniqueName("core-inflight"), topics: [topic], maxInFlight: 100, resumeBelow: 50 });
    const statuses: KafkaClientStatus[] = [];
    const paused = deferred();
    input.on("status", (status) => {
      statuses.push(status);
      if (status.state === "paused") paused.resolve();
    });
    const unacked: Array<() => void> = [];
    let acking = false;
    let received = 0;
    let maxUnacked = 0;
    const all = deferred();
    await input.start((_record, ack) => {
      received++;
      maxUnacked = Math.max(maxUnacked, input.inFlight);
      if (acking) setImmediate(ack);
      else unacked.push(ack);
      if (received === 1000) all.resolve();
    });
    await within(paused.promise, 20_000, "the consumer to pause at 100 unacked messages");
    assert.equal(received, 100, "delivery stopped at maxInFlight while downstream acked nothing");
    acking = true;
    unacked.splice(0).forEach((ack) => ack());
    await within(all.promise, 20_000, "all 1000 events after acks resumed delivery");
    assert.ok(maxUnacked <= 100, `never more than 100 unacked (saw ${maxUnacked})`);
    assert.ok(
      statuses.findIndex((status) => status.state === "paused") < statuses.map((status) => status.state).lastIndexOf("connected"),
      "back to connected after the pause",
    );
  });

  it("hands out a large fetch in slices, letting the event loop run between them, in order", async () => {
    const topic = await createTopic("core-slices", 1);
    await producer().send(topic, makeEvents(2000, 10));
    const input = consumer({ groupId: uniqueName("core-slices"), topics: [topic], maxInFlight: 10_000 });
    const offsets: number[] = [];
    let deliveredBeforeFirstTurn = -1;
    const all = deferred();
    await input.start((record, ack) => {
      // The flow's next node runs on a later turn of the event loop (Node-RED delivers messages asynchronously).
      if (offsets.length === 0) setImmediate(() => (deliveredBeforeFirstTurn = offsets.length));
      offsets.push(Number(record.offset));
      ack();
      if (offsets.length === 2000) all.resolve();
    });
    await within(all.promise, 20_000, "all 2000 events");
    assert.deepEqual(offsets, Array.from({ length: 2000 }, (_, index) => index), "every offset once, in order");
    // One fetch holds all 2000: without slices the flow would see none of them until the last was decoded.
    assert.ok(deliveredBeforeFirstTurn > 0 && deliveredBeforeFirstTurn <= 600, `events handed out before the event loop ran: ${deliveredBeforeFirstTurn}`);
  });

  it("reports the lag of every assigned partition from the broker: empty ones, and while delivery waits for acks", async () => {
    const topic = await createTopic("core-lag", 3);
    const out = producer();
    // One sensor: all its events are on one partition, the other two stay empty.
    await out.send(topic, makeEvents(30, 1));
    const input = consumer({ groupId: uniqueName("core-lag"), topics: [topic], maxInFlight: 10, resumeBelow: 5, lagIntervalMs: 200 });
    const lag = new Map<number, number>();
    const assignments: Array<Record<string, number[]>> = [];
    input.on("lag", (reported) => lag.set(reported.partition, reported.lag));
    input.on("assignment", (assignment) => assignments.push(assignment));
    const unacked: Array<() => void> = [];
    await input.start((_record, ack) => unacked.push(ack));

    // Delivery holds at 10 unacked, so no batch is ever handed out completely: only the broker's watermarks tell.
    const shown = () => JSON.stringify([...lag.entries()].sort());
    await pollUntil(() => lag.size === 3 && [...lag.values()].sort().join() === "0,0,20", Boolean, 20_000);
    assert.deepEqual([...lag.values()].sort(), [0, 0, 20], `lag per partition ${shown()}: 30 events, 10 handed out and unacked`);
    const busy = [...lag.entries()].find(([, value]) => value === 20)![0];
    assert.deepEqual(assignments.at(-1), { [topic]: [0, 1, 2] }, "the one member holds every partition");

    // More events while the consumer waits for acks: its lag follows without any fetch.
    await out.send(topic, makeEvents(15, 1, 1_800_000_000_000));
    await pollUntil(() => lag.get(busy), (value) => value === 35, 20_000);
    assert.equal(lag.get(busy), 35, `lag after 15 more events: ${shown()}`);
    assert.equal(unacked.length, 10, "still paused at maxInFlight");

    // Acked and read to the end: every partition at 0.
    const acker = setInterval(() => unacked.splice(0).forEach((ack) => ack()), 20);
    try {
      await pollUntil(() => [...lag.values()].every((value) => value === 0), Boolean, 20_000);
    } finally {
      clearInterval(acker);
    }
    assert.deepEqual([...lag.values()], [0, 0, 0], `lag once everything is acked: ${shown()}`);
  });

  it("names the message that holds a partition's commits once it has stood still for stallWarnMs", async () => {
    const topic = await createTopic("core-stall", 3);
    const out = producer();
    await out.send(topic, makeEvents(20, 1)); // one sensor: one partition
    const input = consumer({ groupId: uniqueName("core-stall"), topics: [topic], stallWarnMs: 400 });
    const stalls: Array<{ partition: number; offset: number; inFlight: number; forMs: number }> = [];
    input.on("stalled", (stalled) => stalls.push(stalled));
    let seen = 0;
    let partition = -1;
    // Every event is acked except the fourth: a node failed it and it never comes back.
    await input.start((record, ack) => {
      partition = record.partition;
      if (seen++ !== 3) ack();
    });
    await pollUntil(() => stalls.length, (count) => count > 0, 20_000);
    assert.equal(seen, 20);
    assert.equal(stalls.length, 1);
    assert.equal(stalls[0].partition, partition);
    assert.equal(stalls[0].offset, 3, "the first unacknowledged offset");
    assert.equal(stalls[0].inFlight, 1);
    assert.ok(stalls[0].forMs >= 400);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal(stalls.length, 1, "one report per stall");
  });

  it("keeps retrying an unreachable broker with a disconnected status, and stops cleanly", async () => {
    const port = await freePort();
    const settings = { brokers: `127.0.0.1:${port}`, connectionTimeoutMs: 500, retry: { retries: 0, initialRetryTimeMs: 100, maxRetryTimeMs: 200 } };
    const out = new KafkaEventProducer(settings, { connectWaitMs: 300 });
    const disconnected = deferred<KafkaClientStatus>();
    out.on("status", (status) => status.state === "disconnected" && disconnected.resolve(status));
    const connecting = out.connect();
    const status = await within(disconnected.promise, 10_000, "a disconnected status");
    assert.match(String(status.error?.message), /ECONNREFUSED|Connection error/);
    await assert.rejects(out.send("t", makeEvents(2, 1)), (error: unknown) => error instanceof KafkaSendError && /could not send 2 events to topic "t"/.test(error.message));
    await out.close();
    assert.equal(await connecting, false, "connect() settles as not connected once closed");
    assert.equal(out.status.state, "stopped");

    const input = new KafkaEventConsumer(settings, { groupId: "nobody", topics: ["t"] });
    const consumerDown = deferred<KafkaClientStatus>();
    input.on("status", (update) => update.state === "disconnected" && consumerDown.resolve(update));
    await within(input.start(() => assert.fail("no message can come")), 10_000, "start() to return while the broker is unreachable");
    await within(consumerDown.promise, 10_000, "the consumer's disconnected status");
    await within(input.stop(), 10_000, "stop() while retrying");
    assert.equal(input.status.state, "stopped");
  });
});
