import assert from "node:assert/strict";
import type { EventEmitter } from "node:events";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Node, NodeMessage } from "node-red";
import helper from "node-red-node-test-helper";
import type { SensorEvent } from "../../src/core/event";
import { RollingSigma, type RollingSigmaSnapshotV2 } from "../../src/core/rolling-sigma";
import type { RollingWindow } from "../../src/core/rolling-stats";
import rollingSigmaNode from "../../nodes/rolling-3-sigma/rolling-3-sigma";

helper.init(require.resolve("node-red"));

type Spy = { args: unknown[] };
type EventsMessage = NodeMessage & { payload: SensorEvent | SensorEvent[] };

function flow(overrides: Record<string, unknown> = {}) {
  return [
    {
      id: "sigma",
      type: "iot-rolling-3-sigma",
      name: "",
      metrics: "",
      windowSize: "100",
      threshold: "3",
      minSamples: "30",
      sigmaFloor: "1e-9",
      direction: "both",
      wires: [["all"], ["anomalies"]],
      ...overrides,
    },
    { id: "all", type: "helper" },
    { id: "anomalies", type: "helper" },
  ];
}

let sequence = 0;
/** One event; `value` defaults to a bounded clean signal around 20 (|deviation| ≤ 1, about 1.4 std: never flagged). */
function reading(value = 20 + Math.sin(sequence * 1.3), sensorId = "pump-1", metric = "vibration"): SensorEvent {
  sequence++;
  return { eventId: `${sensorId}:${sequence}`, sensorId, timestamp: 1_700_000_000_000 + sequence, readings: { [metric]: value } };
}
const cleanBatch = (count: number, sensorId = "pump-1") => Array.from({ length: count }, () => reading(undefined, sensorId));

/** Every message a helper node receives, and a way to wait for the next one. */
function recorder(id: string) {
  const node = helper.getNode(id) as unknown as EventEmitter;
  const received: EventsMessage[] = [];
  const waiting: Array<(msg: EventsMessage) => void> = [];
  node.on("input", (msg: EventsMessage) => {
    received.push(msg);
    waiting.shift()?.(msg);
  });
  return { received, next: () => new Promise<EventsMessage>((resolve) => waiting.push(resolve)) };
}

