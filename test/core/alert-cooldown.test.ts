import assert from "node:assert/strict";
import { AlertCooldown } from "../../src/core/alert-cooldown";

/** Which of `flags` (one per event, one second apart) become alerts. */
function alerts(cooldown: AlertCooldown, flags: boolean[], key = "s1"): number[] {
  const fired: number[] = [];
  flags.forEach((flagged, index) => {
    if (cooldown.admit(key, flagged, index * 1000)) fired.push(index);
  });
  return fired;
}

describe("core/alert-cooldown AlertCooldown", () => {
  it("passes every flag through when no span is set", () => {
    assert.deepEqual(alerts(new AlertCooldown(), [true, true, false, true]), [0, 1, 3]);
  });

  it("turns one long run of flags into one alert per event cool-down", () => {
    const flags = Array.from({ length: 12 }, () => true);
    assert.deepEqual(alerts(new AlertCooldown({ events: 5 }), flags), [0, 6]);
  });

  it("counts the cool-down in event time when milliseconds are set", () => {
    const flags = Array.from({ length: 12 }, () => true);
    assert.deepEqual(alerts(new AlertCooldown({ milliseconds: 4000 }), flags), [0, 4, 8]);
  });

  it("keeps keys apart: one sensor's alert does not silence another", () => {
    const cooldown = new AlertCooldown({ events: 10 });
    assert.equal(cooldown.admit("a", true, 0), true);
    assert.equal(cooldown.admit("b", true, 0), true);
    assert.equal(cooldown.admit("a", true, 1), false);
  });

  it("survives a snapshot and restore mid-cool-down", () => {
    const cooldown = new AlertCooldown({ events: 3 });
    assert.equal(cooldown.admit("s1", true, 0), true);
    cooldown.admit("s1", false, 1);
    const restored = new AlertCooldown({ events: 3 });
    restored.restore(JSON.parse(JSON.stringify(cooldown.snapshot())));
    assert.equal(restored.admit("s1", true, 2), false);
    assert.equal(restored.admit("s1", true, 3), false);
    assert.equal(restored.admit("s1", true, 4), true);
  });

  it("rejects a negative or non-numeric span with a message naming it", () => {
    assert.throws(() => new AlertCooldown({ events: -1 }), /"events" must be a number/);
    assert.throws(() => new AlertCooldown({ milliseconds: Number.NaN }), /"milliseconds"/);
  });
});
