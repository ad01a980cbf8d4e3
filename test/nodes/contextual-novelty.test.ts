import assert from "node:assert/strict";
import type { EventEmitter } from "node:events";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Node } from "node-red";
import helper from "node-red-node-test-helper";
import type { SensorEvent } from "../../src/core/event";
import { metricsText } from "../../src/runtime/metrics";
import noveltyNode from "../../nodes/contextual-novelty/contextual-novelty";
import { inbox } from "../support/node-inbox";

helper.init(require.resolve("node-red"));

type Spy = { args: unknown[] };

/** The editor saves every field as text. */
function flow(overrides: Record<string, unknown> = {}) {
  return [
    {
      id: "novelty",
      type: "iot-contextual-novelty",
      name: "",
      metrics: "vibration",
      ranges: "vibration=0:50",
      rangeMode: "configured",
      warmupRows: "100",
      cooldownRows: "40",
      alertNovelty: "0.5",
      levels: "6,8,10,12",
      dayParts: "24",
      wires: [["all"], ["anomalies"]],
      ...overrides,
    },
    { id: "all", type: "helper" },
    { id: "anomalies", type: "helper" },
  ];
}

const T0 = Date.UTC(2024, 0, 1);
const FIVE_MINUTES = 300_000;

/**
 * A simulated pump reporting every 5 minutes (as NAB's series): vibration around 20 mm/s (±1), lifted by 20 from
 * `shiftFrom` for `shiftRows` readings. The warm-up (100 readings and a day of event time) ends at row 288.
 */
function pump(sensorId: string, from: number, to: number, shiftFrom = Infinity, shiftRows = 0): SensorEvent[] {
  const events: SensorEvent[] = [];
  for (let row = from; row < to; row++) {
    const shift = row >= shiftFrom && row < shiftFrom + shiftRows ? 20 : 0;
    const timestamp = T0 + row * FIVE_MINUTES;
    events.push({ eventId: `${sensorId}:${row}`, sensorId, timestamp, readings: { vibration: 20 + Math.sin(row * 1.3) + shift } });
  }
  return events;
}

const rowOf = (event: SensorEvent) => Number(event.eventId.split(":")[1]);

/** Resolves with the first call of `method` on the node whose arguments satisfy `accept`. */
function nextCall(target: Node, method: "status" | "error" | "warn", accept: (call: Spy) => boolean = () => true): Promise<Spy> {
  const node = target as unknown as EventEmitter; // the helper emits call:<method> events the Node type does not declare
  return new Promise((resolve) => {
    const listener = (call: Spy) => {
      if (!accept(call)) return;
      node.removeListener(`call:${method}`, listener);
      resolve(call);
    };
    node.on(`call:${method}`, listener);
  });
}
const statusFill = (fill: string) => (call: Spy) => (call.args[0] as { fill?: string }).fill === fill;
const loggedTexts = () => (helper.log() as unknown as { args: Array<[{ msg?: unknown }]> }).args.map(([entry]) => String(entry.msg));

