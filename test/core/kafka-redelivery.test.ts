// The retry schedule of events that failed downstream of kafka-in, and how a failed record is decoded afresh.
import assert from "node:assert/strict";
import { checkRedeliveryOptions, decodeAgain, KafkaConfigError, nextRedeliveryStep, recordValueText, type ConsumedRecord } from "../../src/core/kafka";

const T0 = Date.UTC(2025, 0, 1);

function recordOf(value: string, index?: number): ConsumedRecord {
  return {
    ok: true,
    event: { eventId: "changed", sensorId: "changed", timestamp: 0, readings: {}, detectors: { rolling3Sigma: {} } } as never,
    topic: "iot.raw",
    partition: 2,
    offset: "41",
    key: "s1",
    timestamp: String(T0),
    headers: { trace: "x" },
    generation: 3,
    value: Buffer.from(value),
    ...(index === undefined ? {} : { index }),
  };
}

describe("kafka redelivery: retry schedule and fresh decoding", () => {
  it("doubles the pause from 1 s up to 60 s, and dead-letters after maxAttempts when a dead-letter topic is set", () => {
    const options = checkRedeliveryOptions({ maxAttempts: 5, deadLetter: true });
    const steps = [1, 2, 3, 4, 5].map((attempt) => nextRedeliveryStep(options, attempt));
    assert.deepEqual(steps, [
      { action: "retry", delayMs: 1000 },
      { action: "retry", delayMs: 2000 },
      { action: "retry", delayMs: 4000 },
      { action: "retry", delayMs: 8000 },
      { action: "dead-letter" },
    ]);
  });

  it("never gives an event up without a dead-letter topic: it is tried every 60 s", () => {
    const options = checkRedeliveryOptions({ maxAttempts: 2, deadLetter: false });
    assert.deepEqual(nextRedeliveryStep(options, 2), { action: "retry", delayMs: 2000 });
    assert.deepEqual(nextRedeliveryStep(options, 7), { action: "retry", delayMs: 60_000 });
    assert.deepEqual(nextRedeliveryStep(options, 1000), { action: "retry", delayMs: 60_000 });
  });

  it("defaults to 5 attempts and refuses attempts outside 1..100, naming the setting", () => {
    assert.equal(checkRedeliveryOptions({ deadLetter: true }).maxAttempts, 5);
    for (const maxAttempts of [0, 101, 2.5, Number.NaN]) {
      assert.throws(() => checkRedeliveryOptions({ maxAttempts, deadLetter: true }), (error: unknown) => error instanceof KafkaConfigError && /maxAttempts/.test(error.message));
    }
  });

  it("decodes a failed record afresh from its Kafka value, whatever the flow did to the first event object", () => {
    const value = JSON.stringify({ eventId: "e41", sensorId: "s1", timestamp: T0, readings: { vibration: 2.5 } });
    const again = decodeAgain(recordOf(value));
    assert.equal(again.ok, true);
    assert.deepEqual(again.event, { eventId: "e41", sensorId: "s1", timestamp: T0, readings: { vibration: 2.5 } });
    assert.deepEqual(
      { topic: again.topic, partition: again.partition, offset: again.offset, key: again.key, headers: again.headers, generation: again.generation, index: again.index },
      { topic: "iot.raw", partition: 2, offset: "41", key: "s1", headers: { trace: "x" }, generation: 3, index: undefined },
    );
    assert.equal(recordValueText(recordOf(value)), value, "a dead-letter copy holds the original value");
  });

  it("takes its own event out of a packed record, for a retry and for a dead-letter copy", () => {
    const events = [0, 1, 2].map((n) => ({ eventId: `e${n}`, sensorId: "s1", timestamp: T0 + n, readings: { vibration: n } }));
    const record = recordOf(JSON.stringify(events), 1);
    const again = decodeAgain(record);
    assert.equal(again.index, 1);
    assert.equal(again.event?.eventId, "e1");
    assert.equal(recordValueText(record), JSON.stringify(events[1]));
  });
});
