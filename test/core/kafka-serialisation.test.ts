import assert from "node:assert/strict";
import { validateEvent } from "../../src/core/event";
import { checkKeyField, eventToMessage, headersText, KafkaDecodeError, messageToEvent } from "../../src/core/kafka/serialisation";

const source = { topic: "sensor-events", partition: 2, offset: "41" };
const event = () => validateEvent({ sensorId: "pump-7", timestamp: 1_700_000_000_000, readings: { vibration: 2.5, temperature: 41.3 } });

function decodeError(value: Buffer | string | null): KafkaDecodeError {
  const result = messageToEvent(value, source, "pump-7");
  assert.equal(result.ok, false, "expected an error result");
  return (result as { ok: false; error: KafkaDecodeError }).error;
}

describe("core/kafka/serialisation", () => {
  it("keys a message by sensor id so one sensor's events stay on one partition, in order", () => {
    const message = eventToMessage(event());
    assert.equal(message.key, "pump-7");
    assert.deepEqual(JSON.parse(message.value), event());
    assert.equal(message.headers, undefined);
  });

  it("uses another key field, or no key, when asked; adds headers", () => {
    assert.equal(eventToMessage(event(), { keyField: "eventId" }).key, "pump-7:1700000000000");
    assert.equal(eventToMessage(event(), { keyField: null }).key, null);
    assert.deepEqual(eventToMessage(event(), { headers: { site: "plant-3" } }).headers, { site: "plant-3" });
  });

  it("round-trips an event, detector results included", () => {
    const original = event();
    original.detectors = { rolling3Sigma: { anomaly: true, ready: true, metrics: { vibration: { mean: 1, std: 0.1, z: 15, flag: true } } } };
    const message = eventToMessage(original);
    const decoded = messageToEvent(Buffer.from(message.value), source, message.key);
    assert.equal(decoded.ok, true);
    assert.deepEqual(decoded.ok && decoded.event, original);
  });

  it("reports a null value (tombstone) as an error with where it came from, not as a null event", () => {
    const error = decodeError(null);
    assert.equal(error.field, "value");
    assert.equal(error.rawValue, null);
    assert.deepEqual([error.topic, error.partition, error.offset, error.key], ["sensor-events", 2, "41", "pump-7"]);
    assert.match(error.message, /^sensor-events\[2\]@41: the message value is null/);
  });

  it("reports an empty value as an error", () => {
    const error = decodeError(Buffer.alloc(0));
    assert.equal(error.field, "value");
    assert.equal(error.rawValue, "");
    assert.match(error.message, /empty/);
  });

  it("reports non-JSON text with the raw text kept for a dead-letter topic", () => {
    const error = decodeError(Buffer.from("temperature=41.3"));
    assert.equal(error.field, "payload");
    assert.equal(error.rawValue, "temperature=41.3");
    assert.match(error.message, /not valid JSON/);
  });

  it("names the field of an invalid event, in the words of the event validator", () => {
    const error = decodeError(JSON.stringify({ sensorId: "pump-7", timestamp: 1, readings: { vibration: "n/a" } }));
    assert.equal(error.field, "readings.vibration");
    assert.match(error.message, /reading "vibration" is not a number \(got "n\/a"\)/);
    assert.equal(decodeError(JSON.stringify({ timestamp: 1, readings: { a: 1 } })).field, "sensorId");
  });

  it("refuses an array: one event per Kafka message", () => {
    const error = decodeError(JSON.stringify([event(), event()]));
    assert.equal(error.field, "payload");
    assert.match(error.message, /one event per Kafka message \(got an array of 2\)/);
  });

  it("refuses a value over the JSON size limit without parsing it", () => {
    const error = decodeError(Buffer.alloc(1024 * 1024, 0x20));
    assert.equal(error.field, "payload");
    assert.match(error.message, /too large/);
    assert.equal(error.rawValue?.length, 1024 * 1024);
  });

  it("gives errors a plain JSON form for msg.error or a dead-letter message", () => {
    const json = JSON.parse(JSON.stringify(decodeError(Buffer.from("oops"))));
    assert.deepEqual(Object.keys(json).sort(), ["field", "key", "message", "offset", "partition", "rawValue", "topic"]);
    assert.equal(json.rawValue, "oops");
  });

  it("checks the key field name once, naming it", () => {
    assert.equal(checkKeyField(undefined), "sensorId");
    assert.equal(checkKeyField(""), null);
    assert.equal(checkKeyField(null), null);
    assert.throws(() => checkKeyField("readings.vibration"), /"keyField" must be a top-level event field/);
    assert.throws(() => checkKeyField(3), /"keyField"/);
  });

  it("turns kafkajs header buffers into text", () => {
    assert.deepEqual(headersText({ a: Buffer.from("x"), b: [Buffer.from("1"), "2"], c: undefined }), { a: "x", b: "1,2" });
    assert.deepEqual(headersText(undefined), {});
  });
});