/** Resolves with the first call of `method` on the node whose arguments satisfy `accept`. */
function nextCall(target: Node, method: "status" | "error", accept: (call: Spy) => boolean = () => true): Promise<Spy> {
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

describe("nodes/rolling-3-sigma (iot-rolling-3-sigma)", function () {
  let stateDir: string;

  beforeEach(() => {
    stateDir = mkdtempSync(join(tmpdir(), "rolling-sigma-state-"));
    process.env.IOT_ANOMALY_STATE_DIR = stateDir;
  });

  afterEach(async () => {
    await helper.unload();
    delete process.env.IOT_ANOMALY_STATE_DIR;
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("flags an obvious spike after warm-up on output 2, and nothing from clean data", async () => {
    await helper.load(rollingSigmaNode, flow());
    const sigma = helper.getNode("sigma");
    const all = recorder("all");
    const anomalies = recorder("anomalies");
    for (const event of cleanBatch(150)) sigma.receive({ payload: event });
    const spike = reading(35);
    sigma.receive({ payload: spike });
    const flagged = await anomalies.next();
    // The first (and only) message on output 2 is the spike: none of the 150 clean events went there.
    assert.equal(anomalies.received.length, 1);
    assert.equal((flagged.payload as SensorEvent).eventId, spike.eventId);
    const result = (flagged.payload as SensorEvent).detectors?.rolling3Sigma;
    assert.equal(result?.anomaly, true);
    assert.equal(result?.ready, true);
    assert.ok((result?.metrics.vibration.z as number) > 10);
    assert.equal((flagged.payload as SensorEvent).readings.vibration, 35, "readings are left as they were");
    // Output 1 carried every event, each with its result, the clean ones unflagged.
    assert.equal(all.received.length, 151);
    assert.ok(all.received.slice(0, 150).every((msg) => (msg.payload as SensorEvent).detectors?.rolling3Sigma?.anomaly === false));
    assert.equal((all.received[0].payload as SensorEvent).detectors?.rolling3Sigma?.ready, false, "the first event warms up");
  });

  it("answers a batch with a batch: every event on output 1, only the anomalies on output 2, in order", async () => {
    await helper.load(rollingSigmaNode, flow({ metrics: "vibration", minSamples: "20" }));
    const sigma = helper.getNode("sigma");
    const all = recorder("all");
    const anomalies = recorder("anomalies");
    const batch = [...cleanBatch(40), reading(50), ...cleanBatch(5), reading(-10), reading(20, "pump-2")];
    batch[3].readings.temperature = 1e6; // not a configured metric: never judged
    sigma.receive({ payload: batch, topic: "line-3" });
    const [everything, flagged] = await Promise.all([all.next(), anomalies.next()]);
    assert.ok(Array.isArray(everything.payload));
    assert.equal(everything.payload.length, batch.length);
    assert.ok(everything.payload.every((event) => event.detectors?.rolling3Sigma !== undefined));
    assert.deepEqual(Object.keys(everything.payload[3].detectors?.rolling3Sigma?.metrics ?? {}), ["vibration"]);
    assert.ok(Array.isArray(flagged.payload));
    assert.deepEqual(flagged.payload.map((event) => event.readings.vibration), [50, -10]);
    assert.equal(flagged.topic, "line-3", "output 2 keeps the other message properties");
    assert.notEqual(flagged, everything, "output 2 is a separate message");
  });

  it("keeps its windows across a restart: the next value is judged against the restored window, with no new warm-up", async () => {
    await helper.load(rollingSigmaNode, flow());
    let all = recorder("all");
    helper.getNode("sigma").receive({ payload: cleanBatch(100) });
    await all.next();
    await helper.unload(); // closes the node, which writes its state file
    assert.deepEqual(readdirSync(stateDir), ["sigma.rolling-sigma.json"]);

    await helper.load(rollingSigmaNode, flow());
    all = recorder("all");
    const anomalies = recorder("anomalies");
    const spike = reading(35);
    helper.getNode("sigma").receive({ payload: spike });
    const [judged] = await Promise.all([all.next(), anomalies.next()]);
    const result = (judged.payload as SensorEvent).detectors?.rolling3Sigma;
    assert.equal(result?.ready, true);
    assert.equal(result?.anomaly, true);
    assert.ok(Math.abs((result?.metrics.vibration.mean as number) - 20) < 0.2);
  });

  it("restores a state file of the previous format (version 2, one object per window) and saves it packed (version 3)", async () => {
    const before = new RollingSigma({ windowSize: 100 });
    for (const event of cleanBatch(100)) before.processEvent(event);
    const v2: RollingSigmaSnapshotV2 = {
      version: 2,
      windowMode: "count",
      windowSize: 100,
      sensors: [["pump-1", [["vibration", (before.window("pump-1", "vibration") as RollingWindow).toJSON()]]]],
    };
    const file = join(stateDir, "sigma.rolling-sigma.json");
    writeFileSync(file, JSON.stringify(v2));

    await helper.load(rollingSigmaNode, flow());
    const all = recorder("all");
    helper.getNode("sigma").receive({ payload: reading(35) });
    const result = ((await all.next()).payload as SensorEvent).detectors?.rolling3Sigma;
    assert.equal(result?.ready, true, "no new warm-up");
    assert.equal(result?.anomaly, true);
    await helper.unload();
    assert.equal((JSON.parse(readFileSync(file, "utf8")) as { version: number }).version, 3);
  });

  it("discards saved windows taken with another window size, with a log line, and warms up again", async () => {
    await helper.load(rollingSigmaNode, flow());
    const all = recorder("all");
    helper.getNode("sigma").receive({ payload: cleanBatch(100) });
    await all.next();
    await helper.unload();

    await helper.load(rollingSigmaNode, flow({ windowSize: "50" }));
    const logged = (helper.log() as unknown as { args: Array<[{ msg?: unknown }]> }).args.map(([entry]) => String(entry.msg));
    assert.ok(logged.some((text) => text.includes("discarded")), logged.join("\n"));
    const again = recorder("all");
    helper.getNode("sigma").receive({ payload: reading(35) });
    const judged = await again.next();
    assert.equal((judged.payload as SensorEvent).detectors?.rolling3Sigma?.ready, false);
    assert.equal((judged.payload as SensorEvent).detectors?.rolling3Sigma?.anomaly, false);
  });

  it("shows warming up, then a green status once a window is ready", async () => {
    await helper.load(rollingSigmaNode, flow());
    const sigma = helper.getNode("sigma");
    const all = recorder("all");
    const warmingUp = nextCall(sigma, "status", statusFill("yellow"));
    sigma.receive({ payload: cleanBatch(10) });
    await all.next();
    assert.equal(((await warmingUp).args[0] as { shape: string }).shape, "ring");
    const ready = nextCall(sigma, "status", statusFill("green"));
    sigma.receive({ payload: cleanBatch(40) });
    const status = (await ready).args[0] as { shape: string; text: string };
    assert.equal(status.shape, "dot");
    assert.match(status.text, /status\.running|sensors/);
  });

  it("clears every window on a reset message, so the same spike is no longer flagged", async () => {
    await helper.load(rollingSigmaNode, flow());
    const sigma = helper.getNode("sigma");
    const all = recorder("all");
    sigma.receive({ payload: cleanBatch(100) });
    await all.next();
    const warmingAgain = nextCall(sigma, "status", statusFill("yellow"));
    sigma.receive({ topic: "reset" });
    await warmingAgain;
    sigma.receive({ payload: reading(35) });
    const judged = await all.next();
    assert.equal(all.received.length, 2, "the reset message itself is not passed on");
    assert.deepEqual((judged.payload as SensorEvent).detectors?.rolling3Sigma?.metrics.vibration, { mean: null, std: null, z: null, flag: false });
  });

  it("reports bad input with done(err) naming the field and a red status, and keeps processing the next message", async () => {
    await helper.load(rollingSigmaNode, flow());
    const sigma = helper.getNode("sigma");
    const all = recorder("all");
    const bad: Array<[string, unknown, RegExp]> = [
      ["malformed JSON", '{"sensorId": "pump-1", ', /payload is not valid JSON/],
      ["a missing sensorId", { timestamp: 1, readings: { vibration: 1 } }, /"sensorId" must be a non-empty string/],
      ["a NaN reading", { sensorId: "pump-1", timestamp: 1, readings: { vibration: NaN } }, /reading "vibration" is not finite/],
      ["a non-numeric reading", { sensorId: "pump-1", timestamp: 1, readings: { vibration: "n/a" } }, /reading "vibration" is not a number \(got "n\/a"\)/],
      ["a 1 MB string", "x".repeat(1_000_000), /payload is too large/],
    ];
    for (const [title, payload, message] of bad) {
      const error = nextCall(sigma, "error");
      const red = nextCall(sigma, "status", statusFill("red"));
      sigma.receive({ payload });
      assert.match(((await error).args[0] as Error).message, message, title);
      await red;
      const good = reading();
      sigma.receive({ payload: good });
      assert.equal(((await all.next()).payload as SensorEvent).eventId, good.eventId, `processing goes on after ${title}`);
    }
    // In a batch the good events go on and the bad one is reported by its index.
    const error = nextCall(sigma, "error");
    sigma.receive({ payload: [reading(), { sensorId: "pump-1", timestamp: 2, readings: { vibration: null } }, reading()] });
    const passed = await all.next();
    assert.equal((passed.payload as SensorEvent[]).length, 2);
    assert.match(((await error).args[0] as Error).message, /^event \[1\]: reading "vibration" is not a number/);
  });

  it("refuses an invalid configuration with an error naming the field", async () => {
    await helper.load(rollingSigmaNode, flow({ windowSize: "1" }));
    const logged = (helper.log() as unknown as { args: Array<[{ level?: number; msg?: unknown }]> }).args.map(([entry]) => String(entry.msg));
    assert.ok(logged.some((text) => /"windowSize" must be an integer from 2 to 100000 \(got 1\)/.test(text)), logged.join("\n"));
    assert.equal(existsSync(join(stateDir, "sigma.rolling-sigma.json")), false);
  });

  describe("time windows and cool-down", () => {
    const T0 = 1_700_000_000_000;
    /** Readings one second apart from `start`: clean noise around 20 (|deviation| ≤ 1), then a 20-unit level shift. */
    function timed(sensorId: string, start: number, clean: number, faulty = 0): SensorEvent[] {
      return Array.from({ length: clean + faulty }, (_, i) => ({
        eventId: `${sensorId}:${start + i * 1000}`,
        sensorId,
        timestamp: start + i * 1000,
        readings: { vibration: 20 + Math.sin(i * 1.3) + (i >= clean ? 20 : 0) },
      }));
    }
    const timeFlow = (overrides: Record<string, unknown> = {}) =>
      flow({ windowMode: "time", windowSeconds: "120", windowSize: "1000", minSamples: "20", cooldownEvents: "", cooldownSeconds: "600", ...overrides });
    const sigmaOf = (event: SensorEvent) => event.detectors?.rolling3Sigma;

    it("takes time mode and a cool-down from text fields: one long fault is one alert, the repeats are marked suppressed", async () => {
      await helper.load(rollingSigmaNode, timeFlow());
      const all = recorder("all");
      const anomalies = recorder("anomalies");
      helper.getNode("sigma").receive({ payload: timed("pump-1", T0, 150, 30) });
      const [everything, alerts] = await Promise.all([all.next(), anomalies.next()]);
      const events = everything.payload as SensorEvent[];
      const flagged = events.filter((event) => sigmaOf(event)?.metrics.vibration.flag);
      assert.ok(flagged.length >= 5, `the fault is flagged on ${flagged.length} readings`);
      assert.deepEqual(
        (alerts.payload as SensorEvent[]).map((event) => event.eventId),
        [flagged[0].eventId],
        "output 2 carries the first flagged reading only",
      );
      for (const repeat of flagged.slice(1)) {
        assert.equal(sigmaOf(repeat)?.anomaly, false);
        assert.equal(sigmaOf(repeat)?.suppressed, true);
      }
      assert.ok((sigmaOf(flagged[1])?.metrics.vibration.z as number) > 3, "the evidence is kept");
    });

    it("keeps windows and cool-downs across a restart: the same fault is not announced again, another sensor is", async () => {
      await helper.load(rollingSigmaNode, timeFlow());
      let all = recorder("all");
      helper.getNode("sigma").receive({ payload: [...timed("pump-1", T0, 150, 3), ...timed("pump-2", T0, 150)] });
      await all.next();
      await helper.unload(); // writes the state file

      await helper.load(rollingSigmaNode, timeFlow());
      all = recorder("all");
      const anomalies = recorder("anomalies");
      const sigma = helper.getNode("sigma");
      // 8 s after the fault (event time): pump-1 is still in its 600 s cool-down; pump-2 never alerted.
      const later = T0 + 160_000;
      const [pump1] = timed("pump-1", later, 0, 1);
      sigma.receive({ payload: pump1 });
      const judged = (await all.next()).payload as SensorEvent;
      assert.equal(sigmaOf(judged)?.ready, true, "no new warm-up after the restart");
      assert.equal(sigmaOf(judged)?.metrics.vibration.flag, true);
      assert.equal(sigmaOf(judged)?.suppressed, true);
      const [pump2] = timed("pump-2", later, 0, 1);
      sigma.receive({ payload: pump2 });
      // Messages on one wire arrive in order: the first on output 2 being pump-2's proves pump-1's was not sent.
      const first = (await anomalies.next()).payload as SensorEvent;
      assert.equal(first.sensorId, "pump-2");
      assert.equal(anomalies.received.length, 1);
    });

    it("discards windows saved with another window mode (logged) but keeps the cool-downs", async () => {
      await helper.load(rollingSigmaNode, flow({ cooldownEvents: "1000" }));
      let all = recorder("all");
      helper.getNode("sigma").receive({ payload: timed("pump-1", T0, 100, 1) });
      assert.equal(((await all.next()).payload as SensorEvent[]).filter((event) => sigmaOf(event)?.anomaly).length, 1);
      await helper.unload();

      await helper.load(rollingSigmaNode, timeFlow({ cooldownEvents: "1000", cooldownSeconds: "" }));
      const logged = (helper.log() as unknown as { args: Array<[{ msg?: unknown }]> }).args.map(([entry]) => String(entry.msg));
      assert.ok(logged.some((text) => text.includes("discarded")), logged.join("\n"));
      all = recorder("all");
      helper.getNode("sigma").receive({ payload: timed("pump-1", T0 + 200_000, 40, 1) });
      const events = (await all.next()).payload as SensorEvent[];
      assert.equal(sigmaOf(events[0])?.ready, false, "the time windows warm up again");
      const fault = events[events.length - 1];
      assert.equal(sigmaOf(fault)?.metrics.vibration.flag, true);
      assert.equal(sigmaOf(fault)?.suppressed, true, "the cool-down survived the change");
    });

    it("refuses bad window and cool-down settings with an error naming the field", async () => {
      const cases: Array<[Record<string, unknown>, RegExp]> = [
        [{ windowMode: "sliding" }, /"windowMode" must be "count" or "time" \(got "sliding"\)/],
        [{ windowMode: "time", windowSeconds: "soon" }, /"windowSeconds" must be a positive number of seconds \(got "soon"\)/],
        [{ windowMode: "time", windowSeconds: "0" }, /"windowSeconds".*\(got 0\)/],
        [{ cooldownEvents: "-3" }, /"cooldownEvents" must be a whole number of events, 0 or more \(got -3\)/],
        [{ cooldownSeconds: "${UNSET_COOLDOWN}" }, /"cooldownSeconds".*\(got "\$\{UNSET_COOLDOWN\}"\)/],
      ];
      for (const [overrides, message] of cases) {
        await helper.load(rollingSigmaNode, flow(overrides));
        const logged = (helper.log() as unknown as { args: Array<[{ msg?: unknown }]> }).args.map(([entry]) => String(entry.msg));
        assert.ok(logged.some((text) => message.test(text)), `${JSON.stringify(overrides)}:\n${logged.join("\n")}`);
        await helper.unload();
      }
    });

    it("ignores the hidden window time of a count-mode node", async () => {
      await helper.load(rollingSigmaNode, flow({ windowMode: "count", windowSeconds: "not used" }));
      const all = recorder("all");
      helper.getNode("sigma").receive({ payload: reading() });
      assert.ok(sigmaOf((await all.next()).payload as SensorEvent));
    });
  });
});