describe("nodes/contextual-novelty (iot-contextual-novelty)", function () {
  let stateDir: string;

  beforeEach(() => {
    stateDir = mkdtempSync(join(tmpdir(), "contextual-novelty-state-"));
    process.env.IOT_ANOMALY_STATE_DIR = stateDir;
  });

  afterEach(async () => {
    await helper.unload();
    delete process.env.IOT_ANOMALY_STATE_DIR;
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("flags a level shift once per cool-down, from text fields; output 2 carries only the flagged events", async () => {
    await helper.load(noveltyNode, flow());
    const all = inbox(helper.getNode("all"));
    const anomalies = inbox(helper.getNode("anomalies"));
    const batch = [...pump("pump-1", 0, 500), ...pump("pump-2", 0, 500, 350, 50)];
    helper.getNode("novelty").receive({ payload: batch, topic: "line-3" });
    const [everything, flagged] = await Promise.all([all.next("every event"), anomalies.next("the anomalies")]);
    const events = everything.payload as SensorEvent[];
    assert.equal(events.length, 1000);
    assert.ok(events.every((event) => typeof event.detectors?.contextualNovelty?.metrics.vibration === "number"));
    const alerts = (flagged.payload as SensorEvent[]).map((event) => `${event.sensorId}@${rowOf(event)}`);
    // The shift is flagged at its first reading; later alerts of pump-2 come more than a cool-down (40) apart.
    assert.equal(alerts[0], "pump-2@350");
    const rows = alerts.map((alert) => Number(alert.split("@")[1]));
    assert.ok(alerts.every((alert) => alert.startsWith("pump-2@")), alerts.join());
    assert.ok(rows.every((row, index) => index === 0 || row - rows[index - 1] > 40), alerts.join());
    assert.ok(rows.length <= 3, `a 50-reading shift is not announced at every reading: ${alerts.join()}`);
    // Output 2 holds exactly the events output 1 marks as anomalies, and is a separate message.
    assert.deepEqual(
      (flagged.payload as SensorEvent[]).map((event) => event.eventId),
      events.filter((event) => event.detectors?.contextualNovelty?.anomaly).map((event) => event.eventId),
    );
    assert.equal(flagged.topic, "line-3");
    assert.notEqual(flagged, everything);
    assert.equal(events[0].detectors?.contextualNovelty?.ready, false, "the first reading warms up");
    assert.equal(events[499].detectors?.contextualNovelty?.ready, true);
    assert.match(await metricsText(), /iot_anomaly_anomalies_total\{sensor_id="pump-2",detector="contextual_novelty"\} [1-9]/);
  });

  it("refuses a range text it cannot read (and other bad fields) with an error naming the metric or field", async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ metrics: "", ranges: "temperature=10:45, humidity=88:0" }, /range of metric "humidity" must be two numbers min:max with min below max \(got "88:0"\)/],
      [{ metrics: "", ranges: "temperature=10" }, /ranges: "temperature=10" is not metric=min:max/],
      [{ metrics: "vibration, temperature" }, /metric "temperature" has no range/],
      [{ levels: "6, eight" }, /"levels" must be a comma-separated list of numbers/],
      [{ warmupRows: "0" }, /"warmupRows" must be a whole number of readings from 1/],
    ];
    for (const [overrides, message] of cases) {
      await helper.load(noveltyNode, flow(overrides));
      assert.ok(loggedTexts().some((text) => message.test(text)), `${JSON.stringify(overrides)}:\n${loggedTexts().join("\n")}`);
      await helper.unload();
    }
    assert.deepEqual(readdirSync(stateDir), [], "a node that did not start saves no state");
  });

  it("keeps what it learnt across a restart: no new warm-up, and a new level is flagged at once", async () => {
    await helper.load(noveltyNode, flow());
    let all = inbox(helper.getNode("all"));
    helper.getNode("novelty").receive({ payload: pump("pump-1", 0, 400) });
    await all.next("the warm-up batch");
    await helper.unload(); // closes the node, which writes its state file
    assert.deepEqual(readdirSync(stateDir), ["novelty.contextual-novelty.json"]);

    await helper.load(noveltyNode, flow());
    assert.ok(loggedTexts().some((text) => /restored 1 sensor-metric detectors of 1 sensors|log\.restored/.test(text)), loggedTexts().join("\n"));
    all = inbox(helper.getNode("all"));
    const anomalies = inbox(helper.getNode("anomalies"));
    const [clean] = pump("pump-1", 400, 401);
    const [shifted] = pump("pump-1", 401, 402, 401, 1);
    helper.getNode("novelty").receive({ payload: [clean, shifted] });
    const [everything, flagged] = await Promise.all([all.next("every event"), anomalies.next("the anomaly")]);
    const [cleanResult, shiftedResult] = (everything.payload as SensorEvent[]).map((event) => event.detectors?.contextualNovelty);
    assert.deepEqual([cleanResult?.ready, cleanResult?.anomaly], [true, false], "a known level after the restart is normal");
    assert.deepEqual([shiftedResult?.ready, shiftedResult?.anomaly], [true, true]);
    assert.deepEqual((flagged.payload as SensorEvent[]).map((event) => event.eventId), [shifted.eventId]);
  });

  it("shows the warm-up, then a green status; a reset message forgets everything and warms up again", async () => {
    await helper.load(noveltyNode, flow());
    const novelty = helper.getNode("novelty");
    const all = inbox(helper.getNode("all"));
    const warmingUp = nextCall(novelty, "status", statusFill("yellow"));
    novelty.receive({ payload: pump("pump-1", 0, 10) });
    await all.next("the first batch");
    assert.match(((await warmingUp).args[0] as { text: string }).text, /10\/100|status\.warming/);
    const ready = nextCall(novelty, "status", statusFill("green"));
    novelty.receive({ payload: pump("pump-1", 10, 400) });
    await all.next("the warm-up batch");
    assert.match(((await ready).args[0] as { text: string }).text, /400 events · 0 anomalies|status\.running/);

    const warmingAgain = nextCall(novelty, "status", statusFill("yellow"));
    novelty.receive({ topic: "reset" });
    await warmingAgain;
    novelty.receive({ payload: pump("pump-1", 400, 401, 400, 1) });
    const [judged] = (await all.next("the event after the reset")).payload as SensorEvent[];
    assert.equal(all.queued, 0, "the reset message itself is not passed on");
    assert.deepEqual(judged.detectors?.contextualNovelty, { anomaly: false, score: 0, ready: false, metrics: { vibration: 0 } });
  });

  it("warns once, naming the metric, when a metric without a configured range is scored with a warm-up estimate", async () => {
    await helper.load(noveltyNode, flow({ metrics: "" }));
    const novelty = helper.getNode("novelty");
    const all = inbox(helper.getNode("all"));
    const warned = nextCall(novelty, "warn");
    novelty.receive({ payload: pump("pump-1", 0, 5).map((event) => ({ ...event, readings: { ...event.readings, temperature: 40 } })) });
    await all.next("the batch");
    assert.match(String((await warned).args[0]), /"temperature" has no configured range|errors\.noRange/);
    assert.equal(existsSync(join(stateDir, "novelty.contextual-novelty.json")), false, "saved only on the timer or at close");
  });
});
