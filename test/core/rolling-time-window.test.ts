import assert from "node:assert/strict";
import { RollingTimeWindow } from "../../src/core/rolling-time-window";
import { gaussian } from "../support/seeded-noise";

/** Brute force of the documented rules: arrival-order list, evict while the earliest-arrived reading is at or
 * before `t - span`, then the earliest-arrived one if full; statistics by the two-pass formula. */
class ReferenceWindow {
  readonly entries: Array<{ value: number; time: number }> = [];
  constructor(
    private readonly capacity: number,
    private readonly spanMs: number,
  ) {}

  add(value: number, time: number): void {
    while (this.entries.length > 0 && this.entries[0].time <= time - this.spanMs) this.entries.shift();
    if (this.entries.length === this.capacity) this.entries.shift();
    this.entries.push({ value, time });
  }

  stats(): { count: number; mean: number | null; std: number | null } {
    const values = this.entries.map((entry) => entry.value);
    if (values.length === 0) return { count: 0, mean: null, std: null };
    const mean = values.reduce((sum, x) => sum + (x - values[0]), 0) / values.length + values[0];
    if (values.length < 2) return { count: 1, mean, std: null };
    const std = Math.sqrt(values.reduce((sum, x) => sum + (x - mean) ** 2, 0) / (values.length - 1));
    return { count: values.length, mean, std };
  }
}

function assertClose(window: RollingTimeWindow, reference: ReferenceWindow, where: string, tolerance = 1e-9): void {
  const expected = reference.stats();
  assert.equal(window.count, expected.count, `count ${where}`);
  if (expected.mean === null) return assert.equal(window.mean, null, `mean ${where}`);
  assert.ok(Math.abs((window.mean as number) - expected.mean) <= tolerance * Math.max(1, Math.abs(expected.mean)), `mean ${where}`);
  if (expected.std === null) return assert.equal(window.std, null, `std ${where}`);
  // Relative to the std, plus what float64 can resolve at the data's magnitude (two readings 0.003 apart at 1e6
  // carry only ~8 significant digits of their difference, in the reference too).
  const allowed = tolerance * expected.std + 1e-14 * Math.abs(expected.mean);
  assert.ok(Math.abs((window.std as number) - expected.std) <= allowed, `std ${where}: ${window.std} vs ${expected.std}`);
}

