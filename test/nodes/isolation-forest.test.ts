import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Node, NodeMessage, NodeStatus } from "node-red";
import helper from "node-red-node-test-helper";
import isolationForestNode from "../../nodes/isolation-forest/isolation-forest";

helper.init(require.resolve("node-red"));

interface Result {
  score: number | null;
  anomaly: boolean;
  threshold: number | null;
  modelVersion: number | null;
  missing?: string[];
}
interface TestEvent {
  eventId: string;
  sensorId: string;
  timestamp: number;
  readings: Record<string, number>;
  detectors: { isolationForest: Result };
}
type Message = NodeMessage & { error?: { message: string } };

const T0 = Date.UTC(2025, 0, 1);
const TRAINING_SIZE = 60;

/** Seeded normal readings around vibration 2 / temperature 40, so runs are repeatable. */
let state = 1;
function normal(): number {
  state = (state * 16807) % 2147483647;
  const u = state / 2147483647;
  state = (state * 16807) % 2147483647;
  return Math.sqrt(-2 * Math.log(u)) * Math.cos((2 * Math.PI * state) / 2147483647);
}
let nextIndex = 0;
const event = (readings?: Record<string, number>) => {
  const index = nextIndex++;
  return { sensorId: "press-7", timestamp: T0 + index * 1000, readings: readings ?? { vibration: 2 + 0.1 * normal(), temperature: 40 + normal() } };
};
const events = (count: number) => Array.from({ length: count }, () => event());
const outlier = () => event({ vibration: 9, temperature: 70 });

/** Messages a helper node receives, in order, as promises. */
function inbox(node: Node): () => Promise<Message> {
  const received: Message[] = [];
  const waiting: Array<(msg: Message) => void> = [];
  node.on("input", (msg: NodeMessage) => {
    const waiter = waiting.shift();
    if (waiter) waiter(msg as Message);
    else received.push(msg as Message);
  });
  return () =>
    new Promise((resolve) => {
      const first = received.shift();
      if (first) resolve(first);
      else waiting.push(resolve);
    });
}

/** The next status the node shows that matches `predicate` (the helper emits `call:status` for each call). */
function nextStatus(node: Node, predicate: (status: NodeStatus) => boolean): Promise<NodeStatus> {
  const emitter = node as unknown as NodeJS.EventEmitter;
  return new Promise((resolve) => {
    const listener = (call: { args: [NodeStatus] }) => {
      if (!predicate(call.args[0])) return;
      emitter.removeListener("call:status", listener);
      resolve(call.args[0]);
    };
    emitter.on("call:status", listener);
  });
}

const resultOf = (msg: Message) => (msg.payload as TestEvent).detectors.isolationForest;
const batchOf = (msg: Message) => msg.payload as TestEvent[];
/** Texts the node logged (the helper's RED._ returns the catalogue key). */
const logged = () => helper.log().args.map((args: Array<{ msg?: unknown }>) => String(args[0]?.msg ?? ""));

