// The event every node of the package speaks, and its runtime validator.
// Validation errors name the field and the offending value so a plant engineer can fix the source.

/** Ground truth attached by the simulator (or a labelled replay); detectors never read it. */
export interface GroundTruth {
  anomaly: boolean;
  /** Fault kind, e.g. "spike", "level-shift", "drift", "stuck", "noise-burst". */
  kind?: string;
  /** Metric the fault was injected into. */
  metric?: string;
}

/** Per-metric result of the rolling k-sigma detector. `mean`/`std`/`z` are null while warming up. */
export interface SigmaMetricResult {
  mean: number | null;
  std: number | null;
  z: number | null;
  flag: boolean;
}

export interface SigmaResult {
  anomaly: boolean;
  /** True once every metric of the event had at least `minSamples` values in its window. */
  ready: boolean;
  metrics: Record<string, SigmaMetricResult>;
  /** Present (true) when a metric was flagged but the sensor was cooling down after an earlier alert: `anomaly` is
   * then false, the metric results still show the evidence. */
  suppressed?: true;
}

export interface ForestResult {
  /** scikit-learn scale: 2^(-E[h(x)]/c(psi)), in (0, 1], higher is more anomalous; null before training. */
  score: number | null;
  anomaly: boolean;
  threshold: number | null;
  modelVersion: number | null;
  /** Features absent from the event (e.g. a gap in a CSV replay): it was forwarded unscored. */
  missing?: string[];
}

/** Result of the contextual-novelty detector (NAB's `best` in-flow configuration), on NAB's score scale. */
export interface NoveltyResult {
  /** True when a metric past its warm-up scores at least 0.5 (and is not within its cool-down). */
  anomaly: boolean;
  /** Highest score of the event's metrics, 0 to 1; 0.5 is the alert level. */
  score: number;
  /** True once every scored metric of the event is past its warm-up. */
  ready: boolean;
  /** Score per scored metric. */
  metrics: Record<string, number>;
}

/** Results are added by detectors under their own key; readings are never overwritten. */
export interface DetectorResults {
  rolling3Sigma?: SigmaResult;
  isolationForest?: ForestResult;
  contextualNovelty?: NoveltyResult;
  [detector: string]: unknown;
}

export interface SensorEvent {
  /** Stable for the same reading, so sinks can be idempotent. Defaults to `${sensorId}:${timestamp}`. */
  eventId: string;
  sensorId: string;
  /** Milliseconds since the Unix epoch. */
  timestamp: number;
  /** Finite numeric readings by metric name, e.g. { vibration: 2.1, temperature: 41.3 }. */
  readings: Record<string, number>;
  /** Data quality: metrics that were expected but missing in the source (e.g. an empty CSV cell). */
  quality?: { missing: string[] };
  label?: GroundTruth;
  detectors?: DetectorResults;
}

export const EVENT_LIMITS = {
  /** Largest JSON text accepted in one message (a batch of ~3000 events). */
  maxJsonBytes: 512 * 1024,
  maxBatchSize: 100_000,
  maxIdLength: 256,
  maxMetrics: 64,
  maxMetricNameLength: 64,
} as const;

/** A message payload that is not a valid event. `field` names what is wrong, `index` the position in a batch. */
export class EventValidationError extends Error {
  readonly field: string;
  readonly index: number | undefined;
  constructor(field: string, message: string, index?: number) {
    super(index === undefined ? message : `event [${index}]: ${message}`);
    this.name = "EventValidationError";
    this.field = field;
    this.index = index;
  }
}

export function isEventValidationError(error: unknown): error is EventValidationError {
  return error instanceof EventValidationError;
}

/** Short, printable form of a bad value for error messages. */
export function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  if (typeof value === "string") {
    return value.length > 40 ? `"${value.slice(0, 40)}…" (${value.length} characters)` : JSON.stringify(value);
  }
  if (typeof value === "number") return String(value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return typeof value === "object" ? "an object" : String(value);
}

function fail(field: string, message: string): never {
  throw new EventValidationError(field, message);
}

function checkId(value: unknown, field: string): string {
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  if (typeof value !== "string" || value.length === 0) {
    fail(field, `"${field}" must be a non-empty string (got ${describeValue(value)})`);
  }
  if (value.length > EVENT_LIMITS.maxIdLength) {
    fail(field, `"${field}" is too long (${value.length} characters, limit ${EVENT_LIMITS.maxIdLength})`);
  }
  return value;
}

function checkTimestamp(value: unknown): number {
  if (typeof value === "number") {
    if (!Number.isFinite(value) || value < 0) fail("timestamp", `"timestamp" must be milliseconds since epoch (got ${describeValue(value)})`);
    return value;
  }
  if (typeof value === "string" && value.length > 0 && value.length <= 64) {
    // ISO 8601 text is common from gateways; accept it and store milliseconds.
    const parsed = Date.parse(value);
    if (Number.isFinite(parsed)) return parsed;
  }
  return fail("timestamp", `"timestamp" must be milliseconds since epoch or an ISO 8601 date (got ${describeValue(value)})`);
}

