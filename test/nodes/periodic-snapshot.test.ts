// The state files of the detector nodes (src/runtime/periodic-snapshot.ts, src/core/json-file-store.ts): timer saves
// written off the event loop, a close that always leaves the newest state, and write failures reported and retried.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { saveJsonTextInBackground } from "../../src/core/json-file-store";
import { PeriodicSnapshot } from "../../src/runtime/periodic-snapshot";

const until = async (condition: () => boolean, what: string, ms = 5000): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
};

describe("runtime/periodic-snapshot", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "iot-anomaly-snapshot-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const read = (path: string): unknown => JSON.parse(readFileSync(path, "utf8"));
  const leftovers = () => readdirSync(dir, { recursive: true }).map(String).filter((name) => name.endsWith(".tmp"));

  it("writes a changed state on its timer and nothing while the state is unchanged", async () => {
    const path = join(dir, "state", "detector.json");
    let state = { sensors: 1 };
    let captures = 0;
    const snapshots = new PeriodicSnapshot(path, () => (captures++, state), (error) => assert.fail(error));
    snapshots.start(10);
    try {
      snapshots.touch();
      await until(() => captures === 1, "the first capture");
      await snapshots.settled();
      assert.deepEqual(read(path), { sensors: 1 });
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(captures, 1, "no change, no capture");
      state = { sensors: 2 };
      snapshots.touch();
      await until(() => captures === 2, "the second capture");
      await snapshots.settled();
      assert.deepEqual(read(path), { sensors: 2 });
      assert.deepEqual(leftovers(), []);
    } finally {
      snapshots.stop();
    }
  });

  it("a close while a timer save is still being written leaves the newest state, whichever write ends last", async () => {
    const path = join(dir, "detector.json");
    // Big enough that its write is still under way when the node closes.
    let state: { version: string; padding: string } = { version: "timer", padding: "x".repeat(4_000_000) };
    let captures = 0;
    const snapshots = new PeriodicSnapshot(path, () => {
      captures++;
      // Runs before the write started by this capture can finish: the node closes with the state changed again.
      if (captures === 1) {
        process.nextTick(() => {
          state = { version: "close", padding: "" };
          snapshots.touch();
          snapshots.stop();
        });
      }
      return state;
    }, (error) => assert.fail(error));
    snapshots.touch();
    snapshots.start(5);
    await until(() => captures === 2, "the close's capture");
    assert.equal((read(path) as { version: string }).version, "close", "the close wrote synchronously");
    await snapshots.settled();
    assert.equal((read(path) as { version: string }).version, "close", "the older timer save did not replace it");
    assert.deepEqual(leftovers(), [], "the timer save's temp file is gone");
  });

  it("a close with nothing new still writes when a timer save is under way, so a node started next reads the newest state", async () => {
    const path = join(dir, "detector.json");
    writeFileSync(path, JSON.stringify({ version: "old" }));
    let captures = 0;
    const snapshots = new PeriodicSnapshot(path, () => {
      captures++;
      if (captures === 1) process.nextTick(() => snapshots.stop());
      return { version: "new", padding: "x".repeat(1_000_000) };
    }, (error) => assert.fail(error));
    snapshots.touch();
    snapshots.start(5);
    await until(() => captures === 2, "the close's capture");
    assert.equal((read(path) as { version: string }).version, "new", "readable at once after stop()");
    await snapshots.settled();
    assert.deepEqual(leftovers(), []);
  });

  it("reports a failed write and tries again on the next tick", async () => {
    // The state directory cannot be created: a file is in its place.
    writeFileSync(join(dir, "state"), "not a directory");
    const errors: Error[] = [];
    const snapshots = new PeriodicSnapshot(join(dir, "state", "detector.json"), () => ({ sensors: 1 }), (error) => errors.push(error));
    snapshots.touch();
    snapshots.start(10);
    try {
      await until(() => errors.length >= 2, "two failed attempts");
      assert.match(errors[0].message, /ENOTDIR|EEXIST/);
    } finally {
      snapshots.stop();
    }
  });
});

describe("core/json-file-store saveJsonTextInBackground", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "iot-anomaly-json-store-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("replaces the file only when the state is still the newest, and never leaves its temp file", async () => {
    const path = join(dir, "state.json");
    writeFileSync(path, '{"v":1}');
    assert.equal(await saveJsonTextInBackground(path, '{"v":2}', () => false), false);
    assert.equal(readFileSync(path, "utf8"), '{"v":1}');
    assert.equal(await saveJsonTextInBackground(path, '{"v":3}', () => true), true);
    assert.equal(readFileSync(path, "utf8"), '{"v":3}');
    assert.deepEqual(readdirSync(dir), ["state.json"]);
  });
});
