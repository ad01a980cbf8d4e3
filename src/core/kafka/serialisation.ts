// Sensor events to Kafka messages and back. By default one event per Kafka message, JSON value, keyed by sensor so
// a sensor's events stay in order on one partition. Packed records (a JSON array of events, one record per
// partition and send) carry the same events with a fraction of the per-record cost of kafkajs and the broker; the
// events of a sensor still land on the partition its key hashes to. A value that is not a valid event becomes a
// structured error (with the raw text and where it came from) for the node's error or dead-letter path, never a
// silent pass-through.
import { describeValue, EventValidationError, parseJsonPayload, validateEvent, type SensorEvent } from "../event";

/** A record ready for a producer: kafkajs' `Message` shape without importing kafkajs here. */
export interface RecordToSend {
  key: string | null;
  value: string | Buffer;
  headers?: Record<string, string>;
  /** Set for a packed record: the partition its events' keys hash to (the record itself has no key). */
  partition?: number;
}

/** A message of one event (eventToMessage) or one value (a dead letter): its value is text. */
export interface OutgoingMessage extends RecordToSend {
  value: string;
}

export interface EncodeOptions {
  /**
   * Event field whose value becomes the message key (default "sensorId"). Kafka hashes the key to pick the partition,
   * so all events of one key stay in order. `null` sends without a key: spread over partitions, no order per sensor.
   */
  keyField?: string | null;
  /** Headers added to every message (e.g. { source: "plant-3" }). */
  headers?: Record<string, string>;
}

export const DEFAULT_KEY_FIELD = "sensorId";

/** Checks a key field name once (a node calls this at construction). */
export function checkKeyField(keyField: unknown): string | null {
  if (keyField === null || keyField === undefined) return keyField === null ? null : DEFAULT_KEY_FIELD;
  if (typeof keyField !== "string") throw new EventValidationError("keyField", `"keyField" must be an event field name such as "sensorId" (got ${describeValue(keyField)})`);
  if (keyField === "") return null;
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(keyField)) {
    throw new EventValidationError("keyField", `"keyField" must be a top-level event field such as "sensorId" or "eventId" (got ${describeValue(keyField)})`);
  }
  return keyField;
}

function keyOf(event: SensorEvent, keyField: string | null): string | null {
  if (keyField === null) return null;
  const value = (event as unknown as Record<string, unknown>)[keyField];
  if (value === undefined || value === null) return null;
  return typeof value === "string" ? value : String(value);
}

/**
 * One event as one Kafka message. The event's own timestamp is deliberately not used as the Kafka record timestamp:
 * a replay of last year's CSV would then be deleted at once by time-based retention, and a gateway clock running
 * more than an hour fast would be rejected by the broker (log.message.timestamp.after.max.ms).
 */
export function eventToMessage(event: SensorEvent, options: EncodeOptions = {}): OutgoingMessage {
  const keyField = options.keyField === undefined ? DEFAULT_KEY_FIELD : options.keyField;
  const message: OutgoingMessage = { key: keyOf(event, keyField), value: JSON.stringify(event) };
  if (options.headers) message.headers = options.headers;
  return message;
}

/**
 * Most characters of one packed record's value (UTF-8 bytes for ASCII text, at most three times as many otherwise:
 * still under kafka-in's 512 KiB JSON limit and the broker's 1 MiB). Kept below V8's large-object threshold
 * (~128 KiB): measured, building and decoding 240 KB strings cost 20-30 times more per event than 48 KB ones.
 */
export const MAX_PACKED_RECORD_CHARS = 64 * 1024;

/** Events of one partition as one record, and how many: the value is the JSON array's UTF-8 bytes, built once for kafkajs to copy. */
export interface PackedRecord extends RecordToSend {
  value: Buffer;
  events: number;
}

interface PackGroup {
  partition: number | undefined;
  headers: Record<string, string> | undefined;
  values: string[];
  chars: number;
}

