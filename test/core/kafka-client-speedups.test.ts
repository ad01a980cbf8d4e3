// The places where the package replaces a per-message step of kafkajs: the partition grouping of a send, the
// record-batch checksum and the key -> partition hash. Each must give exactly what kafkajs gives.
import assert from "node:assert/strict";
import { fastCrcInstalled, groupMessagesPerPartition, linearGroupingInstalled } from "../../src/core/kafka/kafkajs-speedups";
import { crc32c } from "../../src/core/kafka/crc32c";
import { kafkajsOriginal } from "../support/kafkajs-original";

describe("core/kafka kafkajs linear grouping", () => {
  const partitionMetadata = [{ partitionId: 0 }, { partitionId: 1 }, { partitionId: 2 }];
  const byKey = ({ message }: { message: unknown }) => Number((message as { key: string }).key) % 3;

  it("groups messages by partition in send order, like kafkajs' own grouping", () => {
    const messages = Array.from({ length: 10 }, (_, index) => ({ key: String(index) }));
    const grouped = groupMessagesPerPartition({ topic: "t", partitionMetadata, messages, partitioner: byKey });
    assert.deepEqual(Object.keys(grouped), ["0", "1", "2"]);
    assert.deepEqual(grouped[0], [messages[0], messages[3], messages[6], messages[9]]);
    assert.deepEqual(grouped[2], [messages[2], messages[5], messages[8]]);
  });

  it("returns no groups for a topic without partition metadata", () => {
    assert.deepEqual(groupMessagesPerPartition({ topic: "t", partitionMetadata: [], messages: [{ key: "1" }], partitioner: byKey }), {});
  });

  it("is what kafkajs' producer uses when the package loads kafkajs", () => {
    // This test file loads the module before anything imports kafkajs (mocha loads test/core files first only by
    // name order, so check what actually happened rather than assume it).
    const kafkajsGrouping = require("kafkajs/src/producer/groupMessagesPerPartition");
    assert.equal(kafkajsGrouping === groupMessagesPerPartition, linearGroupingInstalled);
  });
});

describe("core/kafka crc32c", () => {
  it("gives the CRC-32C check value and kafkajs' own result for every length and alignment", () => {
    assert.equal(crc32c(Buffer.from("123456789")), 0xe3069283, "the standard check value");
    assert.equal(crc32c(Buffer.alloc(0)), 0);
    // kafkajs' byte-at-a-time implementation.
    const kafkajsCrc = kafkajsOriginal<(buffer: Buffer) => number>("kafkajs/src/protocol/recordBatch/crc32C/crc32C");
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
    const data = Buffer.from(Array.from({ length: 70_000 }, random));
    for (const length of [1, 7, 8, 9, 15, 16, 17, 100, 4096, 65_537]) {
      for (const start of [0, 1, 3]) {
        const slice = data.subarray(start, start + length);
        assert.equal(crc32c(slice), kafkajsCrc(slice), `${length} bytes from ${start}`);
      }
    }
  });

  it("is what kafkajs' record batches use when the package loads kafkajs", () => {
    const kafkajsCrc = require("kafkajs/src/protocol/recordBatch/crc32C/crc32C");
    assert.equal(kafkajsCrc === crc32c, fastCrcInstalled);
  });
});

describe("core/kafka CachingDefaultPartitioner", () => {
  // Imported here so this file keeps loading the grouping module before kafkajs.
  const { CachingDefaultPartitioner } = require("../../src/core/kafka/caching-partitioner") as typeof import("../../src/core/kafka/caching-partitioner");
  const { Partitioners } = require("kafkajs") as typeof import("kafkajs");
  const metadata = (count: number) => Array.from({ length: count }, (_, partitionId) => ({ partitionId, leader: 1, partitionErrorCode: 0, replicas: [1], isr: [1] }));

  it("puts every key on the partition kafkajs' default (Java-compatible) partitioner picks, also after the partition count changes", () => {
    const cached = CachingDefaultPartitioner();
    const reference = Partitioners.DefaultPartitioner();
    for (const count of [3, 3, 7]) {
      const partitionMetadata = metadata(count);
      for (let sensor = 0; sensor < 200; sensor++) {
        const message = { key: `pump-${sensor}`, value: "{}" };
        assert.equal(cached({ topic: "t", partitionMetadata, message }), reference({ topic: "t", partitionMetadata, message }), `pump-${sensor} with ${count} partitions`);
      }
    }
  });

  it("leaves an explicit partition alone", () => {
    const cached = CachingDefaultPartitioner();
    assert.equal(cached({ topic: "t", partitionMetadata: metadata(3), message: { key: "pump-1", value: "{}", partition: 2 } }), 2);
  });
});
