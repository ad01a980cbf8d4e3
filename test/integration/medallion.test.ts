// The Bronze/Silver/Gold examples end to end on a real Kafka broker, in real Node-RED runtimes, into a real SQLite
// file: every simulated event stored exactly once with its scores, the anomalies topic matching the flagged rows,
// two Gold runtimes of one group splitting the partitions, and bad values on the raw topic taken off to the error
// output and the dead-letter topic with their offsets while the good events around them are stored.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { StationSimulator } from "../../src/core/simulator";
import { committedOffsets, produceRaw } from "../support/kafka-broker";
import {
  configureFlow,
  countRows,
  createPipelineNames,
  createTopic,
  describeGroup,
  kafkaBrokers,
  loadExample,
  logTails,
  medallionLayers,
  pollUntil,
  queryRows,
  readTopic,
  Runtimes,
  TABS,
  readTopicEvents,
  waitForCommitsToEnd,
  topicMessageCount,
  uniqueName,
  waitForRows,
  type FlowNode,
} from "../support/medallion";

describe("integration: Bronze → Kafka → Silver → Kafka → Gold (real broker, real runtimes)", function () {
  this.timeout(150_000);
  const runtimes = new Runtimes();

  before(async function () {
    this.timeout(120_000); // a cold start of the local broker resolves its jars first
    await kafkaBrokers();
  });

  after(() => runtimes.cleanup());

  it("stores all N simulated events exactly once with scores and flags; the anomalies topic holds exactly the flagged events", async () => {
    const EVENTS = 20_000;
    const STATIONS = 10;
    const names = await createPipelineNames(3);
    const flow = configureFlow(loadExample("medallion"), {
      names,
      sim: { seed: 11, stations: STATIONS, ratePerStation: 2000, batchSize: 500, limit: EVENTS },
      debug: "off",
    });
    const userDir = runtimes.userDir("medallion");
    const runtime = await runtimes.start(userDir, flow);
    const databasePath = join(userDir, "anomalies.db");

    const count = await waitForRows(databasePath, EVENTS, 100_000);
    assert.equal(count, EVENTS, `expected ${EVENTS} rows, found ${count}\n${logTails({ medallion: runtime })}`);
    // Both topics carry packed records (the shipped examples' setting): counted in events, each once.
    for (const [topic, layer] of [[names.raw, "Bronze"], [names.scored, "Silver"]]) {
      const onTopic = await readTopicEvents(topic);
      assert.equal(onTopic.length, EVENTS, `${layer} produced ${onTopic.length} events to ${topic}`);
      assert.equal(new Set(onTopic.map((item) => item.event.eventId)).size, EVENTS, `${layer} produced each event once`);
      assert.ok(onTopic.some((item) => item.index >= 0), `${topic} holds packed records`);
    }

    const [summary] = queryRows<{ rows: number; distinct_ids: number; sensors: number; scored: number; flagged: number; flagged_faults: number; faults: number }>(
      databasePath,
      `SELECT count(*) AS rows, count(DISTINCT event_id) AS distinct_ids, count(DISTINCT sensor_id) AS sensors,
              sum(iforest_score IS NOT NULL) AS scored, sum(anomaly = 1) AS flagged,
              sum(anomaly = 1 AND label_anomaly = 1) AS flagged_faults, sum(label_anomaly = 1) AS faults
         FROM events`,
    );
    assert.equal(summary.distinct_ids, EVENTS, "no event stored twice");
    assert.equal(summary.sensors, STATIONS);
    // The forest trains on the first 1000 events Silver sees, then scores every event.
    assert.ok(summary.scored >= EVENTS - 1100, `only ${summary.scored} rows carry an isolation-forest score`);
    const [range] = queryRows<{ low: number; high: number }>(databasePath, "SELECT min(iforest_score) AS low, max(iforest_score) AS high FROM events");
    assert.ok(range.low > 0 && range.high <= 1, `scores outside (0, 1]: ${range.low}..${range.high}`);
    assert.ok(summary.flagged > 0 && summary.flagged < EVENTS * 0.2, `implausible number of flagged rows: ${summary.flagged}`);
    assert.ok(summary.flagged_faults > 0, `none of the ${summary.faults} injected faults was flagged`);

    // Anomalies topic == rows with anomaly = 1: same count, same event ids, each once, keyed by sensor.
    const onTopic = await pollUntil(
      () => topicMessageCount(names.anomalies),
      (n) => n >= summary.flagged,
      15_000,
    );
    assert.equal(onTopic, summary.flagged, `anomalies topic holds ${onTopic} messages, SQLite ${summary.flagged} flagged rows`);
    const messages = await readTopic(names.anomalies, summary.flagged);
    const flaggedIds = new Set(queryRows<{ event_id: string }>(databasePath, "SELECT event_id FROM events WHERE anomaly = 1").map((row) => row.event_id));
    const topicIds = new Set<string>();
    for (const message of messages) {
      const event = JSON.parse(message.value!) as { eventId: string; sensorId: string };
      assert.equal(message.key, event.sensorId, "anomalies are keyed by sensor id");
      assert.ok(flaggedIds.has(event.eventId), `${event.eventId} is on the anomalies topic but not flagged in SQLite`);
      topicIds.add(event.eventId);
    }
    assert.equal(topicIds.size, flaggedIds.size, "every flagged row is on the anomalies topic, once");

    // Both groups committed everything: a restart would not read any of it again.
    const silver = await waitForCommitsToEnd(names.silverGroup, names.raw);
    assert.equal(silver.committed, silver.ends, "Silver committed every raw record");

    // Consumer lag per partition on /metrics: every partition of both groups read to its end.
    const metrics = await (await fetch(`${runtime.url}/metrics`)).text();
    for (const [group, topic] of [[names.silverGroup, names.raw], [names.goldGroup, names.scored]]) {
      const lags = [...metrics.matchAll(new RegExp(`^iot_anomaly_kafka_consumer_lag\\{group="${group}",topic="${topic}",partition="(\\d)"\\} (\\d+)$`, "gm"))];
      assert.deepEqual(lags.map((match) => match[1]).sort(), ["0", "1", "2"], `${group} reports the lag of each partition of ${topic}`);
      assert.ok(lags.every((match) => match[2] === "0"), `${group} has read ${topic} to its end: ${lags.map((match) => match[0]).join(", ")}`);
    }
    const gold = await waitForCommitsToEnd(names.goldGroup, names.scored);
    assert.equal(gold.committed, gold.ends, "Gold committed every scored record");
  });

  it("two Gold runtimes in one consumer group split the partitions and store every event once between them", async () => {
    const EVENTS = 12_000;
    const topic = await createTopic("iot.scored", 4);
    const group = uniqueName("iot-gold");
    const goldFlow = configureFlow(loadExample("gold"), { kafkaIn: { topics: topic, groupId: group, sessionTimeout: 6000 }, debug: "off" });
    const dirs = [runtimes.userDir("gold-a"), runtimes.userDir("gold-b")];
    const [goldA, goldB] = await Promise.all(dirs.map((dir) => runtimes.start(dir, goldFlow)));

    // Both members joined and each holds partitions before any event exists: nothing is read twice by a rebalance.
    const group2 = await pollUntil(
      () => describeGroup(group),
      (state) => state.state === "Stable" && state.members === 2 && state.assignments.every((partitions) => partitions.length > 0),
      30_000,
    );
    assert.equal(group2.members, 2, `group ${group}: ${JSON.stringify(group2)}\n${logTails({ goldA, goldB })}`);
    assert.deepEqual(group2.assignments.flat().sort(), [0, 1, 2, 3], "the four partitions are split between the two members");

    // Bronze writes straight to the topic Gold reads (16 sensors spread over the four partitions by key).
    const bronze = configureFlow(loadExample("bronze"), {
      kafkaOut: { topic },
      sim: { seed: 5, stations: 16, ratePerStation: 1000, batchSize: 500, limit: EVENTS },
    });
    const bronzeRuntime = await runtimes.start(runtimes.userDir("bronze"), bronze);

    const paths = dirs.map((dir) => join(dir, "anomalies.db"));
    const total = await pollUntil(
      () => countRows(paths[0]) + countRows(paths[1]),
      (n) => n >= EVENTS,
      60_000,
    );
    assert.equal(total, EVENTS, `expected ${EVENTS} rows over both files, found ${total}\n${logTails({ goldA, goldB, bronze: bronzeRuntime })}`);
    const idsA = queryRows<{ event_id: string }>(paths[0], "SELECT event_id FROM events").map((row) => row.event_id);
    const idsB = queryRows<{ event_id: string }>(paths[1], "SELECT event_id FROM events").map((row) => row.event_id);
    assert.ok(idsA.length > 0 && idsB.length > 0, `each runtime processed events (A ${idsA.length}, B ${idsB.length})`);
    const inA = new Set(idsA);
    const overlap = idsB.filter((id) => inA.has(id));
    assert.equal(overlap.length, 0, `${overlap.length} events stored by both runtimes, e.g. ${overlap.slice(0, 3).join(", ")}`);
    assert.equal(new Set([...idsA, ...idsB]).size, EVENTS);
    assert.equal((await readTopicEvents(topic)).length, EVENTS);
    // A sensor's events stay on one partition, hence in one runtime.
    const sensorsA = new Set(queryRows<{ sensor_id: string }>(paths[0], "SELECT DISTINCT sensor_id FROM events").map((row) => row.sensor_id));
    const sensorsB = queryRows<{ sensor_id: string }>(paths[1], "SELECT DISTINCT sensor_id FROM events").map((row) => row.sensor_id);
    assert.deepEqual(
      sensorsB.filter((sensor) => sensorsA.has(sensor)),
      [],
      "no sensor is split between the runtimes",
    );
    const commits = await waitForCommitsToEnd(group, topic);
    assert.equal(commits.committed, commits.ends, "the group committed every record");

    // Each partition's lag is reported by the member that reads it, and only by it (A held all four before B
    // joined): between them, one series per partition, all at 0 once everything is read.
    const lagSeries = async () => {
      const texts = await Promise.all([goldA, goldB].map(async (runtime) => (await fetch(`${runtime.url}/metrics`)).text()));
      const pattern = new RegExp(`^iot_anomaly_kafka_consumer_lag\\{group="${group}",topic="${topic}",partition="(\\d)"\\} (\\d+)$`, "gm");
      return texts.flatMap((text) => [...text.matchAll(pattern)].map((match) => `${match[1]}=${match[2]}`)).sort();
    };
    const lags = await pollUntil(lagSeries, (series) => series.join() === "0=0,1=0,2=0,3=0", 30_000);
    assert.deepEqual(lags, ["0=0", "1=0", "2=0", "3=0"], "one lag series per partition over both runtimes, each at 0");
  });

  it("bad values on the raw topic go to kafka-in's error output and the dead-letter topic with their offsets; the good events around them are all stored", async () => {
    const names = await createPipelineNames(3);
    const good = new StationSimulator({ preset: "environment", stations: 6, seed: 3, startTime: Date.UTC(2026, 0, 1) }).generate(600);
    const bad: Array<{ value: string | null; what: string }> = [
      { value: "{not json", what: "malformed JSON" },
      { value: JSON.stringify({ eventId: "wrong-types", sensorId: "station-01", timestamp: "yesterday", readings: { temperature: "hot" } }), what: "wrong types" },
      { value: JSON.stringify({ sensorId: "station-02", timestamp: Date.UTC(2026, 0, 1), readings: { temperature: "n/a" } }), what: "non-numeric reading" },
      { value: JSON.stringify({ timestamp: Date.UTC(2026, 0, 1), readings: { temperature: 20 } }), what: "missing sensorId" },
      { value: "", what: "empty value" },
      { value: null, what: "null value (tombstone)" },
      { value: "42", what: "a number, not an event" },
    ];
    // Interleave: a bad value after every 80 good events, partitions chosen explicitly so each offset is known
    // (a fresh topic starts at offset 0 and one send keeps the order within a partition).
    type Planned = { partition: number; offset: number; key: string; value: string | null; bad?: string };
    const plan: Planned[] = [];
    const nextOffset = [0, 0, 0];
    let badIndex = 0;
    good.forEach((event, index) => {
      const partition = index % 3;
      plan.push({ partition, offset: nextOffset[partition]++, key: event.sensorId, value: JSON.stringify(event) });
      if (index % 80 === 40 && badIndex < bad.length) {
        const item = bad[badIndex++];
        const badPartition = badIndex % 3;
        plan.push({ partition: badPartition, offset: nextOffset[badPartition]++, key: `bad-${badIndex}`, value: item.value, bad: item.what });
      }
    });
    assert.equal(badIndex, bad.length);
    await produceRaw(
      names.raw,
      plan.map(({ partition, key, value }) => ({ partition, key, value })),
    );

    // Silver and Gold only; Silver's "invalid values" debug node becomes a file of JSON lines the test reads.
    const userDir = runtimes.userDir("bad-input");
    const errorsFile = join(userDir, "invalid.jsonl");
    const flow = configureFlow(medallionLayers("silver", "gold"), { names, debug: "off" }).map((node): FlowNode =>
      node.type === "debug" && node.z === TABS.silver
        ? { id: node.id, z: node.z, type: "file", name: "invalid values", filename: errorsFile, filenameType: "str", appendNewline: true, createDir: true, overwriteFile: "false", encoding: "none", x: node.x, y: node.y, wires: [[]] }
        : node,
    );
    assert.ok(flow.some((node) => node.type === "file"), "the error output is wired to the file node");
    const runtime = await runtimes.start(userDir, flow);
    const databasePath = join(userDir, "anomalies.db");

    const count = await waitForRows(databasePath, good.length, 60_000);
    assert.equal(count, good.length, `expected ${good.length} good events stored, found ${count}\n${logTails({ silverGold: runtime })}`);
    const stored = new Set(queryRows<{ event_id: string }>(databasePath, "SELECT event_id FROM events").map((row) => row.event_id));
    assert.ok(
      good.every((event) => stored.has(event.eventId)),
      "every good event is stored",
    );

    const expectedBad = plan.filter((item) => item.bad !== undefined);
    // Output 2 of kafka-in: one message per bad value, with where it came from.
    const errorLines = await pollUntil(
      () => {
        try {
          return readFileSync(errorsFile, "utf8").trim().split("\n").filter(Boolean);
        } catch {
          return [];
        }
      },
      (lines) => lines.length >= expectedBad.length,
      15_000,
    );
    const reported = errorLines.map((line) => JSON.parse(line) as { raw: string | null; error: string; field: string; topic: string; partition: number; offset: number; key: string | null });
    assert.equal(reported.length, expectedBad.length, `error output: ${errorLines.join("\n")}`);
    for (const item of expectedBad) {
      const match = reported.find((entry) => entry.partition === item.partition && entry.offset === item.offset);
      assert.ok(match, `${item.bad} at ${item.partition}/${item.offset} missing from the error output: ${errorLines.join("\n")}`);
      assert.equal(match.topic, names.raw);
      assert.equal(match.key, item.key);
      assert.ok(typeof match.error === "string" && match.error.length > 0, `${item.bad}: no error text`);
      if (item.value !== null && item.value !== "") assert.equal(match.raw, item.value, `${item.bad}: raw value kept`);
    }

    // Dead-letter topic: the raw value with headers naming the error and the source offset.
    const onDlq = await pollUntil(
      () => topicMessageCount(names.deadLetter),
      (n) => n >= expectedBad.length,
      15_000,
    );
    assert.equal(onDlq, expectedBad.length);
    const dead = await readTopic(names.deadLetter, expectedBad.length);
    for (const item of expectedBad) {
      const match = dead.find((message) => message.headers["x-source-partition"] === String(item.partition) && message.headers["x-source-offset"] === String(item.offset));
      assert.ok(match, `${item.bad} at ${item.partition}/${item.offset} missing from the dead-letter topic`);
      assert.equal(match.headers["x-source-topic"], names.raw);
      assert.ok((match.headers["x-error"] ?? "").length > 0, `${item.bad}: no x-error header`);
      assert.equal(match.key, item.key);
      assert.equal(match.value ?? "", item.value ?? "", `${item.bad}: raw value on the dead-letter topic`);
    }
    // Bad values never block commits: the whole raw topic is committed by Silver.
    const committed = await pollUntil(
      async () => [...(await committedOffsets(names.silverGroup, names.raw)).values()].reduce((a, b) => a + Math.max(0, b), 0),
      (sum) => sum === plan.length,
      15_000,
    );
    assert.equal(committed, plan.length, "Silver committed past the bad values");
  });
});
