import assert from "node:assert/strict";
import { readPayloadEvents, validateEvent, EventValidationError } from "../../src/core/event";

const good = () => ({ sensorId: "st-1", timestamp: 1_700_000_000_000, readings: { vibration: 2.1 } });

describe("core/event", () => {
  it("fills a stable eventId from sensor id and timestamp", () => {
    assert.equal(validateEvent(good()).eventId, "st-1:1700000000000");
    assert.equal(validateEvent(good()).eventId, validateEvent(good()).eventId);
  });

  it("keeps an eventId that is given", () => {
    assert.equal(validateEvent({ ...good(), eventId: "abc" }).eventId, "abc");
  });

  it("converts an ISO timestamp to milliseconds", () => {
    assert.equal(validateEvent({ ...good(), timestamp: "2024-01-01T00:00:00Z" }).timestamp, Date.UTC(2024, 0, 1));
  });

  const bad: Array<[string, unknown, string, RegExp]> = [
    ["a missing sensor id", { timestamp: 1, readings: { a: 1 } }, "sensorId", /sensorId/],
    ["a non-numeric reading", { ...good(), readings: { vibration: "n/a" } }, "readings.vibration", /reading "vibration" is not a number \(got "n\/a"\)/],
    ["a NaN reading", { ...good(), readings: { vibration: NaN } }, "readings.vibration", /not finite/],
    ["an Infinity reading", { ...good(), readings: { vibration: Infinity } }, "readings.vibration", /not finite/],
    ["empty readings", { ...good(), readings: {} }, "readings", /empty/],
    ["readings that are an array", { ...good(), readings: [1, 2] }, "readings", /must be an object/],
    ["a bad timestamp", { ...good(), timestamp: "yesterday" }, "timestamp", /timestamp/],
    ["a huge sensor id", { ...good(), sensorId: "x".repeat(1_000_000) }, "sensorId", /too long/],
    ["a label without a boolean", { ...good(), label: { anomaly: "yes" } }, "label", /label/],
  ];
  for (const [title, value, field, message] of bad) {
    it(`rejects ${title}, naming the field "${field}"`, () => {
      assert.throws(() => validateEvent(value), (error: unknown) => {
        assert.ok(error instanceof EventValidationError);
        assert.equal(error.field, field);
        assert.match(error.message, message);
        return true;
      });
    });
  }

  it("reads JSON text, and rejects malformed JSON and a 1 MB payload with a clear error", () => {
    assert.equal(readPayloadEvents(JSON.stringify(good())).events.length, 1);
    const malformed = readPayloadEvents("{not json");
    assert.match(malformed.errors[0].message, /not valid JSON/);
    const huge = readPayloadEvents("x".repeat(1_000_000));
    assert.match(huge.errors[0].message, /too large/);
  });

  it("keeps the good events of a batch and reports the bad one by index", () => {
    const result = readPayloadEvents([good(), { ...good(), readings: { vibration: null } }, good()]);
    assert.equal(result.batch, true);
    assert.equal(result.events.length, 2);
    assert.equal(result.errors.length, 1);
    assert.equal(result.errors[0].index, 1);
    assert.match(result.errors[0].message, /^event \[1\]: reading "vibration" is not a number \(got null\)/);
  });
});
