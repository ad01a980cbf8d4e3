import assert from "node:assert/strict";
import type { EventEmitter } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Node, NodeMessage, NodeStatus } from "node-red";
import helper from "node-red-node-test-helper";
import type { SinonSpy } from "sinon";
import sensorSimNode from "../../nodes/sensor-sim/sensor-sim";
import { validateEvent, type SensorEvent } from "../../src/core/event";

helper.init(require.resolve("node-red"));

const FIXTURE = join(__dirname, "..", "fixtures", "replay.csv");

type Message = NodeMessage & { payload: SensorEvent | SensorEvent[]; error?: { message: string } };

/** Messages a helper node receives, in order, as promises. */
function inbox(node: Node) {
  const received: Message[] = [];
  const waiting: Array<(msg: Message) => void> = [];
  let total = 0;
  node.on("input", (msg: NodeMessage) => {
    total++;
    const waiter = waiting.shift();
    if (waiter) waiter(msg as Message);
    else received.push(msg as Message);
  });
  const next = () =>
    new Promise<Message>((resolve) => {
      const first = received.shift();
      if (first) resolve(first);
      else waiting.push(resolve);
    });
  return {
    next,
    async take(count: number): Promise<Message[]> {
      const messages: Message[] = [];
      for (let i = 0; i < count; i++) messages.push(await next());
      return messages;
    },
    /** Messages received so far, taken or not. */
    get total() {
      return total;
    },
  };
}

/** The next status the node shows that matches `predicate`. */
function nextStatus(node: Node, predicate: (status: NodeStatus) => boolean): Promise<NodeStatus> {
  return new Promise((resolve) => {
    const listener = (call: { args: [NodeStatus] }) => {
      if (!predicate(call.args[0])) return;
      events.removeListener("call:status", listener);
      resolve(call.args[0]);
    };
    // The helper reports every status call as a "call:status" event; Node's typings only know input and close.
    const events = node as unknown as EventEmitter;
    events.on("call:status", listener);
  });
}

/** A status the node has shown (the helper's spy keeps the history, even from before a test listened) or shows next. */
async function statusSeen(node: Node, predicate: (status: NodeStatus) => boolean): Promise<NodeStatus> {
  const next = nextStatus(node, predicate);
  const shown = (node.status as unknown as SinonSpy).getCalls().filter((call) => call.thisValue === node).map((call) => call.args[0] as NodeStatus);
  return shown.find(predicate) ?? next;
}

