// What a consumer does with an event that failed downstream (a node reported an error for it, and a Catch node
// passed that back): try it again after a growing pause, and after a number of attempts write it to the dead-letter
// topic so its partition can move on. With no dead-letter topic there is nowhere safe to put it, so it keeps being
// tried, at the longest pause, until it succeeds: the partition's commits wait for it, and nothing is dropped.
// Pure: no timers, no kafkajs; kafka-in drives it.
import { KafkaConfigError } from "./connection-options";
import { parseJsonPayload } from "../event";
import { bufferText, messageToEvents } from "./serialisation";
import type { ConsumedRecord } from "./types";

export interface RedeliveryOptions {
  /** Attempts (the first delivery included) before a failing event goes to the dead-letter topic (default 5). */
  maxAttempts?: number;
  /** Pause after the first failure; doubles with each further one (default 1000 ms). */
  firstDelayMs?: number;
  /** Longest pause (default 60000 ms): also the pace of the endless retries when there is no dead-letter topic. */
  maxDelayMs?: number;
  /** Whether a dead-letter topic is configured. */
  deadLetter: boolean;
}

export type CheckedRedeliveryOptions = Required<RedeliveryOptions>;

/** Where a consumed event came from, with its record's value: what a retry or a dead-letter copy is made from. */
export type RecordOrigin = Omit<ConsumedRecord, "ok" | "event" | "error">;

/** What to do after attempt `failedAttempt` of an event failed. */
export type RedeliveryStep = { action: "retry"; delayMs: number } | { action: "dead-letter" };

export const DEFAULT_MAX_ATTEMPTS = 5;

export function checkRedeliveryOptions(options: RedeliveryOptions): CheckedRedeliveryOptions {
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 100) {
    throw new KafkaConfigError("maxAttempts", `"maxAttempts" must be a whole number from 1 to 100 (got ${JSON.stringify(options.maxAttempts)})`);
  }
  const firstDelayMs = options.firstDelayMs ?? 1000;
  const maxDelayMs = options.maxDelayMs ?? 60_000;
  if (!Number.isFinite(firstDelayMs) || firstDelayMs < 0) throw new RangeError(`"firstDelayMs" must be 0 or more (got ${JSON.stringify(firstDelayMs)})`);
  if (!Number.isFinite(maxDelayMs) || maxDelayMs < firstDelayMs) {
    throw new RangeError(`"maxDelayMs" must be at least "firstDelayMs" (got ${JSON.stringify(maxDelayMs)})`);
  }
  return { maxAttempts, firstDelayMs, maxDelayMs, deadLetter: options.deadLetter === true };
}

/** Attempt `failedAttempt` (1 for the first delivery) failed: retry after a pause, or give the event up to the dead-letter topic. */
export function nextRedeliveryStep(options: CheckedRedeliveryOptions, failedAttempt: number): RedeliveryStep {
  if (options.deadLetter && failedAttempt >= options.maxAttempts) return { action: "dead-letter" };
  const doublings = Math.min(Math.max(0, failedAttempt - 1), 30);
  return { action: "retry", delayMs: Math.min(options.maxDelayMs, options.firstDelayMs * 2 ** doublings) };
}

/**
 * The record decoded afresh from its Kafka value, for a redelivery: the first delivery's event object went through
 * the flow, and nodes add their results to it (event.detectors), so it is no longer what the topic holds.
 */
export function decodeAgain(origin: RecordOrigin): ConsumedRecord {
  const { topic, partition, offset, key, timestamp, headers, generation, index, value } = origin;
  const results = messageToEvents(value, { topic, partition, offset }, key);
  const result = results[index ?? 0] ?? results[0];
  const base = { topic, partition, offset, key, timestamp, headers, generation, value, ...(index === undefined ? {} : { index }) };
  return result.ok ? { ...base, ok: true, event: result.event } : { ...base, ok: false, error: result.error };
}

/**
 * Headers of a dead-letter copy: the record's own, then `reason` (x-error …), then where it came from (x-source-topic,
 * -partition, -offset, and -index for an event of a packed record). Shared by invalid values and events given up.
 */
export function deadLetterHeaders(origin: RecordOrigin, reason: Record<string, string>): Record<string, string> {
  const headers: Record<string, string> = {
    ...origin.headers,
    ...reason,
    "x-source-topic": origin.topic,
    "x-source-partition": String(origin.partition),
    "x-source-offset": origin.offset,
  };
  if (origin.index !== undefined) headers["x-source-index"] = String(origin.index);
  return headers;
}

/** The record's own text for a dead-letter copy: its value, or for an event of a packed record that event's JSON. */
export function recordValueText(record: RecordOrigin): string | null {
  if (record.index === undefined) return bufferText(record.value);
  const parsed = parseJsonPayload(record.value!);
  return Array.isArray(parsed) ? (JSON.stringify(parsed[record.index]) ?? null) : bufferText(record.value);
}
