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

  it("does not treat a late event as cooling down by time when only an event count is set", () => {
    const cooldown = new AlertCooldown({ events: 2 });
    assert.equal(cooldown.admit("s1", true, 10_000), true);
    assert.equal(cooldown.admit("s1", false, 11_000), false);
    assert.equal(cooldown.admit("s1", false, 12_000), false);
    // Three events later, a flag with a timestamp before the last alert (a late reading) is a new alert.
    assert.equal(cooldown.admit("s1", true, 5_000), true);
  });

  it("forgets a key once its cool-down is over and an unflagged event passes, so memory holds only cooling keys", () => {
    const cooldown = new AlertCooldown({ events: 2, milliseconds: 3000 });
    for (let sensor = 0; sensor < 100; sensor++) cooldown.admit(`s${sensor}`, true, 0);
    assert.equal(cooldown.size, 100);
    for (let sensor = 0; sensor < 100; sensor++) {
      for (let i = 1; i <= 4; i++) cooldown.admit(`s${sensor}`, false, i * 1000);
    }
    assert.equal(cooldown.size, 0);
    assert.deepEqual(cooldown.snapshot().keys, []);
    // Forgotten is the same as over: the next flag is an alert again.
    assert.equal(cooldown.admit("s1", true, 5000), true);
  });

  it("keeps cooling down on the later of the two spans when both are set", () => {
    const flags = Array.from({ length: 12 }, () => true);
    // events: 2 would let index 3 through; 5 s of event time holds it back until index 5.
    assert.deepEqual(alerts(new AlertCooldown({ events: 2, milliseconds: 5000 }), flags), [0, 5, 10]);
  });

  it("refuses a malformed snapshot with an error and keeps the keys it had", () => {
    const cooldown = new AlertCooldown({ events: 5 });
    cooldown.admit("s1", true, 0);
    assert.throws(() => cooldown.restore({ version: 1, keys: [["s2", 1, null as never]] }), /malformed key entry/);
    assert.throws(() => cooldown.restore({ version: 2 } as never), /not a version 1 snapshot/);
    assert.equal(cooldown.admit("s1", true, 1), false, "s1 is still cooling down");
  });

  it("rejects a non-finite timestamp instead of storing it", () => {
    const cooldown = new AlertCooldown({ milliseconds: 1000 });
    assert.throws(() => cooldown.admit("s1", true, Number.NaN), /"timestampMs" must be a finite number/);
  });
});
