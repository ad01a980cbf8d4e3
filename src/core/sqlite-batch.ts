// The compact form in which the writer ships a batch of rows to its SQLite thread: numbers in one Float64Array
// (transferred, not copied), names (sensor ids, metric names, label kinds) once per batch in a small dictionary, and
// only the strings that cannot be rebuilt. The main thread (encoder) does no JSON work for the usual event; the
// writer thread (decoder) rebuilds readings/sigma_z/sigma_flags JSON. decode(encode(e)) equals eventRow(e).
import type { SensorEvent } from "./event";
import { EVENT_COLUMN_NAMES, STORED_AT_INDEX, checkStorableEvent, roundZ, type RowValue } from "./sqlite-schema";

/*
 * Per row, in `numbers`:
 *   flags, sensor name index, timestamp (as given; truncated by the decoder)
 *   [FOREST]  score, anomaly, model version          (NaN for NULL)
 *   [LABEL]   anomaly (NaN for NULL), kind name index, metric name index (-1 for NULL)
 *   [SIGMA]   anomaly (NaN for NULL), metric count m, then m × (name index, z (NaN if none), flag 1/0)
 *   [!READINGS_TEXT] reading count r, then r × (name index, value)
 * Per row, in `texts`: the event id, then readings JSON (READINGS_TEXT: a value that is not a finite number is
 * kept exactly as JSON.stringify writes it), missing JSON (MISSING_TEXT), detectors JSON (DETAILS_TEXT).
 */
const ANOMALY = 1;
const FOREST = 2;
const LABEL = 4;
const SIGMA = 8;
const READINGS_TEXT = 16;
const MISSING_TEXT = 32;
const DETAILS_TEXT = 64;

export interface EncodedBatch {
  rows: number;
  /** Row data; longer than used (the decoder reads `rows` rows). Its buffer is transferred to the writer thread. */
  numbers: Float64Array<ArrayBuffer>;
  names: string[];
  texts: string[];
}

// Row positions, from the column list so that a reordering there cannot silently shift values here.
const column = (name: string): number => {
  const index = EVENT_COLUMN_NAMES.indexOf(name);
  if (index < 0) throw new Error(`sqlite-batch: no column ${name}`);
  return index;
};
const EVENT_ID = column("event_id");
const SENSOR_ID = column("sensor_id");
const TS = column("ts");
const READINGS = column("readings");
const ANOMALY_COLUMN = column("anomaly");
const SIGMA_ANOMALY = column("sigma_anomaly");
const SIGMA_MAX_ABS_Z = column("sigma_max_abs_z");
const SIGMA_Z = column("sigma_z");
const SIGMA_FLAGS = column("sigma_flags");
const IFOREST_SCORE = column("iforest_score");
const IFOREST_ANOMALY = column("iforest_anomaly");
const MODEL_VERSION = column("model_version");
const LABEL_ANOMALY = column("label_anomaly");
const LABEL_KIND = column("label_kind");
const LABEL_METRIC = column("label_metric");
const MISSING = column("missing");
/** The detectors column follows the default ones (eventColumns(true)). */
const DETECTORS = EVENT_COLUMN_NAMES.length;

const flagNumber = (value: unknown): number => (value === true ? 1 : value === false ? 0 : Number.NaN);
const finiteNumber = (value: unknown): number => (typeof value === "number" && Number.isFinite(value) ? value : Number.NaN);

/** Collects the rows of one batch on the main thread. */
export class BatchEncoder {
  private numbers: Float64Array<ArrayBuffer>;
  private used = 0;
  private texts: string[] = [];
  private names: string[] = [];
  private nameIndex = new Map<string, number>();
  private rowCount = 0;

  constructor(
    private readonly storeDetails = false,
    private capacity = 16_384,
  ) {
    this.numbers = new Float64Array(capacity);
  }

  get rows(): number {
    return this.rowCount;
  }

  /**
   * Appends the rows of `events`, all or none: throws a TypeError naming the event's position and field (and keeps
   * the batch as it was) when one cannot be stored.
   */
  add(events: readonly SensorEvent[]): void {
    const mark = { used: this.used, texts: this.texts.length, rows: this.rowCount };
    for (let index = 0; index < events.length; index++) {
      try {
        this.addEvent(events[index]);
      } catch (error) {
        this.used = mark.used;
        this.texts.length = mark.texts;
        this.rowCount = mark.rows;
        throw new TypeError(`event [${index}]: ${(error as Error).message}`, { cause: error });
      }
    }
  }

