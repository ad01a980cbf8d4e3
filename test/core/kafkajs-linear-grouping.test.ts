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