describe("core/rolling-time-window RollingTimeWindow", () => {
  it("matches a brute-force time window at every step, evicting by time and by the cap, 1e6 offset included", () => {
    for (const offset of [0, 1e6]) {
      const noise = gaussian(21);
      const window = new RollingTimeWindow(50, 10_000);
      const reference = new ReferenceWindow(50, 10_000);
      let time = 1_700_000_000_000;
      let evictedByCap = 0;
      let emptied = 0;
      for (let i = 0; i < 20_000; i++) {
        // Bursts (many readings per second: the cap binds), slow stretches (time binds) and now and then a gap
        // longer than the window (it empties).
        const phase = Math.floor(i / 1000) % 3;
        time += phase === 0 ? 50 : phase === 1 ? 700 : i % 97 === 0 ? 15_000 : 400;
        if (window.count === 50 && window.oldestTime as number > time - 10_000) evictedByCap++;
        const value = offset + 3 * noise() + (i % 331 === 0 ? 40 : 0);
        window.add(value, time);
        reference.add(value, time);
        if (window.count === 1) emptied++;
        assertClose(window, reference, `at ${i} (offset ${offset})`);
      }
      assert.ok(evictedByCap > 1000, `cap evictions exercised: ${evictedByCap}`);
      assert.ok(emptied > 10, `emptying gaps exercised: ${emptied}`);
    }
  });

  it("keeps out-of-order and equal timestamps consistent with the arrival-order rule, never a negative variance", () => {
    const noise = gaussian(22);
    const window = new RollingTimeWindow(200, 5_000);
    const reference = new ReferenceWindow(200, 5_000);
    let clock = 0;
    for (let i = 0; i < 20_000; i++) {
      clock += 100;
      // Jitter of up to ±3 s (late and early readings), runs of equal timestamps, and a very late straggler now and then.
      const time = i % 50 < 5 ? clock - (clock % 1000) : i % 211 === 0 ? clock - 60_000 : clock + Math.round(3000 * noise());
      const value = 20 + noise();
      window.add(value, time);
      reference.add(value, time);
      assertClose(window, reference, `at ${i}`);
      if (window.count >= 2) assert.ok((window.variance as number) >= 0);
    }
  });

  it("drops a reading exactly windowSeconds old, keeps readings with equal timestamps together", () => {
    const window = new RollingTimeWindow(10, 1000);
    window.add(1, 0);
    window.add(2, 500);
    window.add(3, 500);
    assert.equal(window.count, 3);
    window.add(4, 1000); // the reading at 0 is now 1000 ms old: out
    assert.deepEqual(Array.from(window.readings()[1]), [500, 500, 1000]);
    window.add(5, 1499);
    assert.equal(window.count, 4);
    window.advance(1500);
    assert.deepEqual(Array.from(window.readings()[0]), [4, 5]);
  });

  it("lets a late reading leave in arrival order, after the readings that arrived before it", () => {
    const window = new RollingTimeWindow(10, 1000);
    window.add(1, 10_000);
    window.add(2, 9_000); // late: 1 s older than the newest, counted
    window.add(3, 10_500);
    assert.equal(window.count, 3);
    window.advance(10_999);
    assert.equal(window.count, 3, "the late reading waits behind the one at 10000");
    window.advance(11_000);
    assert.deepEqual(Array.from(window.readings()[0]), [3], "both leave once the earlier arrival is out");
    window.advance(5_000);
    assert.equal(window.count, 1, "time never runs backwards: a late timestamp evicts nothing");
  });

  it("empties after a gap longer than the span and starts again with exact statistics", () => {
    const window = new RollingTimeWindow(100, 60_000);
    for (let i = 0; i < 100; i++) window.add(1e6 + (i % 7), i * 1000);
    window.add(42, 500_000);
    assert.equal(window.count, 1);
    assert.equal(window.mean, 42);
    assert.equal(window.std, null);
    window.add(44, 501_000);
    assert.equal(window.mean, 43);
    assert.equal(window.std, Math.SQRT2);
  });

  it("has exact statistics right after a 4294967295 error code leaves (no rounding residue of the huge M2)", () => {
    const noise = gaussian(23);
    const window = new RollingTimeWindow(1000, 100_000);
    const reference = new ReferenceWindow(1000, 100_000);
    let time = 0;
    const push = (value: number) => {
      time += 1000;
      window.add(value, time);
      reference.add(value, time);
    };
    for (let i = 0; i < 150; i++) push(20 + 0.3 * noise());
    push(4294967295);
    for (let i = 0; i < 100; i++) {
      push(20 + 0.3 * noise());
      if (i >= 99) assertClose(window, reference, `after the glitch left (${i})`, 1e-9);
    }
  });

  it("never holds more than its capacity, and its memory follows the readings held (the ring grows by doubling)", () => {
    const window = new RollingTimeWindow(100_000, 1e12);
    for (let i = 0; i < 20; i++) window.add(i, i);
    assert.ok(JSON.stringify(window).length < 1000, "20 readings: a small state");
    const capped = new RollingTimeWindow(64, 1e12);
    for (let i = 0; i < 1000; i++) {
      capped.add(i, i);
      assert.ok(capped.count <= 64);
    }
    assert.deepEqual(Array.from(capped.readings()[0]).slice(0, 2), [936, 937]);
  });

  it("ignores NaN and ±Infinity values and non-finite timestamps", () => {
    const window = new RollingTimeWindow(4, 1000);
    window.add(1, 0);
    window.add(3, 1);
    assert.equal(window.add(NaN, 2), false);
    assert.equal(window.add(Infinity, 2), false);
    assert.equal(window.add(5, NaN), false);
    assert.equal(window.count, 2);
    assert.equal(window.mean, 2);
  });

  it("continues bit-for-bit after toJSON / JSON text / fromJSON", () => {
    const noise = gaussian(24);
    for (const before of [3, 40, 3000]) {
      const original = new RollingTimeWindow(64, 5_000);
      let time = 0;
      for (let i = 0; i < before; i++) original.add(1e6 + noise(), (time += 97));
      const restored = RollingTimeWindow.fromJSON(JSON.parse(JSON.stringify(original)));
      assert.equal(restored.count, original.count);
      for (let i = 0; i < 3000; i++) {
        const value = 1e6 + noise();
        time += i % 500 === 0 ? 6000 : 80;
        original.add(value, time);
        restored.add(value, time);
        assert.equal(restored.mean, original.mean, `mean after ${before} + ${i}`);
        assert.equal(restored.std, original.std, `std after ${before} + ${i}`);
      }
    }
  });

  it("refuses a bad capacity or span and a malformed state, naming what is wrong", () => {
    assert.throws(() => new RollingTimeWindow(1, 1000), /"windowSize" must be an integer from 2 to 100000 \(got 1\)/);
    assert.throws(() => new RollingTimeWindow(10, 0), /time span must be a positive number of milliseconds \(got 0\)/);
    const good = new RollingTimeWindow(3, 1000);
    good.add(1, 0);
    const state = good.toJSON();
    assert.throws(() => RollingTimeWindow.fromJSON({ ...state, times: "abc" }), /time window state "times" is not a whole number/);
    assert.throws(() => RollingTimeWindow.fromJSON({ ...state, times: "" }), /1 values but 0 timestamps/);
    const full = new RollingTimeWindow(5, 1000);
    for (let i = 0; i < 5; i++) full.add(i, i);
    assert.throws(() => RollingTimeWindow.fromJSON({ ...full.toJSON(), capacity: 3 }), /5 values, more than its capacity 3/);
    const restored = RollingTimeWindow.fromJSON({ ...full.toJSON(), mean: Number.NaN });
    assert.equal(restored.mean, 2, "inconsistent running sums are recomputed from the values");
  });
});
