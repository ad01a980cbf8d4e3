// kafkajs' Produce request (v3, the encoding kafkajs also sends as v4-v7) and its request frame, written into one
// buffer of exactly the right size. kafkajs builds them from nested growing encoders: each record, each record
// batch, each partition and topic, the payload and the frame is an encoder of its own that starts at 512 bytes,
// doubles into fresh zero-filled buffers as it grows, and is copied whole into the next one. A record's value is
// so copied about ten times, plus the growth copies and the zero-filling. Profiling Silver put that at about a
// tenth of its CPU with packed records (some 350 KB per send). The bytes are the same as kafkajs' (checked byte for
// byte in test/core/kafka-produce-request.test.ts); a send this file does not cover (compression, record
// timestamps, values that are neither text nor bytes) is left to kafkajs' own encoder.
import { crc32c } from "./crc32c";

type Bytes = Buffer | string;

/** A message of a produce request as kafkajs' producer hands it over (after grouping by partition). */
interface ProduceMessage {
  key?: Bytes | null;
  value: Bytes | null;
  headers?: Record<string, Bytes | Bytes[] | null | undefined>;
  timestamp?: unknown;
}

interface ProducePartition {
  partition: number;
  firstSequence?: number;
  messages: ProduceMessage[];
}

export interface ProduceRequestArgs {
  acks: number;
  timeout: number;
  transactionalId?: string | null;
  producerId?: unknown;
  producerEpoch?: number;
  compression?: number;
  topicData: { topic: string; partitions: ProducePartition[] }[];
}

/** What kafkajs' request builders return: the encode step is what this file replaces. */
export interface KafkaRequest {
  apiKey: number;
  apiVersion: number;
  apiName: string;
  expectResponse: () => boolean;
  encode: () => Promise<EncodedBytes>;
}

/** The part of kafkajs' Encoder that kafkajs reads from a finished encoding (`buffer`, and `buf` in its checks). */
export interface EncodedBytes {
  buf: Buffer;
  offset: number;
  readonly buffer: Buffer;
  size(): number;
}

/** Finished bytes as an instance of kafkajs' Encoder class, which kafkajs' own code expects. */
export type WrapBytes = (bytes: Buffer) => EncodedBytes;

const RECORD_BATCH_MAGIC = 2;
const TRANSACTIONAL_ATTRIBUTE = 16;
/** Bytes of a record batch from its attributes to its record count (what the CRC covers, before the records). */
const BATCH_BODY_HEADER_BYTES = 2 + 4 + 8 + 8 + 8 + 2 + 4 + 4;
/** firstOffset, batch length, partition leader epoch, magic, CRC. */
const BATCH_HEADER_BYTES = 8 + 4 + 4 + 1 + 4;

function zigZag(value: number): number {
  return ((value << 1) ^ (value >> 31)) >>> 0;
}

function varIntSize(value: number): number {
  let encoded = zigZag(value);
  let bytes = 1;
  while (encoded >= 0x80) {
    bytes++;
    encoded >>>= 7;
  }
  return bytes;
}

function writeVarInt(buffer: Buffer, at: number, value: number): number {
  let encoded = zigZag(value);
  while (encoded >= 0x80) {
    buffer[at++] = (encoded & 0x7f) | 0x80;
    encoded >>>= 7;
  }
  buffer[at++] = encoded;
  return at;
}

function writeBytes(buffer: Buffer, at: number, value: Bytes, length: number): number {
  if (typeof value === "string") return at + buffer.write(value, at, length, "utf8");
  value.copy(buffer, at);
  return at + length;
}

/** An int64 field as kafkajs takes it: a number, a numeric string, a bigint or kafkajs' Long (a bigint inside). */
function int64(value: unknown): bigint {
  if (typeof value === "bigint") return value;
  if (typeof value === "object" && value !== null && typeof (value as { value?: unknown }).value === "bigint") return (value as { value: bigint }).value;
  return BigInt(value as number | string);
}

function isBytes(value: unknown): value is Bytes {
  return typeof value === "string" || Buffer.isBuffer(value);
}

/** Header name/value pairs in kafkajs' order (an array value repeats the name). */
function headerPairs(headers: ProduceMessage["headers"]): [string, Bytes][] | null {
  const pairs: [string, Bytes][] = [];
  if (headers === undefined) return pairs;
  if (headers === null || typeof headers !== "object") return null;
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (Array.isArray(value)) {
      for (const item of value) {
        if (!isBytes(item)) return null;
        pairs.push([name, item]);
      }
    } else if (isBytes(value)) {
      pairs.push([name, value]);
    } else {
      return null; // kafkajs fails on a null header value; let it fail in its own words
    }
  }
  return pairs;
}