  /** Hands over the batch (its buffer will be transferred) and starts an empty one. */
  take(): EncodedBatch {
    const batch: EncodedBatch = { rows: this.rowCount, numbers: this.numbers, names: this.names, texts: this.texts };
    // Size the next buffer for a batch like this one, so it rarely grows.
    this.capacity = Math.max(1024, this.used + (this.used >> 2));
    this.numbers = new Float64Array(this.capacity);
    this.used = 0;
    this.texts = [];
    this.names = [];
    this.nameIndex = new Map();
    this.rowCount = 0;
    return batch;
  }

  private name(value: string): number {
    let index = this.nameIndex.get(value);
    if (index === undefined) {
      index = this.names.length;
      this.names.push(value);
      this.nameIndex.set(value, index);
    }
    return index;
  }

  private reserve(count: number): void {
    if (this.used + count <= this.capacity) return;
    this.capacity = Math.max(this.capacity * 2, this.used + count);
    const grown = new Float64Array(this.capacity);
    grown.set(this.numbers.subarray(0, this.used));
    this.numbers = grown;
  }

  private addEvent(event: SensorEvent): void {
    checkStorableEvent(event);
    const { detectors, label, readings, quality } = event;
    this.reserve(10);
    const numbers = this.numbers;
    const flagsAt = this.used;
    let flags = 0;
    numbers[flagsAt + 1] = this.name(event.sensorId);
    numbers[flagsAt + 2] = event.timestamp;
    this.used += 3;
    this.texts.push(event.eventId);

    let sigma: unknown;
    if (detectors !== null && typeof detectors === "object") {
      for (const key in detectors) {
        const result = detectors[key] as { anomaly?: unknown } | null | undefined;
        if (result !== null && typeof result === "object" && result.anomaly === true) flags |= ANOMALY;
      }
      const forest = detectors.isolationForest;
      if (forest !== null && typeof forest === "object") {
        flags |= FOREST;
        numbers[this.used++] = finiteNumber(forest.score);
        numbers[this.used++] = flagNumber(forest.anomaly);
        numbers[this.used++] = finiteNumber(forest.modelVersion);
      }
      sigma = detectors.rolling3Sigma;
    }
    if (label) {
      flags |= LABEL;
      numbers[this.used++] = flagNumber(label.anomaly);
      numbers[this.used++] = typeof label.kind === "string" ? this.name(label.kind) : -1;
      numbers[this.used++] = typeof label.metric === "string" ? this.name(label.metric) : -1;
    }
    if (sigma !== null && typeof sigma === "object") {
      const { anomaly, metrics } = sigma as { anomaly?: unknown; metrics?: Record<string, { z?: unknown; flag?: unknown } | null> };
      flags |= SIGMA;
      this.reserve(2);
      this.numbers[this.used++] = flagNumber(anomaly);
      const countAt = this.used++;
      let count = 0;
      if (metrics !== null && typeof metrics === "object") {
        for (const metric in metrics) {
          const result = metrics[metric];
          this.reserve(3);
          const target = this.numbers;
          target[this.used++] = this.name(metric);
          const z = result?.z;
          target[this.used++] = typeof z === "number" ? z : Number.NaN;
          target[this.used++] = result?.flag === true ? 1 : 0;
          count++;
        }
      }
      this.numbers[countAt] = count;
    }

    // Readings: names and values; a value JSON would not write as a plain number goes as text instead.
    const readingsAt = this.used;
    this.reserve(1);
    this.used++;
    let readingCount = 0;
    // Only a plain object is written by JSON.stringify as its own keys; anything else (an array, a Date) goes as text.
    const proto = Object.getPrototypeOf(readings);
    if (proto !== Object.prototype && proto !== null) readingCount = -1;
    else for (const metric in readings) {
      const value = readings[metric];
      if (typeof value !== "number" || !Number.isFinite(value)) {
        readingCount = -1;
        break;
      }
      this.reserve(2);
      const target = this.numbers;
      target[this.used++] = this.name(metric);
      target[this.used++] = value;
      readingCount++;
    }
    if (readingCount < 0) {
      this.used = readingsAt;
      flags |= READINGS_TEXT;
      this.texts.push(JSON.stringify(readings));
    } else {
      this.numbers[readingsAt] = readingCount;
    }

    const missing = quality?.missing;
    if (Array.isArray(missing) && missing.length > 0) {
      flags |= MISSING_TEXT;
      this.texts.push(JSON.stringify(missing));
    }
    if (this.storeDetails && detectors !== null && typeof detectors === "object") {
      flags |= DETAILS_TEXT;
      this.texts.push(JSON.stringify(detectors));
    }
    this.numbers[flagsAt] = flags;
    this.rowCount++;
  }
}

