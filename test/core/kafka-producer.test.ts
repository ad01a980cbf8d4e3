import assert from "node:assert/strict";
import { KafkaEventProducer, messageBytes, splitBySize } from "../../src/core/kafka/producer";
import type { OutgoingMessage } from "../../src/core/kafka/serialisation";

const message = (value: string, key: string | null = "pump-1"): OutgoingMessage => ({ key, value });

describe("core/kafka/producer: request size", () => {
  it("counts key, value and headers in UTF-8 bytes", () => {
    const plain = messageBytes(message("abc", null));
    assert.equal(messageBytes(message("abc", "k")), plain + 1);
    assert.equal(messageBytes(message("é", null)), messageBytes(message("ab", null)), "é is two bytes in UTF-8");
    assert.equal(messageBytes({ key: null, value: "abc", headers: { a: "bc" } }), plain + 3 + 4);
  });

  it("splits a send into consecutive runs under the limit, keeping order", () => {
    const messages = Array.from({ length: 100 }, (_, index) => message(`{"n":${String(index).padStart(3, "0")},"pad":"${"x".repeat(60)}"}`));
    const size = messageBytes(messages[0]);
    const chunks = splitBySize(messages, size * 30);
    assert.deepEqual(chunks.map((chunk) => chunk.length), [30, 30, 30, 10]);
    assert.deepEqual(chunks.flat(), messages, "every message once, in order");
    assert.deepEqual(splitBySize(messages, size * 1000), [messages], "under the limit: one request, no copy");
    assert.deepEqual(splitBySize([], 1024), []);
  });

  it("sends a message larger than the limit on its own rather than dropping it", () => {
    const big = message("y".repeat(5000));
    const small = message("z");
    assert.deepEqual(splitBySize([small, big, small], 2048).map((chunk) => chunk.length), [1, 1, 1]);
  });

  it("refuses a request limit below 1 KiB, naming it", () => {
    assert.throws(() => new KafkaEventProducer({ brokers: "127.0.0.1:9092" }, { maxRequestBytes: 10 }), /"maxRequestBytes" must be a whole number of at least 1024/);
  });
});