/**
 * `[v0,v1,…]` as UTF-8 bytes, written straight into one buffer. Joining the strings instead costs two copies of the
 * record in V8's heap (the join, then the flattening kafkajs' byte count forces) before kafkajs encodes it: about 0.7 µs
 * per scored event in `npm run bench -- kafka`. An all-ASCII value (the usual JSON) is copied byte for byte.
 */
function jsonArrayBytes(values: readonly string[]): Buffer {
  const lengths = new Array<number>(values.length);
  let total = values.length + 1; // brackets and commas
  for (let index = 0; index < values.length; index++) total += lengths[index] = Buffer.byteLength(values[index], "utf8");
  const bytes = Buffer.allocUnsafe(total);
  let at = 0;
  bytes[at++] = 0x5b; // [
  for (let index = 0; index < values.length; index++) {
    if (index > 0) bytes[at++] = 0x2c; // ,
    const value = values[index];
    at += bytes.write(value, at, lengths[index] === value.length ? "latin1" : "utf8");
  }
  bytes[at] = 0x5d; // ]
  return bytes;
}

/**
 * One-event messages (from eventToMessage) as packed records: per partition and header set, the events' JSON values
 * joined into one JSON array, in the order they came; a record is cut at `maxRecordChars`. `partitionOf(key)` must
 * be the partition the producer's partitioner gives a keyed message, so each sensor's events land where they would
 * unpacked, in the same order. Messages without a key stay together in one record (no partition: the producer
 * spreads those records).
 */
export function packMessages(messages: OutgoingMessage[], partitionOf: (key: string) => number, maxRecordChars = MAX_PACKED_RECORD_CHARS): PackedRecord[] {
  const records: PackedRecord[] = [];
  const groups = new Map<string, PackGroup>();
  const close = (group: PackGroup) => {
    const record: PackedRecord = { key: null, value: jsonArrayBytes(group.values), events: group.values.length };
    if (group.partition !== undefined) record.partition = group.partition;
    if (group.headers) record.headers = group.headers;
    records.push(record);
    group.values = [];
    group.chars = 2;
  };
  // Messages of one Node-RED message share one headers object: its text is worked out once.
  let lastHeaders: Record<string, string> | undefined;
  let lastHeadersText = "";
  for (const message of messages) {
    const partition = message.partition ?? (message.key === null ? undefined : partitionOf(message.key));
    if (message.headers !== lastHeaders) {
      lastHeaders = message.headers;
      lastHeadersText = message.headers ? JSON.stringify(message.headers) : "";
    }
    const groupKey = `${partition ?? "-"}\u0000${lastHeadersText}`;
    let group = groups.get(groupKey);
    if (group === undefined) {
      group = { partition, headers: message.headers, values: [], chars: 2 };
      groups.set(groupKey, group);
    }
    const chars = message.value.length + 1;
    if (group.values.length > 0 && group.chars + chars > maxRecordChars) close(group);
    group.values.push(message.value);
    group.chars += chars;
  }
  for (const group of groups.values()) if (group.values.length > 0) close(group);
  return records;
}

/** Where a consumed message came from. Offsets are kept as strings, as Kafka's are 64-bit. */
export interface KafkaRecordSource {
  topic: string;
  partition: number;
  offset: string;
}