/** Rebuilds rows on the writer thread. Keeps the JSON text of each name across batches. */
export class BatchDecoder {
  private readonly keyText = new Map<string, string>();
  private readonly row: RowValue[];

  constructor(private readonly storeDetails = false) {
    this.row = new Array(storeDetails ? DETECTORS + 1 : DETECTORS).fill(null);
  }

  /** `"name"` as JSON writes it (escapes included), cached: the same few names recur in every batch. */
  private quoted(name: string): string {
    let text = this.keyText.get(name);
    if (text === undefined) {
      text = JSON.stringify(name);
      this.keyText.set(name, text);
    }
    return text;
  }

  /**
   * Calls `visit` with each row in order, in `eventColumns(storeDetails)` order with stored_at set. The row array is
   * reused between calls: bind or copy it before returning.
   */
  decode(batch: EncodedBatch, storedAt: number, visit: (row: RowValue[], index: number) => void): void {
    const { numbers, names, texts } = batch;
    const quoted = names.map((name) => this.quoted(name));
    const row = this.row;
    let at = 0;
    let text = 0;
    for (let index = 0; index < batch.rows; index++) {
      const flags = numbers[at++];
      const sensor = numbers[at++];
      const timestamp = numbers[at++];
      row[EVENT_ID] = texts[text++];
      row[SENSOR_ID] = names[sensor];
      row[TS] = Math.trunc(timestamp);
      row[ANOMALY_COLUMN] = flags & ANOMALY ? 1 : 0;
      if (flags & FOREST) {
        const score = numbers[at++];
        const anomaly = numbers[at++];
        const version = numbers[at++];
        row[IFOREST_SCORE] = Number.isNaN(score) ? null : score;
        row[IFOREST_ANOMALY] = Number.isNaN(anomaly) ? null : anomaly;
        row[MODEL_VERSION] = Number.isNaN(version) ? null : version;
      } else {
        row[IFOREST_SCORE] = row[IFOREST_ANOMALY] = row[MODEL_VERSION] = null;
      }
      if (flags & LABEL) {
        const anomaly = numbers[at++];
        const kind = numbers[at++];
        const metric = numbers[at++];
        row[LABEL_ANOMALY] = Number.isNaN(anomaly) ? null : anomaly;
        row[LABEL_KIND] = kind < 0 ? null : names[kind];
        row[LABEL_METRIC] = metric < 0 ? null : names[metric];
      } else {
        row[LABEL_ANOMALY] = row[LABEL_KIND] = row[LABEL_METRIC] = null;
      }
      row[SIGMA_ANOMALY] = row[SIGMA_MAX_ABS_Z] = row[SIGMA_Z] = row[SIGMA_FLAGS] = null;
      if (flags & SIGMA) {
        const anomaly = numbers[at++];
        const count = numbers[at++];
        row[SIGMA_ANOMALY] = Number.isNaN(anomaly) ? null : anomaly;
        let maxAbsZ = -1;
        let zJson = "";
        let flagsJson = "";
        for (let metric = 0; metric < count; metric++) {
          const name = numbers[at++];
          const z = numbers[at++];
          const flagged = numbers[at++];
          if (Number.isFinite(z)) {
            const magnitude = Math.abs(z);
            if (magnitude > maxAbsZ) maxAbsZ = magnitude;
            // String(n) is JSON's number syntax for every finite n (and -0 becomes "0" in both).
            zJson += `${zJson === "" ? "{" : ","}${quoted[name]}:${roundZ(z)}`;
          }
          if (flagged === 1) flagsJson += `${flagsJson === "" ? "[" : ","}${quoted[name]}`;
        }
        if (maxAbsZ >= 0) {
          row[SIGMA_MAX_ABS_Z] = maxAbsZ;
          row[SIGMA_Z] = `${zJson}}`;
        }
        if (flagsJson !== "") row[SIGMA_FLAGS] = `${flagsJson}]`;
      }
      if (flags & READINGS_TEXT) {
        row[READINGS] = texts[text++];
      } else {
        const count = numbers[at++];
        let json = "{";
        for (let reading = 0; reading < count; reading++) {
          const name = numbers[at++];
          json += `${reading === 0 ? "" : ","}${quoted[name]}:${numbers[at++]}`;
        }
        row[READINGS] = `${json}}`;
      }
      row[MISSING] = flags & MISSING_TEXT ? texts[text++] : null;
      row[STORED_AT_INDEX] = storedAt;
      if (this.storeDetails) row[DETECTORS] = flags & DETAILS_TEXT ? texts[text++] : null;
      else if (flags & DETAILS_TEXT) text++;
      visit(row, index);
    }
  }
}
