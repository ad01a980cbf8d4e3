// kafkajs 2.2.4 (its last release) groups a send's messages by partition with a reduce that copies the partition's
// array for every message added: quadratic in messages per partition. Profiling the medallion pipeline put it at
// about 13 µs of CPU per event, most of it garbage. This module puts a linear grouping with the same result in
// kafkajs' place. It must load before kafkajs (every file here that imports kafkajs imports this first); if
// kafkajs was loaded earlier, or its layout changed, nothing is replaced and kafkajs works as shipped.
import Module from "node:module";

type Partitioner = (args: { topic: string; partitionMetadata: unknown[]; message: unknown }) => number;

function groupMessagesPerPartition({ topic, partitionMetadata, messages, partitioner }: { topic: string; partitionMetadata: unknown[]; messages: unknown[]; partitioner: Partitioner }): Record<number, unknown[]> {
  const grouped: Record<number, unknown[]> = {};
  if (partitionMetadata.length === 0) return grouped;
  for (const message of messages) {
    const partition = partitioner({ topic, partitionMetadata, message });
    (grouped[partition] ??= []).push(message);
  }
  return grouped;
}

function install(): boolean {
  let target: string;
  let kafkajsEntry: string;
  try {
    kafkajsEntry = require.resolve("kafkajs");
    target = require.resolve("kafkajs/src/producer/groupMessagesPerPartition");
    const { version } = require("kafkajs/package.json") as { version: string };
    if (version !== "2.2.4") return false; // only the release this was checked against
  } catch {
    return false;
  }
  if (require.cache[kafkajsEntry] || require.cache[target]) return false;
  const replacement = new Module(target);
  replacement.filename = target;
  replacement.loaded = true;
  replacement.exports = groupMessagesPerPartition;
  require.cache[target] = replacement;
  return true;
}

/** Whether the linear grouping is in place (false: kafkajs was loaded first, or it is not 2.2.4). */
export const linearGroupingInstalled = install();
export { groupMessagesPerPartition };
