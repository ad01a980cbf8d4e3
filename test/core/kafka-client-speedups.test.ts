// The two places where the package replaces a per-message step of kafkajs: the partition grouping of a send and the
// key -> partition hash. Both must give exactly what kafkajs gives.
import assert from "node:assert/strict";
import { groupMessagesPerPartition, linearGroupingInstalled } from "../../src/core/kafka/kafkajs-linear-grouping";

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
