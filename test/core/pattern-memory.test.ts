// The patterns a contextual-novelty detector remembers (src/core/stream-detectors/pattern-memory.ts): a bitset and
// text keys learn the same patterns, a bitset takes over version 1 text keys, malformed states are refused; and the
// detector scores the same with either, across a snapshot of each kind.
import assert from "node:assert/strict";
import { ContextualNovelty } from "../../src/core/stream-detectors/contextual-novelty";
import { MAX_PATTERN_BITS, PatternBits, PatternKeys, type PatternLayout } from "../../src/core/stream-detectors/pattern-memory";
import { CONTEXTUAL_NOVELTY_DEFAULTS } from "../../src/core/stream-detectors/spec";
import { gaussian } from "../support/seeded-noise";

const LAYOUT: PatternLayout = { grids: [6, 8, 10, 12], maxOrder: 2, dayParts: 24 };

/** A level of a grid of `levels`, the outside levels (-1 and `levels`) included, as the detector makes them. */
function levelOf(random: () => number, levels: number): number {
  return Math.min(levels, Math.max(-1, Math.floor(((random() + 3) / 6) * (levels + 2)) - 1));
}

describe("core/stream-detectors/pattern-memory", () => {
  it("numbers every possible pattern of the shipped grids in 2128 bits, and gives up on layouts too large for a bitset", () => {
    assert.equal(PatternBits.size({ grids: [6, 8, 10, 12], maxOrder: 1, dayParts: 24 }), 4 * (14 * 14 + 24 * 14));
    assert.equal(PatternBits.size({ grids: [1000], maxOrder: 2, dayParts: 0 }), null);
    assert.equal(PatternBits.size({ grids: [12], maxOrder: 5, dayParts: 24 }), null, `more than ${MAX_PATTERN_BITS} bits`);
  });

  it("a bitset and text keys say the same about every pattern, new exactly once", () => {
    const bits = PatternBits.forLayout(LAYOUT)!;
    const keys = new PatternKeys();
    const random = gaussian(21);
    const recent = LAYOUT.grids.map(() => [] as number[]);
    let news = 0;
    for (let row = 0; row < 20_000; row++) {
      for (let grid = 0; grid < LAYOUT.grids.length; grid++) {
        const levels = LAYOUT.grids[grid];
        const level = levelOf(random, levels);
        const order = recent[grid].length;
        const fromBits = bits.learnTransitions(grid, level, recent[grid], order);
        assert.equal(fromBits, keys.learnTransitions(grid, level, recent[grid], order), `row ${row}, grid ${grid}`);
        const dayPart = row % LAYOUT.dayParts;
        assert.equal(bits.learnDayPart(grid, dayPart, level), keys.learnDayPart(grid, dayPart, level), `row ${row}, grid ${grid}, day part`);
        news += fromBits;
        recent[grid].push(level);
        if (recent[grid].length > LAYOUT.maxOrder) recent[grid].shift();
      }
    }
    assert.ok(news > 100, `${news} new transitions`);
    // The text keys of a version 1 state, loaded into a bitset, are the same bits.
    const loaded = PatternBits.forLayout(LAYOUT)!;
    loaded.loadKeys(keys.toState().seen);
    assert.equal(loaded.toState().seenBits, bits.toState().seenBits);
  });

  it("refuses text keys that are not patterns of its layout, and a bitset of another layout", () => {
    const bits = PatternBits.forLayout(LAYOUT)!;
    for (const key of ["3|1", "x,0|1", "0,9|1", "0|1,2", "1,2,3,0|1", "0,0|13", "0@24|1", "0@-1|1", "4@0|1", "0,-2|1", ""]) {
      assert.throws(() => bits.loadKeys([key]), /malformed pattern/, JSON.stringify(key));
    }
    assert.throws(() => bits.loadBits(PatternBits.forLayout({ ...LAYOUT, dayParts: 12 })!.toState().seenBits), /bytes of patterns, this detector's layout has/);
    assert.throws(() => bits.loadBits(42), /seenBits is not a string/);
  });
});

describe("core/stream-detectors/contextual-novelty patterns", () => {
  const context = { warmupRows: 50, range: { min: -3, max: 3 } };
  const series = (seed: number, rows: number) => {
    const random = gaussian(seed);
    return Array.from({ length: rows }, (_, row) => ({ time: 1_700_000_000_000 + row * 300_000, value: random() + (row % 997 === 0 ? 5 : 0) }));
  };

  it("scores the same with a bitset as with text keys, and a bitset detector takes over a version 1 state", () => {
    const withBits = new ContextualNovelty(CONTEXTUAL_NOVELTY_DEFAULTS, context);
    const withKeys = new ContextualNovelty(CONTEXTUAL_NOVELTY_DEFAULTS, context, 0);
    for (const { time, value } of series(3, 3000)) assert.equal(withBits.score(time, value), withKeys.score(time, value));
    const v1 = JSON.parse(JSON.stringify(withKeys.snapshot()));
    assert.equal(v1.version, 1);
    const v2 = JSON.parse(JSON.stringify(withBits.snapshot()));
    assert.equal(v2.version, 2);
    assert.ok(JSON.stringify(v2).length * 10 < JSON.stringify(v1).length, `bitset state ${JSON.stringify(v2).length} chars, text keys ${JSON.stringify(v1).length}`);

    const fromV1 = new ContextualNovelty(CONTEXTUAL_NOVELTY_DEFAULTS, context);
    fromV1.restore(v1);
    const fromV2 = new ContextualNovelty(CONTEXTUAL_NOVELTY_DEFAULTS, context);
    fromV2.restore(v2);
    assert.deepEqual(fromV1.snapshot(), withBits.snapshot(), "a version 1 state becomes the same bitset");
    for (const { time, value } of series(4, 2000)) {
      const expected = withKeys.score(time, value);
      assert.equal(fromV1.score(time, value), expected);
      assert.equal(fromV2.score(time, value), expected);
    }
  });

  it("a detector keeping text keys refuses a bitset state", () => {
    const withBits = new ContextualNovelty(CONTEXTUAL_NOVELTY_DEFAULTS, context);
    withBits.score(1_700_000_000_000, 0.5);
    const withKeys = new ContextualNovelty(CONTEXTUAL_NOVELTY_DEFAULTS, context, 0);
    assert.throws(() => withKeys.restore(withBits.snapshot()), /holds its patterns as a bitset, this detector keeps text keys/);
    const outOfGrid = { ...withBits.snapshot(), recent: [[0], [0], [0], [13]] };
    assert.throws(() => new ContextualNovelty(CONTEXTUAL_NOVELTY_DEFAULTS, context).restore(outOfGrid), /malformed recent levels/);
  });
});