/** Lets Node-RED deliver what is already queued (its sends are asynchronous) without waiting on a clock. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

const isStatus = (key: string, fill: string) => (status: NodeStatus) => status.fill === fill && String(status.text).includes(`iot-sensor-sim.status.${key}`);
const isRed = (status: NodeStatus) => status.fill === "red";
const seq = (event: SensorEvent) => Number(event.eventId.split(":").pop());

describe("iot-sensor-sim node", () => {
  let directory: string;
  before(() => {
    directory = mkdtempSync(join(tmpdir(), "sensor-sim-"));
  });
  after(() => rmSync(directory, { recursive: true, force: true }));
  afterEach(async () => {
    await helper.unload();
  });

  // Nodes need a tab and x/y: otherwise the runtime takes them for config nodes, and the catch node's scope would
  // wait forever for the config node "sim".
  const flow = (config: Record<string, unknown>) => [
    { id: "tab", type: "tab", label: "sensor-sim test" },
    { id: "sim", z: "tab", x: 100, y: 100, type: "iot-sensor-sim", name: "", mode: "preset", preset: "vibration", stations: 2, ratePerStation: 200, seed: 42, batchSize: 1, limit: 0, autoStart: false, wires: [["out"]], ...config },
    { id: "out", z: "tab", x: 300, y: 100, type: "helper" },
    { id: "catch", z: "tab", x: 100, y: 200, type: "catch", scope: ["sim"], uncaught: false, wires: [["caught"]] },
    { id: "caught", z: "tab", x: 300, y: 200, type: "helper" },
  ];

  /** Deploys the flow; tests start the node with a message once they listen (autoStart is off unless given). */
  async function deploy(config: Record<string, unknown>) {
    await helper.load(sensorSimNode, flow(config));
    const sim = helper.getNode("sim");
    return { sim, output: inbox(helper.getNode("out")), caught: inbox(helper.getNode("caught")) };
  }

  it("emits one valid event per message, round-robin over the stations, and stops at the limit with a done status", async () => {
    const { sim, output } = await deploy({ limit: 20, metrics: "vibration,temperature" });
    const done = nextStatus(sim, isStatus("done", "grey"));
    sim.receive({ payload: "start" });
    const messages = await output.take(20);
    const events = messages.map((msg) => validateEvent(msg.payload));
    assert.deepEqual(events.slice(0, 3).map((event) => event.sensorId), ["station-01", "station-02", "station-01"]);
    assert.deepEqual(events.map(seq), Array.from({ length: 20 }, (_, i) => Math.floor(i / 2)));
    for (const event of events) {
      assert.deepEqual(Object.keys(event.readings), ["vibration", "temperature"]);
      assert.equal(typeof event.label?.anomaly, "boolean");
    }
    assert.equal(events[2].timestamp - events[0].timestamp, 5, "200 events/s per station are 5 ms apart on the simulated clock");
    await done;
    await settle();
    assert.equal(output.total, 20, "nothing is sent after the limit");
  });

  it("starts by itself after deploy when autoStart is on", async () => {
    const { sim } = await deploy({ autoStart: true, stations: 1, limit: 3 });
    const done = await statusSeen(sim, isStatus("done", "grey"));
    assert.ok(done);
    const sends = (sim.send as unknown as SinonSpy).getCalls().filter((call) => call.thisValue === sim);
    assert.deepEqual(sends.map((call) => seq(call.args[0].payload)), [0, 1, 2]);
  });

  it("sends arrays of up to batchSize events in batch mode", async () => {
    const { sim, output } = await deploy({ batchSize: 5, limit: 23, stations: 3, preset: "environment" });
    const done = nextStatus(sim, isStatus("done", "grey"));
    sim.receive({ payload: "start" });
    const events: SensorEvent[] = [];
    while (events.length < 23) {
      const { payload } = await output.next();
      assert.ok(Array.isArray(payload), "a batch is an array");
      assert.ok(payload.length >= 1 && payload.length <= 5, `batch of ${payload.length}`);
      for (const event of payload) events.push(validateEvent(event));
    }
    await done;
    assert.equal(events.length, 23);
    assert.equal(new Set(events.map((event) => event.eventId)).size, 23);
    assert.deepEqual(Object.keys(events[0].readings), ["temperature", "humidity", "sound"]);
  });

  it("waits for start when autoStart is off, pauses on stop, resumes without a gap, and restarts from the seed on reset", async () => {
    const { sim, output } = await deploy({ stations: 1, ratePerStation: 100 });
    await settle();
    assert.equal(output.total, 0, "nothing before start");

    const green = nextStatus(sim, isStatus("running", "green"));
    sim.receive({ payload: "start" });
    await green;
    const first = (await output.next()).payload as SensorEvent;
    assert.equal(seq(first), 0);

    const stopped = nextStatus(sim, isStatus("stopped", "grey"));
    sim.receive({ payload: "stop" });
    await stopped;
    await settle();
    let last = first;
    for (let pending = output.total - 1; pending > 0; pending--) last = (await output.next()).payload as SensorEvent;

    sim.receive({ payload: " START " });
    const resumed = (await output.next()).payload as SensorEvent;
    assert.equal(seq(resumed), seq(last) + 1, "the sequence continues where it stopped");
    assert.equal(resumed.timestamp - last.timestamp, 10, "the simulated clock paused while stopped");

    sim.receive({ topic: "reset", payload: 1_700_000_000_000 });
    let again = (await output.next()).payload as SensorEvent;
    while (seq(again) !== 0) again = (await output.next()).payload as SensorEvent;
    assert.deepEqual(again.readings, first.readings, "reset replays the seed");
    assert.deepEqual(again.label, first.label);
  });

  it("rejects an unknown command, a number and a 1 MB string with done(err) naming it, and keeps working", async () => {
    const { sim, caught } = await deploy({});
    const red = nextStatus(sim, isRed);
    sim.receive({ payload: "jump" });
    assert.match((await caught.next()).error!.message, /unknown command "jump": send "start", "stop" or "reset" in msg.payload or msg.topic$/);
    assert.match(String((await red).text), /unknown command "jump"/);

    sim.receive({ payload: 1_700_000_000_000, topic: "go" });
    assert.match((await caught.next()).error!.message, /unknown command 1700000000000 \(topic "go"\)/);
    sim.receive({ payload: "x".repeat(1_000_000) });
    assert.match((await caught.next()).error!.message, /unknown command "x{40}…" \(1000000 characters\)/);

    const green = nextStatus(sim, isStatus("running", "green"));
    sim.receive({ topic: "start" });
    await green;
  });

  it("replays the CSV fixture with readings, labels and the quality flag, then shows done", async () => {
    const { sim, output } = await deploy({ mode: "csv", file: FIXTURE, timestampColumn: "timestamp", sensorIdColumn: "sensor", sensorId: "pump-00", speed: 0 });
    const done = nextStatus(sim, isStatus("done", "grey"));
    sim.receive({ payload: "start" });
    const events = (await output.take(9)).map((msg) => validateEvent(msg.payload));
    await done;
    assert.deepEqual(events.map((event) => event.timestamp - Date.UTC(2024, 0, 1)), [0, 1, 2, 3, 5, 6, 7, 8, 9].map((s) => s * 1000));
    assert.deepEqual(events[2].quality, { missing: ["vibration"] });
    assert.deepEqual(events[2].readings, { temperature: 45 });
    assert.deepEqual(events[4].label, { anomaly: true });
    assert.equal(events[6].sensorId, "pump-00");
    await settle();
    assert.equal(output.total, 9, "the row without any number is skipped");
    // start after done plays the file again from its first row, with the same event ids.
    sim.receive({ payload: "start" });
    assert.equal(((await output.next()).payload as SensorEvent).eventId, events[0].eventId);
  });

  it("replays on the file's clock divided by the speed-up", async () => {
    // 10 rows one second apart at 100× are due 10 ms apart: the last one about 90 ms after the first.
    const { sim, output } = await deploy({ mode: "csv", file: FIXTURE, speed: 100, batchSize: 100 });
    const done = nextStatus(sim, isStatus("done", "grey"));
    sim.receive({ payload: "start" });
    const events: SensorEvent[] = [];
    while (events.length < 9) events.push(...((await output.next()).payload as SensorEvent[]));
    await done;
    assert.equal(events[0].sensorId, "replay", "without a sensor column the file name is the sensor id");
    assert.ok(output.total >= 2, "rows due at different times go out in different messages");
  });

  it("stops a replay on a bad row with a red status and an error naming file, line and column", async () => {
    const path = join(directory, "bad.csv");
    writeFileSync(path, "timestamp,vibration\n1700000000,2.5\n1700000001,2.6\nabc,2.7\n1700000003,2.8\n");
    const { sim, output, caught } = await deploy({ mode: "csv", file: path, speed: 0 });
    const red = nextStatus(sim, isRed);
    sim.receive({ payload: "start" });
    assert.deepEqual((await output.take(2)).map((msg) => (msg.payload as SensorEvent).readings.vibration), [2.5, 2.6]);
    const error = await caught.next();
    assert.equal(error.error!.message, 'bad.csv line 4: column "timestamp" is not a date (got "abc")');
    assert.deepEqual(error.payload, { file: path, line: 4, column: "timestamp" });
    assert.match(String((await red).text), /bad\.csv line 4/);
    await settle();
    assert.equal(output.total, 2);
  });

  it("shows a red status naming the option for a bad configuration, and refuses commands with that error", async () => {
    const { sim, caught } = await deploy({ metrics: "vibration,pressure" });
    await settle();
    sim.receive({ payload: "start" });
    assert.match((await caught.next()).error!.message, /metric "pressure" is not in the "vibration" preset/);
  });

  it("reports a CSV file that cannot be opened at deploy with a red status, and refuses to start", async () => {
    const missing = join(directory, "missing.csv");
    const { sim, caught } = await deploy({ mode: "csv", file: missing, autoStart: true });
    // The status was set while the node was built, before a listener could attach.
    const red = await statusSeen(sim, isRed);
    assert.match(String(red.text), /cannot open/);
    sim.receive({ payload: "start" });
    const error = (await caught.next()).error!.message;
    assert.match(error, /cannot open the CSV file .*missing\.csv.*ENOENT/);
  });
});
