// The produce request kafkajs sends, written by produce-request.ts into one buffer: it must be byte for byte what
// kafkajs' own encoders write, for every shape of send kafka-out and users' flows make. kafkajs' encoders are loaded
// from their files here, as the modules kafkajs itself uses may be the replacements.
import assert from "node:assert/strict";
import { encoderWrapper, fastProduceRequestInstalled } from "../../src/core/kafka/kafkajs-speedups";
import { encodeProduceRequest, fastCreateRequest, fastProduceRequest, type EncodedBytes, type KafkaRequest, type ProduceRequestArgs } from "../../src/core/kafka/produce-request";
import { kafkajsOriginal } from "../support/kafkajs-original";

const kafkajsProduceRequest = kafkajsOriginal<(args: ProduceRequestArgs) => KafkaRequest>("kafkajs/src/protocol/requests/produce/v3/request");
const kafkajsCreateRequest = kafkajsOriginal<(args: unknown) => Promise<EncodedBytes>>("kafkajs/src/protocol/request");
const wrap = encoderWrapper();
const Long = require("kafkajs/src/utils/long") as { fromValue(value: unknown): unknown };

const NOW = 1_764_000_000_123;

/** Runs `body` with Date.now frozen: kafkajs stamps each record batch with it. */
async function atFixedTime<T>(body: () => Promise<T>): Promise<T> {
  const realNow = Date.now;
  Date.now = () => NOW;
  try {
    return await body();
  } finally {
    Date.now = realNow;
  }
}

async function bothEncodings(args: ProduceRequestArgs): Promise<{ ours: Buffer; kafkajs: Buffer }> {
  return atFixedTime(async () => ({
    ours: (await fastProduceRequest(kafkajsProduceRequest, wrap)(args).encode()).buffer,
    kafkajs: (await kafkajsProduceRequest(args).encode()).buffer,
  }));
}

function text(length: number, seed: number): string {
  let value = "";
  for (let index = 0; index < length; index++) value += String.fromCharCode(32 + ((index * 31 + seed) % 95));
  return value;
}

const base = { acks: -1, timeout: 30_000 };

