// Sensor events to Kafka messages and back. One event per Kafka message, JSON value, keyed by sensor so a sensor's
// events stay in order on one partition. A value that is not a valid event becomes a structured error (with the raw
// text and where it came from) for the node's error or dead-letter path, never a silent pass-through.
import { describeValue, EventValidationError, parseJsonPayload, validateEvent, type SensorEvent } from "../event";

/** A message ready for a producer: kafkajs' `Message` shape without importing kafkajs here. */
export interface OutgoingMessage {
  key: string | null;
  value: string;
  headers?: Record<string, string>;
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
  /** The value as UTF-8 text ("" for an empty value, null for a null value / tombstone). */
  readonly rawValue: string | null;
  constructor(source: KafkaRecordSource, key: string | null, rawValue: string | null, field: string, reason: string) {
    super(`${source.topic}[${source.partition}]@${source.offset}: ${reason}`);
    this.name = "KafkaDecodeError";
    this.field = field;
    this.topic = source.topic;
    this.partition = source.partition;
    this.offset = source.offset;
    this.key = key;
    this.rawValue = rawValue;
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
 * A consumed Kafka value as an event. Null (a tombstone), empty, non-JSON, an array or an invalid event each give
 * `{ ok: false, error }` with the field and the reason, in the words of src/core/event.ts.
 */
export function messageToEvent(value: Buffer | string | null | undefined, source: KafkaRecordSource, key: string | null = null): DecodeResult {
  if (value === null || value === undefined) {
    return { ok: false, error: new KafkaDecodeError(source, key, null, "value", "the message value is null (a tombstone or a producer that sent no value), not an event") };
  }
  const length = typeof value === "string" ? value.length : value.byteLength;
  if (length === 0) {
    return { ok: false, error: new KafkaDecodeError(source, key, "", "value", "the message value is empty, not an event") };
  }
  let parsed: unknown;
  try {
    parsed = parseJsonPayload(value);
  } catch (error) {
    return { ok: false, error: fromValidation(error, source, key, value) };
  }
  if (Array.isArray(parsed)) {
    return {
      ok: false,
      error: new KafkaDecodeError(source, key, bufferText(value), "payload", `expected one event per Kafka message (got an array of ${parsed.length})`),
    };
  }
  try {
    return { ok: true, event: validateEvent(parsed) };
  } catch (error) {
    return { ok: false, error: fromValidation(error, source, key, value) };
  }
}

function fromValidation(error: unknown, source: KafkaRecordSource, key: string | null, value: Buffer | string): KafkaDecodeError {
  const field = error instanceof EventValidationError ? error.field : "payload";
  const reason = error instanceof Error ? error.message : String(error);
  return new KafkaDecodeError(source, key, bufferText(value), field, reason);
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