/** One record's sizes, worked out once for the sizing pass and used again by the writing pass. */
interface RecordLayout {
  key: Bytes | null;
  keyLength: number;
  value: Bytes | null;
  valueLength: number;
  /** Name, its UTF-8 length, value, its length. */
  headers: [string, number, Bytes, number][];
  bodyLength: number;
}

function recordLayout(message: ProduceMessage, offsetDelta: number): RecordLayout | null {
  if (message === null || typeof message !== "object" || message.timestamp != null) return null;
  const key = message.key ?? null;
  const value = message.value ?? null;
  if ((key !== null && !isBytes(key)) || (value !== null && !isBytes(value))) return null;
  const pairs = headerPairs(message.headers);
  if (pairs === null) return null;
  // Buffer.byteLength: UTF-8 bytes of a string, length of a Buffer.
  const keyLength = key === null ? -1 : Buffer.byteLength(key);
  const valueLength = value === null ? -1 : Buffer.byteLength(value);
  let bodyLength = 1 + 1 + varIntSize(offsetDelta); // attributes, timestamp delta 0, offset delta
  bodyLength += varIntSize(keyLength) + Math.max(keyLength, 0);
  bodyLength += varIntSize(valueLength) + Math.max(valueLength, 0);
  bodyLength += varIntSize(pairs.length);
  const headers = pairs.map(([name, headerValue]): [string, number, Bytes, number] => {
    const nameLength = Buffer.byteLength(name);
    const headerValueLength = Buffer.byteLength(headerValue);
    bodyLength += varIntSize(nameLength) + nameLength + varIntSize(headerValueLength) + headerValueLength;
    return [name, nameLength, headerValue, headerValueLength];
  });
  return { key, keyLength, value, valueLength, headers, bodyLength };
}

function writeRecord(buffer: Buffer, at: number, record: RecordLayout, offsetDelta: number): number {
  at = writeVarInt(buffer, at, record.bodyLength);
  buffer[at++] = 0; // attributes
  buffer[at++] = 0; // timestamp delta: every record carries the batch's timestamp
  at = writeVarInt(buffer, at, offsetDelta);
  at = writeVarInt(buffer, at, record.keyLength);
  if (record.key !== null) at = writeBytes(buffer, at, record.key, record.keyLength);
  at = writeVarInt(buffer, at, record.valueLength);
  if (record.value !== null) at = writeBytes(buffer, at, record.value, record.valueLength);
  at = writeVarInt(buffer, at, record.headers.length);
  for (const [name, nameLength, value, valueLength] of record.headers) {
    at = writeVarInt(buffer, at, nameLength);
    at += buffer.write(name, at, nameLength, "utf8");
    at = writeVarInt(buffer, at, valueLength);
    at = writeBytes(buffer, at, value, valueLength);
  }
  return at;
}

/**
 * The Produce request body as kafkajs' v3 encoder writes it, or null when this send needs kafkajs' own encoder
 * (compression, a record timestamp, a key/value/header that is neither a string nor a Buffer).
 */