describe("core/kafka produce request in one buffer", () => {
  it("writes kafkajs' bytes for packed records: Buffer values, no key, three partitions", async () => {
    const record = (length: number, seed: number) => ({ key: null, value: Buffer.from(`[${text(length, seed)}]`) });
    const args: ProduceRequestArgs = {
      ...base,
      topicData: [{ topic: "iot.scored", partitions: [0, 1, 2].map((partition) => ({ partition, messages: [record(65_000, partition), record(300, partition + 1)] })) }],
    };
    const { ours, kafkajs } = await bothEncodings(args);
    assert.equal(ours.length, kafkajs.length);
    assert.ok(ours.equals(kafkajs));
  });

  it("writes kafkajs' bytes for keyed text messages, UTF-8, headers, tombstones and many records", async () => {
    const messages = Array.from({ length: 200 }, (_, index) => ({
      key: index % 7 === 0 ? undefined : `sensor-${index % 5}-ü`,
      value: index % 11 === 0 ? null : `{"i":${index},"s":"${text(index * 43, index)}","c":"Ж中🙂"}`,
      ...(index % 3 === 0 ? { headers: { source: "plant-3", trace: [Buffer.from([0, 255, 1]), "zwei"], "größe": "" } } : {}),
    }));
    const { ours, kafkajs } = await bothEncodings({ ...base, acks: 1, topicData: [{ topic: "iot.raw", partitions: [{ partition: 4, messages }] }] });
    assert.ok(ours.equals(kafkajs));
  });

  it("writes kafkajs' bytes for several topics, an empty partition, and an idempotent, transactional producer", async () => {
    for (const producerId of [Long.fromValue(4_000_000_000_123), 17, "-1"]) {
      const args: ProduceRequestArgs = {
        ...base,
        transactionalId: "tx-ß",
        producerId,
        producerEpoch: 3,
        topicData: [
          { topic: "a", partitions: [{ partition: 0, firstSequence: 1234, messages: [{ key: Buffer.from("k"), value: "v" }] }, { partition: 1, messages: [] }] },
          { topic: "b-topic", partitions: [{ partition: 2, firstSequence: 0, messages: [{ key: "k2", value: Buffer.alloc(0) }] }] },
        ],
      };
      const { ours, kafkajs } = await bothEncodings(args);
      assert.ok(ours.equals(kafkajs), `producer id ${String(producerId)}`);
    }
  });

  it("leaves compression, record timestamps and other values to kafkajs' own encoder", async () => {
    const messages = [{ key: "k", value: "v" }];
    assert.equal(encodeProduceRequest({ ...base, compression: 1, topicData: [{ topic: "t", partitions: [{ partition: 0, messages }] }] }), null);
    assert.equal(encodeProduceRequest({ ...base, topicData: [{ topic: "t", partitions: [{ partition: 0, messages: [{ ...messages[0], timestamp: "1700000000000" }] }] }] }), null);
    assert.equal(encodeProduceRequest({ ...base, topicData: [{ topic: "t", partitions: [{ partition: 0, messages: [{ key: "k", value: 42 as unknown as string }] }] }] }), null);
    for (const args of [
      { ...base, compression: 1, topicData: [{ topic: "t", partitions: [{ partition: 0, messages }] }] },
      { ...base, topicData: [{ topic: "t", partitions: [{ partition: 0, messages: [{ key: "k", value: "v", timestamp: 1_700_000_000_000 }, { key: "k", value: "w" }] }] }] },
    ]) {
      const { ours, kafkajs } = await bothEncodings(args);
      assert.ok(ours.equals(kafkajs));
    }
    // kafkajs refuses a null header value; so does the replacement, in kafkajs' words.
    const nullHeader = { ...base, topicData: [{ topic: "t", partitions: [{ partition: 0, messages: [{ key: "k", value: "v", headers: { h: null } }] }] }] };
    await assert.rejects(atFixedTime(() => kafkajsProduceRequest(nullHeader).encode()));
    await assert.rejects(atFixedTime(() => fastProduceRequest(kafkajsProduceRequest, wrap)(nullHeader).encode()));
  });

  it("frames a request as kafkajs does: size, API key and version, correlation id, client id, payload", async () => {
    const payload = { ...base, topicData: [{ topic: "t", partitions: [{ partition: 0, messages: [{ key: "k", value: text(5000, 1) }] }] }] };
    for (const clientId of ["node-red-iot-anomaly", "clïent", null]) {
      const request = fastProduceRequest(kafkajsProduceRequest, wrap)(payload);
      const [ours, kafkajs] = await atFixedTime(() =>
        Promise.all([fastCreateRequest(wrap)({ correlationId: 77_001, clientId, request }), kafkajsCreateRequest({ correlationId: 77_001, clientId, request })]),
      );
      assert.ok(ours.buffer.equals(kafkajs.buffer), `client id ${String(clientId)}`);
    }
    // Every request goes through the frame, not only produce requests: here kafkajs' own Metadata request.
    const metadataRequest = (require("kafkajs/src/protocol/requests/metadata/v0/request") as (args: { topics: string[] }) => { apiKey: number; apiVersion: number; encode: () => Promise<EncodedBytes> })({ topics: ["iot.raw", "iot.scored"] });
    const [ours, kafkajs] = await Promise.all([fastCreateRequest(wrap)({ correlationId: 5, clientId: "c", request: metadataRequest }), kafkajsCreateRequest({ correlationId: 5, clientId: "c", request: metadataRequest })]);
    assert.ok(ours.buffer.equals(kafkajs.buffer), "metadata request");
  });

  it("is what kafkajs uses when the package loads kafkajs", async () => {
    // kafkajs' encoders leave a buffer rounded up to a power of two; the replacement's is exactly the request.
    const used = require("kafkajs/src/protocol/requests/produce/v3/request") as (args: ProduceRequestArgs) => KafkaRequest;
    const encoded = await used({ ...base, topicData: [{ topic: "t", partitions: [{ partition: 0, messages: [{ key: "k", value: "v" }] }] }] }).encode();
    assert.equal(encoded.buf.length === encoded.offset, fastProduceRequestInstalled);
  });
});