describe("iot-isolation-forest node", () => {
  let directory: string;

  const flow = (config: Record<string, unknown> = {}) => [
    {
      id: "forest",
      type: "iot-isolation-forest",
      name: "",
      features: "vibration, temperature",
      trainingSize: TRAINING_SIZE,
      nEstimators: 50,
      maxSamples: 256,
      thresholdMode: "score",
      threshold: 0.6,
      contamination: 0.01,
      seed: 42,
      wires: [["scored"], ["anomalies"]],
      ...config,
    },
    { id: "scored", type: "helper" },
    { id: "anomalies", type: "helper" },
    { id: "on-complete", type: "complete", scope: ["forest"], uncaught: false, wires: [["completed"]] },
    { id: "completed", type: "helper" },
    { id: "on-catch", type: "catch", scope: ["forest"], uncaught: false, wires: [["caught"]] },
    { id: "caught", type: "helper" },
  ];

  async function start(config: Record<string, unknown> = {}) {
    await helper.load(isolationForestNode, flow(config));
    return {
      forest: helper.getNode("forest"),
      scored: inbox(helper.getNode("scored")),
      anomalies: inbox(helper.getNode("anomalies")),
      completed: inbox(helper.getNode("completed")),
      caught: inbox(helper.getNode("caught")),
    };
  }

  /** Starts the node and completes its warm-up with one batch. */
  async function startTrained(config: Record<string, unknown> = {}) {
    const started = await start(config);
    started.forest.receive({ payload: events(TRAINING_SIZE) });
    const warmup = batchOf(await started.scored());
    assert.equal(warmup.length, TRAINING_SIZE);
    return started;
  }

  beforeEach((done) => {
    directory = mkdtempSync(join(tmpdir(), "iforest-node-"));
    process.env.IOT_ANOMALY_STATE_DIR = directory;
    helper.startServer(done);
  });

  afterEach(async () => {
    await helper.unload();
    delete process.env.IOT_ANOMALY_STATE_DIR;
    rmSync(directory, { recursive: true, force: true });
    await new Promise<void>((resolve) => helper.stopServer(() => resolve()));
  });

  it("forwards warm-up events unscored, trains on the Nth, then scores (also the rest of that batch)", async () => {
    const { forest, scored } = await start();
    const yellow = nextStatus(forest, (status) => status.fill === "yellow");
    for (let i = 0; i < TRAINING_SIZE - 1; i++) forest.receive({ payload: event() });
    for (let i = 0; i < TRAINING_SIZE - 1; i++) {
      assert.deepEqual(resultOf(await scored()), { score: null, anomaly: false, threshold: null, modelVersion: null });
    }
    assert.equal((await yellow).shape, "ring");
    assert.equal((await yellow).text, "iot-isolation-forest.status.warming");

    const green = nextStatus(forest, (status) => status.fill === "green");
    forest.receive({ payload: [event(), event()] });
    const [last, first] = batchOf(await scored());
    assert.equal(last.detectors.isolationForest.score, null, "the Nth event is training data, forwarded unscored");
    const result = first.detectors.isolationForest;
    assert.equal(typeof result.score, "number");
    assert.ok(result.score! > 0 && result.score! < 0.6, `normal event scored ${result.score}`);
    assert.deepEqual({ ...result, score: 0 }, { score: 0, anomaly: false, threshold: 0.6, modelVersion: 1 });
    assert.equal((await green).shape, "dot");
    assert.ok(logged().includes("iot-isolation-forest.log.trained"), "training is logged");
    assert.ok(existsSync(join(directory, "forest.iforest-model.json")), "the model is saved when trained");
  });

  it("sends an outlier on the second output and keeps the first output complete", async () => {
    const { forest, scored, anomalies } = await startTrained();
    forest.receive({ payload: event() });
    forest.receive({ payload: outlier() });
    const normalResult = resultOf(await scored());
    const outlierResult = resultOf(await scored());
    assert.equal(normalResult.anomaly, false);
    assert.equal(outlierResult.anomaly, true);
    assert.ok(outlierResult.score! > 0.6, `outlier scored ${outlierResult.score}`);
    // Output 2 carries only the outlier: the normal event sent before it never arrives there.
    const flagged = await anomalies();
    assert.deepEqual((flagged.payload as TestEvent).readings, { vibration: 9, temperature: 70 });
    assert.equal(resultOf(flagged).anomaly, true);
  });

  it("scores a batch in one message and sends batches on both outputs", async () => {
    const { forest, scored, anomalies } = await startTrained();
    const batch = [event(), outlier(), event(), outlier(), event()];
    forest.receive({ payload: batch });
    const all = batchOf(await scored());
    assert.equal(all.length, 5);
    assert.deepEqual(all.map((e) => e.detectors.isolationForest.anomaly), [false, true, false, true, false]);
    assert.ok(all.every((e) => typeof e.detectors.isolationForest.score === "number" && e.detectors.isolationForest.modelVersion === 1));
    const flagged = batchOf(await anomalies());
    assert.ok(Array.isArray(flagged));
    assert.deepEqual(flagged.map((e) => e.eventId), [all[1].eventId, all[3].eventId]);
  });

  it("with output 2 set to any detector, sends each event flagged by any detector once", async () => {
    const { forest, scored, anomalies } = await startTrained({ anomalyOutput: "any" });
    const flaggedUpstream = event();
    (flaggedUpstream as { detectors?: unknown }).detectors = { rolling3Sigma: { anomaly: true, ready: true, metrics: {} } };
    const bothFlag = outlier();
    (bothFlag as { detectors?: unknown }).detectors = { rolling3Sigma: { anomaly: true, ready: true, metrics: {} } };
    forest.receive({ payload: [event(), flaggedUpstream, bothFlag, outlier()] });
    const all = batchOf(await scored());
    const flagged = batchOf(await anomalies());
    assert.deepEqual(flagged.map((e) => e.eventId), [all[1].eventId, all[2].eventId, all[3].eventId]);
  });

  it("forwards an event lacking a feature unscored, naming it in `missing`, without an error", async () => {
    const { forest, scored, completed } = await startTrained();
    await completed(); // the warm-up batch
    forest.receive({ payload: event({ vibration: 2.1 }) });
    assert.deepEqual(resultOf(await scored()), { score: null, anomaly: false, threshold: 0.6, modelVersion: 1, missing: ["temperature"] });
    await completed(); // done() without an error: a Catch node would not see it
  });

  it("scores at once after a restart with the same model version and the same scores", async () => {
    const probe = event();
    const before = await startTrained();
    before.forest.receive({ payload: structuredClone(probe) });
    const scoredBefore = resultOf(await before.scored());
    await helper.unload();

    const after = await start();
    assert.ok(logged().includes("iot-isolation-forest.log.loaded"), "the saved model is loaded at start");
    const status = nextStatus(after.forest, () => true);
    after.forest.receive({ payload: structuredClone(probe) });
    const scoredAfter = resultOf(await after.scored());
    assert.deepEqual(scoredAfter, scoredBefore);
    assert.equal(scoredAfter.modelVersion, 1);
    assert.deepEqual(await status, { fill: "green", shape: "dot", text: "iot-isolation-forest.status.scoring" });
  });

  it("resumes an unfinished warm-up after a restart instead of starting it again", async () => {
    const first = await start();
    first.forest.receive({ payload: events(TRAINING_SIZE - 10) });
    await first.scored();
    await helper.unload(); // close saves the warm-up rows gathered so far

    const second = await start();
    second.forest.receive({ payload: events(11) });
    const batch = batchOf(await second.scored());
    assert.equal(batch[9].detectors.isolationForest.score, null, "the 60th warm-up event trains the model");
    assert.equal(batch[10].detectors.isolationForest.modelVersion, 1, "the next one is scored");
  });

  it("in contamination mode, flags about that rate of normal data with a threshold learnt at warm-up", async () => {
    const { forest, scored } = await start({ thresholdMode: "contamination", contamination: 0.1, trainingSize: 500 });
    forest.receive({ payload: events(500) });
    await scored();
    forest.receive({ payload: events(1000) });
    const batch = batchOf(await scored());
    const threshold = batch[0].detectors.isolationForest.threshold!;
    assert.ok(threshold > 0.3 && threshold < 0.6, `threshold ${threshold}`);
    const rate = batch.filter((e) => e.detectors.isolationForest.anomaly).length / batch.length;
    assert.ok(rate > 0.05 && rate < 0.15, `flagged ${rate} of normal events at contamination 0.1`);
  });

  it("ignores a saved model trained on other features, saying why, and warms up again", async () => {
    await startTrained();
    await helper.unload();
    const { forest, scored } = await start({ features: "vibration, current" });
    assert.ok(logged().includes("iot-isolation-forest.log.ignored"));
    forest.receive({ payload: event({ vibration: 2, current: 3 }) });
    assert.equal(resultOf(await scored()).score, null);
  });

  it("trains a new version from a train message with events or number rows, and resets on reset", async () => {
    const { forest, scored, completed } = await startTrained();
    await completed();
    forest.receive({ topic: "train", payload: events(80) });
    await completed();
    forest.receive({ payload: event() });
    assert.equal(resultOf(await scored()).modelVersion, 2);
    await completed();

    const rows = Array.from({ length: 100 }, () => [2 + 0.1 * normal(), 40 + normal()]);
    forest.receive({ topic: "train", payload: rows });
    await completed();
    forest.receive({ payload: event() });
    assert.equal(resultOf(await scored()).modelVersion, 3);
    await completed();

    const yellow = nextStatus(forest, (status) => status.fill === "yellow");
    forest.receive({ topic: "reset" });
    await completed();
    assert.equal((await yellow).text, "iot-isolation-forest.status.warming");
    forest.receive({ payload: event() });
    assert.equal(resultOf(await scored()).score, null, "warming up again after reset");
    const saved = JSON.parse(readFileSync(join(directory, "forest.iforest-model.json"), "utf8"));
    assert.equal(saved.model, null, "the dropped model does not come back after a restart");
    assert.equal(saved.lastVersion, 3, "versions keep counting up after a reset");
  });

  it("reports a train message with rows of the wrong width and keeps the current model", async () => {
    const { forest, scored, caught } = await startTrained();
    forest.receive({ topic: "train", payload: [[1, 2, 3], [4, 5, 6]] });
    assert.match((await caught()).error!.message, /train: row 0 has 3 values but the node has 2 features \(vibration, temperature\)/);
    forest.receive({ topic: "train", payload: [[1, 2], [4, Number.NaN]] });
    assert.match((await caught()).error!.message, /train: row 1, column 1 is not a finite number/);
    forest.receive({ payload: event() });
    assert.equal(resultOf(await scored()).modelVersion, 1);
  });

  const badPayloads: Array<[string, unknown, string, RegExp]> = [
    ["malformed JSON text", '{"sensorId": "press-7", ', "payload", /not valid JSON/],
    ["a missing sensorId", { timestamp: T0, readings: { vibration: 1, temperature: 40 } }, "sensorId", /"sensorId" must be a non-empty string/],
    ["a NaN reading", { sensorId: "press-7", timestamp: T0, readings: { vibration: Number.NaN, temperature: 40 } }, "readings.vibration", /reading "vibration" is not finite/],
    ["a non-numeric reading", { sensorId: "press-7", timestamp: T0, readings: { vibration: "n/a", temperature: 40 } }, "readings.vibration", /reading "vibration" is not a number \(got "n\/a"\)/],
    ["a 1 MB string", "x".repeat(1024 * 1024), "payload", /payload is too large/],
  ];
  for (const [title, payload, field, message] of badPayloads) {
    it(`reports ${title} to Catch naming "${field}", shows a red status, and scores the next message`, async () => {
      const { forest, scored, caught } = await startTrained();
      const fieldReported = new Promise<string>((resolve) => (forest as unknown as NodeJS.EventEmitter).once("call:error", (call: { args: [{ field?: string }] }) => resolve(call.args[0].field ?? "")));
      const red = nextStatus(forest, (status) => status.fill === "red");
      forest.receive({ payload });
      assert.match((await caught()).error!.message, message);
      assert.equal(await fieldReported, field);
      assert.equal((await red).shape, "ring");

      forest.receive({ payload: event() });
      assert.equal(typeof resultOf(await scored()).score, "number");
    });
  }

  it("scores the valid events of a batch and reports the invalid one by index", async () => {
    const { forest, scored, caught } = await startTrained();
    forest.receive({ payload: [event(), { sensorId: "press-7", timestamp: T0, readings: { vibration: "broken" } }, event()] });
    assert.equal(batchOf(await scored()).length, 2);
    assert.match((await caught()).error!.message, /event \[1\]: reading "vibration" is not a number/);
  });

  it("refuses a configuration without features: red status and the reason reported for each message", async () => {
    const { forest, caught } = await start({ features: " , " });
    const red = nextStatus(forest, (status) => status.fill === "red");
    forest.receive({ payload: event() });
    assert.match((await caught()).error!.message, /"features" is required: list the metric names/);
    assert.match((await red).text as string, /^"features" is required/);
  });

});
