import assert from "node:assert/strict";
import type { EventEmitter } from "node:events";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { Node, NodeMessage, NodeStatus } from "node-red";
import helper from "node-red-node-test-helper";
import sqliteSinkNode from "../../nodes/sqlite-sink/sqlite-sink";
import { smallDiskForTest } from "../support/small-disk";

helper.init(require.resolve("node-red"));

type Message = NodeMessage & { stored?: { inserted: number; duplicates: number }; error?: { message: string } };

const T0 = Date.UTC(2025, 0, 1);
const event = (index: number, extra: Record<string, unknown> = {}) => ({
  sensorId: "press-7",
  timestamp: T0 + index * 1000,
  readings: { vibration: 2 + index / 10, temperature: 40 },
  ...extra,
});

/** Messages a helper node receives, in order, as promises. */
function inbox(node: Node): () => Promise<Message> {
  const received: Message[] = [];
  const waiting: Array<(msg: Message) => void> = [];
  node.on("input", (msg: NodeMessage) => {
    const waiter = waiting.shift();
    if (waiter) waiter(msg as Message);
    else received.push(msg as Message);
  });
  return () => new Promise((resolve) => {
    const first = received.shift();
    if (first) resolve(first);
    else waiting.push(resolve);
  });
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

describe("iot-sqlite-sink node", () => {
  let directory: string;
  let path: string;
  let connections: Database.Database[];

  const rowCount = () => {
    const db = new Database(path, { readonly: true, fileMustExist: true });
    try {
      return (db.prepare("SELECT count(*) AS n FROM events").get() as { n: number }).n;
    } finally {
      db.close();
    }
  };

  // Complete and Catch nodes scoped to the sink show what a user's flow would see of done() and done(err).
  const flow = (config: Record<string, unknown> = {}) => [
    { id: "f1", type: "tab", label: "sink" },
    { id: "sink", z: "f1", type: "iot-sqlite-sink", name: "", path, table: "events", batchSize: 500, flushInterval: 10, retentionDays: 0, wires: [["out"]], ...config },
    { id: "out", z: "f1", type: "helper" },
    { id: "onComplete", z: "f1", type: "complete", scope: ["sink"], uncaught: false, wires: [["completed"]] },
    { id: "completed", z: "f1", type: "helper" },
    { id: "onCatch", z: "f1", type: "catch", scope: ["sink"], uncaught: false, wires: [["caught"]] },
    { id: "caught", z: "f1", type: "helper" },
  ];

  async function start(config: Record<string, unknown> = {}) {
    await helper.load(sqliteSinkNode, flow(config));
    const sink = helper.getNode("sink");
    return {
      sink,
      output: inbox(helper.getNode("out")),
      completed: helper.getNode("completed"),
      caught: inbox(helper.getNode("caught")),
    };
  }

  beforeEach((done) => {
    directory = mkdtempSync(join(tmpdir(), "sqlite-sink-"));
    path = join(directory, "anomalies.db");
    connections = [];
    helper.startServer(done);
  });

  afterEach(async () => {
    await helper.unload();
    for (const db of connections) db.close();
    helper.settings({ userDir: undefined });
    rmSync(directory, { recursive: true, force: true });
    await new Promise<void>((resolve) => helper.stopServer(resolve));
  });

  it("stores an event with its detector columns and completes the message only after the commit", async () => {
    // A flush interval long enough that a done() called before the commit would be seen with 0 rows.
    const { sink, output, completed } = await start({ flushInterval: 300 });
    const rowsAtCompletion = new Promise<number>((resolve) => completed.on("input", () => resolve(rowCount())));
    const green = nextStatus(sink, (status) => status.fill === "green");
    sink.receive({
      payload: event(1, {
        label: { anomaly: true, kind: "spike", metric: "vibration" },
        detectors: {
          rolling3Sigma: { anomaly: true, ready: true, metrics: { vibration: { mean: 2, std: 0.1, z: 6.2, flag: true } } },
          isolationForest: { score: 0.74, anomaly: true, threshold: 0.62, modelVersion: 2 },
        },
      }),
    });
    assert.equal(rowCount(), 0, "nothing is committed inside the input handler");

    const sent = await output();
    assert.equal(rowCount(), 1, "the row is committed when the message is sent on");
    assert.deepEqual(sent.stored, { inserted: 1, duplicates: 0 });
    assert.equal((sent.payload as { eventId: string }).eventId, `press-7:${T0 + 1000}`);
    assert.equal(await rowsAtCompletion, 1);
    assert.equal((await green).shape, "dot");

    const db = new Database(path, { readonly: true });
    connections.push(db);
    const row = db.prepare("SELECT * FROM events").get() as Record<string, unknown>;
    assert.equal(row.sensor_id, "press-7");
    assert.equal(row.ts, T0 + 1000);
    assert.equal(row.anomaly, 1);
    assert.equal(row.sigma_anomaly, 1);
    assert.equal(row.sigma_max_abs_z, 6.2);
    assert.equal(row.sigma_z, '{"vibration":6.2}');
    assert.equal(row.sigma_flags, '["vibration"]');
    assert.equal(row.iforest_score, 0.74);
    assert.equal(row.iforest_anomaly, 1);
    assert.equal(row.model_version, 2);
    assert.equal(row.label_kind, "spike");
    assert.equal(row.label_metric, "vibration");
    assert.ok(!("detectors" in row), "the full detector JSON is not stored unless asked for");
    assert.deepEqual(db.prepare("SELECT event_id FROM events_anomalies").all(), [{ event_id: `press-7:${T0 + 1000}` }]);
  });

  it("stores every detector's full result as JSON when storeDetails is checked", async () => {
    const { sink, output } = await start({ storeDetails: true });
    const detectors = {
      rolling3Sigma: { anomaly: false, ready: true, metrics: { vibration: { mean: 2, std: 0.1, z: 1.5, flag: false } } },
      isolationForest: { score: 0.4, anomaly: false, threshold: 0.62, modelVersion: 2 },
    };
    sink.receive({ payload: event(1, { detectors }) });
    await output();
    const db = new Database(path, { readonly: true });
    connections.push(db);
    const row = db.prepare("SELECT detectors, sigma_z FROM events").get() as { detectors: string; sigma_z: string };
    assert.deepEqual(JSON.parse(row.detectors), detectors);
    assert.equal(row.sigma_z, '{"vibration":1.5}');
  });

  it("does not store a replayed event twice", async () => {
    const { sink, output } = await start();
    sink.receive({ payload: event(1) });
    assert.deepEqual((await output()).stored, { inserted: 1, duplicates: 0 });
    sink.receive({ payload: JSON.stringify(event(1)) });
    assert.deepEqual((await output()).stored, { inserted: 0, duplicates: 1 });
    assert.equal(rowCount(), 1);
  });

  it("stores a batch message in one go and sends it on as a batch", async () => {
    const { sink, output } = await start();
    sink.receive({ payload: [event(1), event(2), event(3)] });
    const sent = await output();
    assert.ok(Array.isArray(sent.payload));
    assert.equal((sent.payload as unknown[]).length, 3);
    assert.deepEqual(sent.stored, { inserted: 3, duplicates: 0 });
    assert.equal(rowCount(), 3);
  });

  const badPayloads: Array<[string, unknown, string, RegExp]> = [
    ["malformed JSON text", '{"sensorId": "press-7", ', "payload", /not valid JSON/],
    ["a missing sensorId", { timestamp: T0, readings: { vibration: 1 } }, "sensorId", /"sensorId" must be a non-empty string/],
    ["a NaN reading", event(1, { readings: { vibration: Number.NaN } }), "readings.vibration", /reading "vibration" is not finite/],
    ["a non-numeric reading", event(1, { readings: { vibration: "n/a" } }), "readings.vibration", /reading "vibration" is not a number \(got "n\/a"\)/],
    ["a 1 MB string", "x".repeat(1024 * 1024), "payload", /payload is too large/],
  ];
  for (const [title, payload, field, message] of badPayloads) {
    it(`reports ${title} to Catch naming "${field}", shows a red status, and stores the next message`, async () => {
      const { sink, output, caught } = await start();
      const fieldReported = new Promise<string>((resolve) => sink.once("call:error", (call: { args: [{ field?: string }] }) => resolve(call.args[0].field ?? "")));
      const red = nextStatus(sink, (status) => status.fill === "red");
      sink.receive({ payload });
      assert.match((await caught()).error!.message, message);
      assert.equal(await fieldReported, field);
      assert.equal((await red).shape, "ring");

      sink.receive({ payload: event(5) });
      assert.deepEqual((await output()).stored, { inserted: 1, duplicates: 0 });
      assert.equal(rowCount(), 1);
    });
  }

  it("stores the valid events of a batch, sends them on, and reports the invalid one after the commit", async () => {
    const { sink, output, caught } = await start();
    sink.receive({ payload: [event(1), event(2, { readings: { vibration: "broken" } }), event(3)] });
    const sent = await output();
    assert.equal((sent.payload as unknown[]).length, 2);
    assert.deepEqual(sent.stored, { inserted: 2, duplicates: 0 });
    const error = (await caught()).error!;
    assert.match(error.message, /event \[1\]: reading "vibration" is not a number/);
    assert.equal(rowCount(), 2, "the valid events are committed when the error is reported");
  });

  it("reports a failed commit to Catch with the SQLite message, shows a red status, and stores the next message", async () => {
    const { sink, output, caught } = await start();
    sink.receive({ payload: event(1) });
    await output();
    // Another program's trigger makes the next commit fail the way a full disk or a constraint would.
    const other = new Database(path);
    connections.push(other);
    other.exec(`CREATE TRIGGER refuse_broken BEFORE INSERT ON events WHEN NEW.sensor_id = 'broken'
                BEGIN SELECT RAISE(ABORT, 'sensor retired'); END`);
    const red = nextStatus(sink, (status) => status.fill === "red");
    sink.receive({ payload: event(2, { sensorId: "broken" }) });
    assert.match((await caught()).error!.message, /SQLite could not store 1 event in .*anomalies\.db: sensor retired/);
    assert.equal((await red).shape, "ring");

    sink.receive({ payload: event(3) });
    assert.deepEqual((await output()).stored, { inserted: 1, duplicates: 0 });
    assert.equal(rowCount(), 2);
  });

  it("fails a message at once, to Catch, when Queue at most rows already wait for a locked database", async () => {
    const { sink, output, caught } = await start({ maxPending: "3" });
    sink.receive({ payload: event(0) }); // creates the table before another program locks it
    await output();
    const other = new Database(path);
    connections.push(other);
    other.exec("BEGIN IMMEDIATE"); // holds the write lock, as a SQLite browser with unsaved edits does
    sink.receive({ payload: [event(1), event(2), event(3)] });
    const red = nextStatus(sink, (status) => status.fill === "red");
    sink.receive({ payload: event(4) });
    const refused = (await caught()).error!;
    assert.match(refused.message, /SQLite could not store 1 event in .*anomalies\.db: 3 rows are already waiting for the database \(limit 3\)/);
    assert.equal((await red).shape, "ring");

    // The lock goes away: the queued batch is stored, and the next message too.
    other.exec("COMMIT");
    assert.deepEqual((await output()).stored, { inserted: 3, duplicates: 0 });
    sink.receive({ payload: event(5) });
    assert.deepEqual((await output()).stored, { inserted: 1, duplicates: 0 });
    assert.equal(rowCount(), 5);
  });

  it("waits out another program's write lock with a yellow status, then stores the message instead of failing it", async function () {
    this.timeout(20_000); // one attempt waits the 5 s busy timeout before the first retry
    const { sink, output, caught } = await start();
    sink.receive({ payload: event(0) });
    await output();
    const warnings: string[] = [];
    (sink as unknown as EventEmitter).on("call:warn", (call: { args: [string] }) => warnings.push(String(call.args[0])));
    const other = new Database(path);
    connections.push(other);
    other.exec("BEGIN IMMEDIATE");
    const locked = nextStatus(sink, (status) => status.fill === "yellow");
    let failed = false;
    void caught().then(() => (failed = true));
    sink.receive({ payload: [event(1), event(2)] });
    assert.equal((await locked).shape, "ring");
    assert.equal(warnings.length, 1, warnings.join(" | "));
    other.exec("COMMIT");
    const green = nextStatus(sink, (status) => status.fill === "green");
    assert.deepEqual((await output()).stored, { inserted: 2, duplicates: 0 });
    await green;
    assert.equal(failed, false, "nothing went to Catch");
    assert.equal(rowCount(), 3);
  });

  it("waits out a full disk (a real, filled tmpfs) with a yellow status, then stores the message instead of failing it", async function () {
    this.timeout(20_000);
    const disk = smallDiskForTest(this, 2048);
    try {
      path = join(disk.dir, "anomalies.db");
      const { sink, output, caught } = await start();
      sink.receive({ payload: event(0) });
      await output();
      const warnings: string[] = [];
      (sink as unknown as EventEmitter).on("call:warn", (call: { args: [string] }) => warnings.push(String(call.args[0])));
      disk.fill();
      const full = nextStatus(sink, (status) => status.fill === "yellow");
      let failed = false;
      void caught().then(() => (failed = true));
      // About 400 KB of rows: more than the write-ahead log already holds, so SQLite needs blocks the disk lacks.
      sink.receive({ payload: Array.from({ length: 2000 }, (_, i) => event(i + 1)) });
      assert.match(String((await full).text), /disk full|status\.full/, "the status says why the sink waits");
      assert.equal(warnings.length, 1, warnings.join(" | "));
      disk.free();
      assert.deepEqual((await output()).stored, { inserted: 2000, duplicates: 0 });
      assert.equal(failed, false, "nothing went to Catch");
      assert.equal(rowCount(), 2001);
    } finally {
      await helper.unload();
      disk.unmount();
    }
  });

  it("uses the default queue bound for a flow saved before the setting existed", async () => {
    const { sink, output } = await start({ maxPending: undefined });
    sink.receive({ payload: Array.from({ length: 50 }, (_, i) => event(i)) });
    assert.equal((await output()).stored!.inserted, 50);
  });

  it("commits queued rows when the flow is stopped, so a redeploy loses nothing", async () => {
    const { sink } = await start({ flushInterval: 600_000 });
    sink.receive({ payload: [event(1), event(2)] });
    assert.equal(rowCount(), 0);
    await helper.unload();
    assert.equal(rowCount(), 2);
  });

  it("creates a relative database path inside the Node-RED user directory", async () => {
    helper.settings({ userDir: directory });
    const { sink, output } = await start({ path: "data/line-1.db" });
    sink.receive({ payload: event(1) });
    await output();
    assert.ok(existsSync(join(directory, "data", "line-1.db")));
  });

  it("refuses a table name that is not a plain SQL name, and reports every message instead of dropping it", async () => {
    const { sink, caught } = await start({ table: "events; DROP TABLE users" });
    const red = nextStatus(sink, (status) => status.fill === "red");
    assert.match((await red).text as string, /"table" must be a plain SQL name/);
    sink.receive({ payload: event(1) });
    assert.match((await caught()).error!.message, /"table" must be a plain SQL name/);
    assert.equal(existsSync(path), false);
  });
});