/** A consumed message that is not a valid event: enough to log it, send it to a dead-letter topic, or find it again. */
export class KafkaDecodeError extends Error {
  /** What is wrong, as in EventValidationError: "value", "payload", "sensorId", "readings.vibration", ... */
  readonly field: string;
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: string | null;
  /** The value as UTF-8 text ("" for an empty value, null for a null value / tombstone); for an event of a packed record, that event's JSON. */
  readonly rawValue: string | null;
  /** Position of the event in a packed record (null: the record is not packed, or is not valid JSON at all). */
  readonly index: number | null;
  constructor(source: KafkaRecordSource, key: string | null, rawValue: string | null, field: string, reason: string, index: number | null = null) {
    super(`${source.topic}[${source.partition}]@${source.offset}${index === null ? "" : ` #${index}`}: ${reason}`);
    this.name = "KafkaDecodeError";
    this.field = field;
    this.topic = source.topic;
    this.partition = source.partition;
    this.offset = source.offset;
    this.key = key;
    this.rawValue = rawValue;
    this.index = index;
  }

  /** A plain object for msg.error / a dead-letter message. */
  toJSON(): Record<string, unknown> {
    return {
      message: this.message,
      field: this.field,
      topic: this.topic,
      partition: this.partition,
      offset: this.offset,
      key: this.key,
      rawValue: this.rawValue,
      ...(this.index === null ? {} : { index: this.index }),
    };
  }
}

export type DecodeResult = { ok: true; event: SensorEvent } | { ok: false; error: KafkaDecodeError };

/** Text of a key or header value as kafkajs delivers it (Buffer, string or null). */
export function bufferText(value: Buffer | string | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  return typeof value === "string" ? value : value.toString("utf8");
}

/**
 * A consumed Kafka value as events: one for a JSON object, one per element for a packed record (a JSON array).
 * Null (a tombstone), empty, non-JSON, an empty array or an invalid event each give `{ ok: false, error }` with the
 * field and the reason, in the words of src/core/event.ts; an invalid element of a packed record spoils only itself.
 */
export function messageToEvents(value: Buffer | string | null | undefined, source: KafkaRecordSource, key: string | null = null): DecodeResult[] {
  if (value === null || value === undefined) {
    return [{ ok: false, error: new KafkaDecodeError(source, key, null, "value", "the message value is null (a tombstone or a producer that sent no value), not an event") }];
  }
  const length = typeof value === "string" ? value.length : value.byteLength;
  if (length === 0) {
    return [{ ok: false, error: new KafkaDecodeError(source, key, "", "value", "the message value is empty, not an event") }];
  }
  let parsed: unknown;
  try {
    parsed = parseJsonPayload(value);
  } catch (error) {
    return [{ ok: false, error: fromValidation(error, source, key, bufferText(value)) }];
  }
  if (!Array.isArray(parsed)) return [decodeOne(parsed, source, key, value, null)];
  if (parsed.length === 0) {
    return [{ ok: false, error: new KafkaDecodeError(source, key, bufferText(value), "payload", "the message value is an empty array: a packed record holds at least one event") }];
  }
  const results = new Array<DecodeResult>(parsed.length);
  for (let index = 0; index < parsed.length; index++) results[index] = decodeOne(parsed[index], source, key, null, index);
  return results;
}

/** One parsed value as an event; `raw` is the record's text, or null for an element of a packed record (its JSON is used). */
function decodeOne(parsed: unknown, source: KafkaRecordSource, key: string | null, raw: Buffer | string | null, index: number | null): DecodeResult {
  try {
    return { ok: true, event: validateEvent(parsed) };
  } catch (error) {
    const rawText = raw === null ? (JSON.stringify(parsed) ?? null) : bufferText(raw);
    return { ok: false, error: fromValidation(error, source, key, rawText, index) };
  }
}

function fromValidation(error: unknown, source: KafkaRecordSource, key: string | null, rawValue: string | null, index: number | null = null): KafkaDecodeError {
  const field = error instanceof EventValidationError ? error.field : "payload";
  const reason = error instanceof Error ? error.message : String(error);
  return new KafkaDecodeError(source, key, rawValue, field, reason, index);
}

/** Header values as text; kafkajs gives Buffers (or arrays of them for repeated headers). */
export function headersText(headers: Record<string, Buffer | string | (Buffer | string)[] | undefined> | undefined): Record<string, string> {
  const result: Record<string, string> = {};
  if (!headers) return result;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    result[name] = Array.isArray(value) ? value.map((item) => bufferText(item) ?? "").join(",") : (bufferText(value) ?? "");
  }
  return result;
}
