import assert from "node:assert/strict";
import { validateEvent } from "../../src/core/event";
import { checkKeyField, eventToMessage, headersText, KafkaDecodeError, messageToEvents, packMessages, type OutgoingMessage, type RecordToSend } from "../../src/core/kafka/serialisation";

const source = { topic: "sensor-events", partition: 2, offset: "41" };
const event = () => validateEvent({ sensorId: "pump-7", timestamp: 1_700_000_000_000, readings: { vibration: 2.5, temperature: 41.3 } });

function decodeError(value: Buffer | string | null): KafkaDecodeError {
  const results = messageToEvents(value, source, "pump-7");
  assert.equal(results.length, 1, "expected one result");
  const result = results[0];
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
    const [decoded] = messageToEvents(Buffer.from(message.value), source, message.key);
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

  it("reads a packed record (a JSON array) as its events in order; a bad element spoils only itself", () => {
    const first = event();
    const third = { ...event(), timestamp: 1_700_000_000_100 };
    const results = messageToEvents(JSON.stringify([first, { sensorId: "pump-7", timestamp: 1, readings: { vibration: "n/a" } }, third]), source, null);
    assert.equal(results.length, 3);
    assert.deepEqual(results[0].ok && results[0].event, first);
    assert.deepEqual(results[2].ok && results[2].event, third);
    const bad = results[1];
    assert.equal(bad.ok, false);
    const error = (bad as { error: KafkaDecodeError }).error;
    assert.equal(error.index, 1);
    assert.equal(error.field, "readings.vibration");
    assert.match(error.message, /^sensor-events\[2\]@41 #1: reading "vibration" is not a number/);
    // The element's own JSON, not the whole record, is what a dead-letter topic gets.
    assert.deepEqual(JSON.parse(error.rawValue!), { sensorId: "pump-7", timestamp: 1, readings: { vibration: "n/a" } });
    assert.equal(error.toJSON().index, 1);
  });

  it("refuses an empty array: a packed record holds at least one event", () => {
    const error = decodeError("[]");
    assert.equal(error.field, "payload");
    assert.equal(error.index, null);
    assert.match(error.message, /empty array/);
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

  describe("packMessages", () => {
    const message = (sensorId: string, timestamp: number, headers?: Record<string, string>): OutgoingMessage =>
      eventToMessage(validateEvent({ sensorId, timestamp, readings: { vibration: 1 } }), { headers });
    // Stand-in for the producer's partitioner: pump-1 and pump-3 share partition 1.
    const partitionOf = (key: string) => ({ "pump-1": 1, "pump-2": 0, "pump-3": 1 })[key]!;
    const timestamps = (record: RecordToSend) => (JSON.parse(String(record.value)) as Array<{ sensorId: string; timestamp: number }>).map((item) => `${item.sensorId}@${item.timestamp}`);

    it("packs the events of each partition into one keyless record, in the order they came", () => {
      const records = packMessages([message("pump-1", 1), message("pump-2", 2), message("pump-3", 3), message("pump-1", 4)], partitionOf);
      assert.equal(records.length, 2);
      assert.deepEqual(
        records.map((record) => [record.partition, record.key, timestamps(record)]),
        [
          [1, null, ["pump-1@1", "pump-3@3", "pump-1@4"]],
          [0, null, ["pump-2@2"]],
        ],
      );
      // What comes out is what a consumer reads back.
      const decoded = messageToEvents(records[0].value, source).map((result) => result.ok && result.event.timestamp);
      assert.deepEqual(decoded, [1, 3, 4]);
    });

    it("keeps events with different headers in different records", () => {
      const records = packMessages([message("pump-1", 1, { site: "a" }), message("pump-1", 2, { site: "b" }), message("pump-1", 3, { site: "a" })], partitionOf);
      assert.deepEqual(
        records.map((record) => [record.headers?.site, timestamps(record)]),
        [
          ["a", ["pump-1@1", "pump-1@3"]],
          ["b", ["pump-1@2"]],
        ],
      );
    });

    it("cuts a record at the size limit, keeping order; keyless events go out without a partition", () => {
      const many = Array.from({ length: 10 }, (_, index) => message("pump-1", index));
      const size = many[0].value.length + 1;
      const records = packMessages(many, partitionOf, 2 + size * 4);
      assert.deepEqual(records.map((record) => timestamps(record).length), [4, 4, 2]);
      assert.deepEqual(records.flatMap(timestamps), many.map((_, index) => `pump-1@${index}`));
      const keyless = packMessages([{ key: null, value: "{}" }, { key: null, value: "{}" }], partitionOf);
      assert.deepEqual(keyless, [{ key: null, value: Buffer.from("[{},{}]"), events: 2 }]);
    });

    it("writes the record as UTF-8: ids beyond ASCII come back as they were sent", () => {
      const ids = ["Pumpe-Süd", "насос-2", "泵-3 🔧", "pump-4"];
      const messages = ids.map((sensorId, index) => eventToMessage(validateEvent({ sensorId, timestamp: index, readings: { vibration: 1 } }), { keyField: null }));
      const [record] = packMessages(messages, partitionOf);
      assert.ok(Buffer.isBuffer(record.value));
      assert.equal(record.value.toString("utf8"), `[${messages.map((message) => message.value).join(",")}]`);
      assert.deepEqual(messageToEvents(record.value, source).map((result) => result.ok && result.event.sensorId), ids);
    });
  });
});
