// Three per-message steps of kafkajs 2.2.4 (its last release) replaced by faster ones with the same results, before
// kafkajs loads (every file here that imports kafkajs imports this first). If kafkajs was loaded earlier, or it is
// not that release, nothing is replaced and kafkajs works as shipped.
//
// - Partition grouping of a send: kafkajs' reduce copies the partition's array for every message added, quadratic in
//   messages per partition. Profiling the medallion pipeline put it at about 13 µs of CPU per event, most of it
//   garbage. Replaced by a linear grouping.
// - CRC-32C of every record batch: kafkajs computes it a byte per step, 4% of a producing runtime's CPU with packed
//   records. Replaced by crc32c.ts (slicing by 8, four times faster).
// - The produce request and every request's frame: kafkajs copies each record value about ten times through growing
//   encoders. Replaced by produce-request.ts, which writes the same bytes into one buffer of the exact size.
import Module from "node:module";
import { crc32c } from "./crc32c";
import { fastCreateRequest, fastProduceRequest, type EncodedBytes, type KafkaRequest, type ProduceRequestArgs } from "./produce-request";

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

/**
 * Puts `exports` in require's cache as kafkajs' module `request` (e.g. "kafkajs/src/producer/x"). A function for
 * `exports` is given kafkajs' own module (loaded first) and returns the replacement.
 */
function replaceModule(request: string, exports: unknown, wrapsOriginal = false): boolean {
  let target: string;
  try {
    target = require.resolve(request);
  } catch {
    return false;
  }
  if (require.cache[target]) return false;
  const replacementExports = wrapsOriginal ? (exports as (original: unknown) => unknown)(require(target)) : exports;
  const replacement = new Module(target);
  replacement.filename = target;
  replacement.loaded = true;
  replacement.exports = replacementExports;
  require.cache[target] = replacement;
  return true;
}

/** Finished bytes as an instance of kafkajs' Encoder, without the 512-byte buffer its constructor allocates. */
export function encoderWrapper(): (bytes: Buffer) => EncodedBytes {
  const Encoder = require("kafkajs/src/protocol/encoder") as { prototype: object };
  return (bytes) => Object.assign(Object.create(Encoder.prototype) as EncodedBytes, { buf: bytes, offset: bytes.length });
}

function install(): { grouping: boolean; crc: boolean; produceRequest: boolean } {
  const none = { grouping: false, crc: false, produceRequest: false };
  try {
    const { version } = require("kafkajs/package.json") as { version: string };
    if (version !== "2.2.4") return none; // only the release this was checked against
    if (require.cache[require.resolve("kafkajs")]) return none;
  } catch {
    return none;
  }
  const grouping = replaceModule("kafkajs/src/producer/groupMessagesPerPartition", groupMessagesPerPartition);
  const crc = replaceModule("kafkajs/src/protocol/recordBatch/crc32C/crc32C", crc32c);
  const wrap = encoderWrapper();
  const produceRequest =
    replaceModule("kafkajs/src/protocol/request", fastCreateRequest(wrap)) &&
    replaceModule("kafkajs/src/protocol/requests/produce/v3/request", (kafkajsRequest: unknown) => fastProduceRequest(kafkajsRequest as (args: ProduceRequestArgs) => KafkaRequest, wrap), true);
  return { grouping, crc, produceRequest };
}

const installed = install();
/** Whether the linear grouping is in place (false: kafkajs was loaded first, or it is not 2.2.4). */
export const linearGroupingInstalled = installed.grouping;
/** Whether kafkajs computes record-batch checksums with crc32c.ts. */
export const fastCrcInstalled = installed.crc;
/** Whether kafkajs writes produce requests and request frames with produce-request.ts. */
export const fastProduceRequestInstalled = installed.produceRequest;
export { groupMessagesPerPartition };