function checkReadings(value: unknown): Record<string, number> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    fail("readings", `"readings" must be an object of metric: number (got ${describeValue(value)})`);
  }
  const readings = value as Record<string, unknown>;
  let count = 0;
  for (const metric in readings) {
    count++;
    if (count > EVENT_LIMITS.maxMetrics) fail("readings", `"readings" has more than ${EVENT_LIMITS.maxMetrics} metrics`);
    if (metric.length > EVENT_LIMITS.maxMetricNameLength) {
      fail(`readings.${metric.slice(0, 20)}…`, `metric name is too long (${metric.length} characters, limit ${EVENT_LIMITS.maxMetricNameLength})`);
    }
    const reading = readings[metric];
    if (typeof reading !== "number") fail(`readings.${metric}`, `reading "${metric}" is not a number (got ${describeValue(reading)})`);
    if (!Number.isFinite(reading)) fail(`readings.${metric}`, `reading "${metric}" is not finite (got ${reading})`);
  }
  if (count === 0) fail("readings", `"readings" is empty: an event needs at least one numeric reading`);
  return readings as Record<string, number>;
}

/**
 * Checks one event object in place and returns it typed. Fills `eventId` from sensor id and timestamp when absent,
 * converts an ISO timestamp to milliseconds, and leaves everything else (label, detectors, extra fields) untouched.
 */
export function validateEvent(value: unknown): SensorEvent {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    fail("payload", `an event must be an object with sensorId, timestamp and readings (got ${describeValue(value)})`);
  }
  const event = value as Record<string, unknown>;
  const sensorId = checkId(event.sensorId, "sensorId");
  const timestamp = checkTimestamp(event.timestamp);
  checkReadings(event.readings);
  event.sensorId = sensorId;
  event.timestamp = timestamp;
  event.eventId = event.eventId === undefined || event.eventId === null ? `${sensorId}:${timestamp}` : checkId(event.eventId, "eventId");
  if (event.label !== undefined && event.label !== null) {
    const label = event.label as Record<string, unknown>;
    if (typeof label !== "object" || typeof label.anomaly !== "boolean") {
      fail("label", `"label" must be an object with a boolean "anomaly" (got ${describeValue(event.label)})`);
    }
  }
  return event as unknown as SensorEvent;
}

/** Parses JSON text with a size limit; a Buffer is read as UTF-8. */
export function parseJsonPayload(text: string | Buffer): unknown {
  const length = typeof text === "string" ? text.length : text.byteLength;
  if (length > EVENT_LIMITS.maxJsonBytes) {
    fail("payload", `payload is too large (${length} bytes, limit ${EVENT_LIMITS.maxJsonBytes}); send smaller batches`);
  }
  const source = typeof text === "string" ? text : text.toString("utf8");
  try {
    return JSON.parse(source);
  } catch (error) {
    return fail("payload", `payload is not valid JSON (${(error as Error).message})`);
  }
}

/** The events found in one message payload: the valid ones in order, and one error per invalid one. */
export interface PayloadEvents {
  events: SensorEvent[];
  errors: EventValidationError[];
  /** True when the payload was an array: results go out as an array too. */
  batch: boolean;
}

/**
 * Reads a message payload holding one event or an array of events (objects or JSON text).
 * A bad event in a batch does not discard the good ones around it.
 */
export function readPayloadEvents(payload: unknown): PayloadEvents {
  let value = payload;
  try {
    if (typeof value === "string" || Buffer.isBuffer(value)) value = parseJsonPayload(value);
  } catch (error) {
    return { events: [], errors: [error as EventValidationError], batch: false };
  }
  if (!Array.isArray(value)) {
    try {
      return { events: [validateEvent(value)], errors: [], batch: false };
    } catch (error) {
      return { events: [], errors: [asValidationError(error)], batch: false };
    }
  }
  if (value.length > EVENT_LIMITS.maxBatchSize) {
    return {
      events: [],
      errors: [new EventValidationError("payload", `batch is too large (${value.length} events, limit ${EVENT_LIMITS.maxBatchSize})`)],
      batch: true,
    };
  }
  const events: SensorEvent[] = [];
  const errors: EventValidationError[] = [];
  for (let index = 0; index < value.length; index++) {
    try {
      events.push(validateEvent(value[index]));
    } catch (error) {
      const cause = asValidationError(error);
      errors.push(new EventValidationError(cause.field, cause.message, index));
    }
  }
  return { events, errors, batch: true };
}

function asValidationError(error: unknown): EventValidationError {
  if (error instanceof EventValidationError) return error;
  return new EventValidationError("payload", (error as Error)?.message ?? String(error));
}

/** One error for a whole message: the first problem in full, and how many more there were. */
export function summariseErrors(errors: EventValidationError[]): EventValidationError | null {
  if (errors.length === 0) return null;
  const first = errors[0];
  if (errors.length === 1) return first;
  const summary = new EventValidationError(first.field, `${first.message} (and ${errors.length - 1} more invalid events)`);
  return summary;
}

/** True when any detector that ran on the event flagged it (known detectors and ones added later alike). */
export function isFlaggedByAnyDetector(event: SensorEvent): boolean {
  const detectors = event.detectors;
  if (detectors === null || typeof detectors !== "object") return false;
  for (const key in detectors) {
    const result = detectors[key] as { anomaly?: unknown } | null | undefined;
    if (result !== null && typeof result === "object" && result.anomaly === true) return true;
  }
  return false;
}