export function encodeProduceRequest(args: ProduceRequestArgs, now = Date.now()): Buffer | null {
  if ((args.compression ?? 0) !== 0) return null;
  const transactionalId = args.transactionalId ?? null;
  const producerId = int64(args.producerId ?? -1);
  const producerEpoch = args.producerEpoch ?? 0;
  const attributes = transactionalId ? TRANSACTIONAL_ATTRIBUTE : 0;
  const timestamp = BigInt(now); // of every record batch: the records carry no timestamps of their own
  const layouts: RecordLayout[][] = [];
  let total = 2 + (transactionalId === null ? 0 : Buffer.byteLength(transactionalId, "utf8")) + 2 + 4 + 4;
  for (const { topic, partitions } of args.topicData) {
    total += 2 + Buffer.byteLength(topic, "utf8") + 4;
    for (const { messages } of partitions) {
      const records: RecordLayout[] = [];
      total += 4 + 4 + BATCH_HEADER_BYTES + BATCH_BODY_HEADER_BYTES;
      for (let index = 0; index < messages.length; index++) {
        const record = recordLayout(messages[index], index);
        if (record === null) return null;
        records.push(record);
        total += varIntSize(record.bodyLength) + record.bodyLength;
      }
      layouts.push(records);
    }
  }

  const buffer = Buffer.allocUnsafe(total);
  let at = 0;
  if (transactionalId === null) {
    at = buffer.writeInt16BE(-1, at);
  } else {
    const length = Buffer.byteLength(transactionalId, "utf8");
    at = buffer.writeInt16BE(length, at);
    at += buffer.write(transactionalId, at, length, "utf8");
  }
  at = buffer.writeInt16BE(args.acks, at);
  at = buffer.writeInt32BE(args.timeout, at);
  at = buffer.writeInt32BE(args.topicData.length, at);
  let partitionIndex = 0;
  for (const { topic, partitions } of args.topicData) {
    const topicLength = Buffer.byteLength(topic, "utf8");
    at = buffer.writeInt16BE(topicLength, at);
    at += buffer.write(topic, at, topicLength, "utf8");
    at = buffer.writeInt32BE(partitions.length, at);
    for (const { partition, firstSequence } of partitions) {
      const records = layouts[partitionIndex++];
      at = buffer.writeInt32BE(partition, at);
      const recordSetSizeAt = at;
      at += 4;
      const batchStart = at;
      at = buffer.writeBigInt64BE(0n, at); // first offset: the broker assigns offsets
      const batchLengthAt = at;
      at += 4;
      at = buffer.writeInt32BE(0, at); // partition leader epoch
      at = buffer.writeInt8(RECORD_BATCH_MAGIC, at);
      const crcAt = at;
      at += 4;
      const bodyStart = at;
      at = buffer.writeInt16BE(attributes, at);
      at = buffer.writeInt32BE(records.length - 1, at); // last offset delta
      at = buffer.writeBigInt64BE(timestamp, at); // first timestamp
      at = buffer.writeBigInt64BE(timestamp, at); // max timestamp
      at = buffer.writeBigInt64BE(BigInt.asIntN(64, producerId), at);
      at = buffer.writeInt16BE(producerEpoch, at);
      at = buffer.writeInt32BE(firstSequence ?? 0, at);
      at = buffer.writeInt32BE(records.length, at);
      for (let index = 0; index < records.length; index++) at = writeRecord(buffer, at, records[index], index);
      buffer.writeUInt32BE(crc32c(buffer.subarray(bodyStart, at)), crcAt);
      buffer.writeInt32BE(at - batchLengthAt - 4, batchLengthAt);
      buffer.writeInt32BE(at - batchStart, recordSetSizeAt);
    }
  }
  if (at !== total) throw new Error(`produce request: wrote ${at} of ${total} bytes`);
  return buffer;
}

/**
 * kafkajs' produce request module (requests/produce/v3/request.js) with this file's encoding: the same request
 * object, whose encode() falls back to kafkajs' for a send this file does not cover.
 */
export function fastProduceRequest(kafkajsRequest: (args: ProduceRequestArgs) => KafkaRequest, wrap: WrapBytes): (args: ProduceRequestArgs) => KafkaRequest {
  return (args) => {
    const request = kafkajsRequest(args);
    const kafkajsEncode = request.encode;
    request.encode = async () => {
      const bytes = encodeProduceRequest(args);
      return bytes === null ? kafkajsEncode() : wrap(bytes);
    };
    return request;
  };
}

/**
 * kafkajs' request frame (protocol/request.js) in one buffer: size, API key and version, correlation id, client id,
 * then the payload, copied once. kafkajs copies the payload twice, into two zero-filled buffers rounded up to a power
 * of two.
 */
export function fastCreateRequest(wrap: WrapBytes) {
  return async ({ correlationId, clientId, request }: { correlationId: number; clientId: string | null; request: { apiKey: number; apiVersion: number; encode: () => Promise<EncodedBytes> } }): Promise<EncodedBytes> => {
    const payload = (await request.encode()).buffer;
    const clientIdLength = clientId == null ? -1 : Buffer.byteLength(clientId, "utf8");
    const size = 2 + 2 + 4 + 2 + Math.max(clientIdLength, 0) + payload.length;
    const buffer = Buffer.allocUnsafe(4 + size);
    let at = buffer.writeInt32BE(size, 0);
    at = buffer.writeInt16BE(request.apiKey, at);
    at = buffer.writeInt16BE(request.apiVersion, at);
    at = buffer.writeInt32BE(correlationId, at);
    at = buffer.writeInt16BE(clientIdLength, at);
    if (clientId != null) at += buffer.write(clientId, at, clientIdLength, "utf8");
    payload.copy(buffer, at);
    return wrap(buffer);
  };
}
