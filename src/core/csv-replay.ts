// Replays a CSV file as sensor events: parses rows lazily (a file is read in chunks, never whole), turns numeric
// columns into readings, and computes when each row is due for a given speed-up. Timers belong to the caller.
import { closeSync, openSync, readSync } from "node:fs";
import { basename, extname } from "node:path";
import { StringDecoder } from "node:string_decoder";
import { EVENT_LIMITS, type SensorEvent } from "./event";

export type TimestampFormat = "auto" | "iso" | "ms" | "s";

export interface CsvReplayOptions {
  /** Header name of the time column (default "timestamp"). */
  timestampColumn?: string;
  /**
   * auto (default): a number below 1e11 is epoch seconds, a larger one epoch milliseconds, text is ISO 8601;
   * ISO text without a zone ("2013-07-04 00:00:00", as in NAB files) is read as UTC so a replay is the same on
   * every machine.
   */
  timestampFormat?: TimestampFormat;
  /** Header name of a sensor id column; rows without one (or with an empty cell) use `sensorId`. */
  sensorIdColumn?: string;
  /** Sensor id when the file has no sensor id column (default: the file name without extension, else "csv"). */
  sensorId?: string;
  /** Header name of the ground-truth column, 0/1 or true/false (default "label"; used when present). */
  labelColumn?: string;
  /** Columns to read as readings; default every column except timestamp, sensor id and label. */
  metrics?: readonly string[];
  /** Cell separator (default ","). Quoted cells ("a,b" and "" for a quote) are understood; line breaks inside quotes are not. */
  delimiter?: string;
  /** Name used in error messages (default: the file path). */
  source?: string;
}

/** A problem in the file: `line` is 1-based (the header is line 1), `column` the header name when one is at fault. */
export class CsvReplayError extends Error {
  constructor(readonly line: number, readonly column: string | undefined, message: string, readonly source?: string) {
    super(`line ${line}: ${message}`);
    this.name = "CsvReplayError";
  }
}

export function isCsvReplayError(error: unknown): error is CsvReplayError {
  return error instanceof CsvReplayError;
}

const NUMBER_PATTERN = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const ISO_WITHOUT_ZONE = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)$/;
const ISO_START = /^\d{4}-\d{2}-\d{2}/;
/** Epoch values below this are seconds (1e11 s is the year 5138; 1e11 ms is March 1973). */
const SECONDS_LIMIT = 1e11;

/** A strict decimal number (no "", " ", "0x10", "Infinity"), or undefined. */
export function parseNumberCell(cell: string): number | undefined {
  if (!NUMBER_PATTERN.test(cell)) return undefined;
  const value = Number(cell);
  return Number.isFinite(value) ? value : undefined;
}

/** Milliseconds since epoch, or undefined when the text is not a time in `format`. */
export function parseTimestampCell(cell: string, format: TimestampFormat = "auto"): number | undefined {
  const text = cell.trim();
  if (format !== "iso" && NUMBER_PATTERN.test(text)) {
    const value = Number(text);
    if (!Number.isFinite(value)) return undefined;
    const seconds = format === "s" || (format === "auto" && Math.abs(value) < SECONDS_LIMIT);
    return Math.round(seconds ? value * 1000 : value);
  }
  if (format === "ms" || format === "s" || !ISO_START.test(text)) return undefined;
  const withoutZone = ISO_WITHOUT_ZONE.exec(text);
  const value = Date.parse(withoutZone ? `${withoutZone[1]}T${withoutZone[2]}Z` : text);
  return Number.isFinite(value) ? value : undefined;
}

/** Splits one CSV line into trimmed cells; quoted cells keep delimiters and turn "" into ". */
export function splitCsvLine(line: string, delimiter = ","): string[] {
  if (line.indexOf('"') === -1) {
    const cells = line.split(delimiter);
    for (let i = 0; i < cells.length; i++) cells[i] = cells[i].trim();
    return cells;
  }
  const cells: string[] = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const char = line[i];
    if (quoted) {
      if (char === '"') {
        if (line[i + 1] === '"') {
          cell += '"';
          i++;
        } else quoted = false;
      } else cell += char;
    } else if (char === '"' && cell.trim() === "") {
      quoted = true;
      cell = "";
    } else if (line.startsWith(delimiter, i)) {
      cells.push(cell.trim());
      cell = "";
      i += delimiter.length - 1;
    } else cell += char;
  }
  cells.push(cell.trim());
  return cells;
}

function describeCell(cell: string): string {
  return JSON.stringify(cell.length > 40 ? `${cell.slice(0, 40)}…` : cell);
}

/** Turns the header and then each row of a CSV file into events. */
export class CsvEventParser {
  /** Rows that had no numeric reading at all (blank lines are not counted). */
  skippedRows = 0;
  private columns: string[] = [];
  private timestampIndex = -1;
  private sensorIdIndex = -1;
  private labelIndex = -1;
  private metricIndexes: number[] = [];
  private metricNames: string[] = [];
  private readonly timestampColumn: string;
  private readonly timestampFormat: TimestampFormat;
  private readonly delimiter: string;
  private readonly sensorId: string;

  constructor(private readonly options: CsvReplayOptions = {}) {
    this.timestampColumn = options.timestampColumn?.trim() || "timestamp";
    this.timestampFormat = options.timestampFormat ?? "auto";
    if (!["auto", "iso", "ms", "s"].includes(this.timestampFormat)) {
      throw new RangeError(`"timestampFormat" must be auto, iso, ms or s (got ${JSON.stringify(this.timestampFormat)})`);
    }
    this.delimiter = options.delimiter || ",";
    this.sensorId = options.sensorId?.trim() || "csv";
    if (this.sensorId.length > EVENT_LIMITS.maxIdLength) throw new RangeError(`"sensorId" is too long (${this.sensorId.length} characters)`);
  }

  get header(): readonly string[] {
    return this.columns;
  }

  /** Metric columns, in file order. */
  get metrics(): readonly string[] {
    return this.metricNames;
  }

  private fail(line: number, column: string | undefined, message: string): never {
    throw new CsvReplayError(line, column, message, this.options.source);
  }

  private findColumn(name: string): number {
    const exact = this.columns.indexOf(name);
    if (exact !== -1) return exact;
    const lower = name.toLowerCase();
    return this.columns.findIndex((column) => column.toLowerCase() === lower);
  }

  readHeader(line: string, lineNumber = 1): void {
    const columns = splitCsvLine(line.replace(/^\uFEFF/, ""), this.delimiter);
    if (columns.length < 2 || columns.every((column) => column === "")) {
      this.fail(lineNumber, undefined, `the header must name a timestamp column and at least one value column (got ${describeCell(line)})`);
    }
    const seen = new Set<string>();
    columns.forEach((column, index) => {
      if (column === "") this.fail(lineNumber, undefined, `header column ${index + 1} has no name`);
      if (seen.has(column)) this.fail(lineNumber, column, `column "${column}" appears twice in the header`);
      seen.add(column);
    });
    this.columns = columns;
    const list = columns.join(", ");
    this.timestampIndex = this.findColumn(this.timestampColumn);
    if (this.timestampIndex === -1) {
      this.fail(lineNumber, this.timestampColumn, `column "${this.timestampColumn}" not found in the header (columns: ${list})`);
    }
    const sensorIdColumn = this.options.sensorIdColumn?.trim();
    this.sensorIdIndex = sensorIdColumn ? this.findColumn(sensorIdColumn) : -1;
    if (sensorIdColumn && this.sensorIdIndex === -1) {
      this.fail(lineNumber, sensorIdColumn, `sensor id column "${sensorIdColumn}" not found in the header (columns: ${list})`);
    }
    this.labelIndex = this.findColumn(this.options.labelColumn?.trim() || "label");
    const reserved = new Set([this.timestampIndex, this.sensorIdIndex, this.labelIndex]);
    let metricIndexes: number[];
    if (this.options.metrics && this.options.metrics.length > 0) {
      metricIndexes = this.options.metrics.map((name) => {
        const index = this.findColumn(name.trim());
        if (index === -1) this.fail(lineNumber, name, `metric column "${name}" not found in the header (columns: ${list})`);
        return index;
      });
    } else {
      metricIndexes = columns.map((_, index) => index).filter((index) => !reserved.has(index));
    }
    if (metricIndexes.length === 0) this.fail(lineNumber, undefined, `the header has no value column besides timestamp, sensor id and label (columns: ${list})`);
    if (metricIndexes.length > EVENT_LIMITS.maxMetrics) {
      this.fail(lineNumber, undefined, `the file has ${metricIndexes.length} value columns; an event holds at most ${EVENT_LIMITS.maxMetrics}`);
    }
    for (const index of metricIndexes) {
      if (columns[index].length > EVENT_LIMITS.maxMetricNameLength) {
        this.fail(lineNumber, columns[index], `column name "${columns[index].slice(0, 20)}…" is longer than ${EVENT_LIMITS.maxMetricNameLength} characters`);
      }
    }
    this.metricIndexes = metricIndexes;
    this.metricNames = metricIndexes.map((index) => columns[index]);
  }

  /** The event of one data row, or null for a blank line or a row without any numeric reading (counted). */
  parseRow(line: string, lineNumber: number): SensorEvent | null {
    if (this.timestampIndex === -1) throw new Error("readHeader() must be called before parseRow()");
    if (line.trim() === "") return null;
    const cells = splitCsvLine(line, this.delimiter);
    if (cells.length > this.columns.length && cells.slice(this.columns.length).some((cell) => cell !== "")) {
      this.fail(lineNumber, undefined, `${cells.length} cells but the header has ${this.columns.length} columns`);
    }

    const timestampCell = cells[this.timestampIndex] ?? "";
    const timestamp = parseTimestampCell(timestampCell, this.timestampFormat);
    if (timestamp === undefined || timestamp < 0) {
      this.fail(lineNumber, this.columns[this.timestampIndex], `column "${this.columns[this.timestampIndex]}" is not a date (got ${describeCell(timestampCell)})`);
    }

    const readings: Record<string, number> = {};
    let missing: string[] | undefined;
    let count = 0;
    for (let i = 0; i < this.metricIndexes.length; i++) {
      const value = parseNumberCell(cells[this.metricIndexes[i]] ?? "");
      if (value === undefined) (missing ??= []).push(this.metricNames[i]);
      else {
        readings[this.metricNames[i]] = value;
        count++;
      }
    }
    if (count === 0) {
      this.skippedRows++;
      return null;
    }

    let sensorId = this.sensorId;
    if (this.sensorIdIndex !== -1) {
      const cell = cells[this.sensorIdIndex] ?? "";
      if (cell.length > EVENT_LIMITS.maxIdLength) {
        this.fail(lineNumber, this.columns[this.sensorIdIndex], `column "${this.columns[this.sensorIdIndex]}" is longer than ${EVENT_LIMITS.maxIdLength} characters`);
      }
      if (cell !== "") sensorId = cell;
    }

    // The line number keeps ids unique when a file repeats a timestamp, and stable across replays of the same file.
    const event: SensorEvent = { eventId: `${sensorId}:${timestamp}:${lineNumber}`, sensorId, timestamp: timestamp as number, readings };
    if (missing) event.quality = { missing };
    if (this.labelIndex !== -1) {
      const cell = (cells[this.labelIndex] ?? "").toLowerCase();
      if (cell === "1" || cell === "true") event.label = { anomaly: true };
      else if (cell === "0" || cell === "false") event.label = { anomaly: false };
      else if (cell !== "") {
        this.fail(lineNumber, this.columns[this.labelIndex], `column "${this.columns[this.labelIndex]}" must be 0, 1, true or false (got ${describeCell(cells[this.labelIndex])})`);
      }
    }
    return event;
  }
}

/** Every event of a CSV text held in memory (small files, tests). */
export function parseCsvText(text: string, options: CsvReplayOptions = {}): { events: SensorEvent[]; skippedRows: number; metrics: readonly string[] } {
  const parser = new CsvEventParser(options);
  const lines = text.split(/\r?\n/);
  let headerLine = 0;
  while (headerLine < lines.length && lines[headerLine].trim() === "") headerLine++;
  if (headerLine === lines.length) throw new CsvReplayError(1, undefined, "the file is empty: a header row is needed", options.source);
  parser.readHeader(lines[headerLine], headerLine + 1);
  const events: SensorEvent[] = [];
  for (let i = headerLine + 1; i < lines.length; i++) {
    const event = parser.parseRow(lines[i], i + 1);
    if (event) events.push(event);
  }
  return { events, skippedRows: parser.skippedRows, metrics: parser.metrics };
}

/** Reads a file line by line in 64 KiB chunks, so a file of any size costs one chunk of memory. */
export class LineReader {
  private descriptor: number | undefined;
  private readonly buffer = Buffer.allocUnsafe(64 * 1024);
  private readonly decoder = new StringDecoder("utf8");
  private lines: string[] = [];
  private position = 0;
  private rest = "";
  private ended = false;
  /** 1-based number of the line last returned. */
  lineNumber = 0;

  constructor(readonly path: string) {
    this.descriptor = openSync(path, "r");
  }

  /** The next line without its line break, or undefined at the end of the file. */
  next(): string | undefined {
    while (this.position === this.lines.length) {
      if (this.ended) return undefined;
      this.fill();
    }
    this.lineNumber++;
    return this.lines[this.position++];
  }

  private fill(): void {
    this.lines = [];
    this.position = 0;
    const bytes = this.descriptor === undefined ? 0 : readSync(this.descriptor, this.buffer, 0, this.buffer.length, null);
    if (bytes === 0) {
      this.ended = true;
      const last = this.rest + this.decoder.end();
      this.rest = "";
      if (last !== "") this.lines.push(last.endsWith("\r") ? last.slice(0, -1) : last);
      this.close();
      return;
    }
    const parts = (this.rest + this.decoder.write(this.buffer.subarray(0, bytes))).split("\n");
    this.rest = parts.pop() ?? "";
    for (const part of parts) this.lines.push(part.endsWith("\r") ? part.slice(0, -1) : part);
  }

  close(): void {
    if (this.descriptor !== undefined) closeSync(this.descriptor);
    this.descriptor = undefined;
    this.ended = true;
  }
}

export interface CsvReplayScheduleOptions extends CsvReplayOptions {
  /** Speed-up over the file's own clock: 100 plays an hour in 36 s; 0 plays as fast as possible (default 1). */
  speed?: number;
}

/**
 * A CSV file replayed on the file's own clock divided by `speed`: row i is due `(t_i − t_0) / speed` ms after the
 * replay starts (never before the row above it, so a file out of order does not burst backwards). Pure: the
 * caller passes the elapsed time and runs the timers.
 */
export class CsvReplay {
  readonly speed: number;
  readonly path: string;
  private readonly options: CsvReplayScheduleOptions;
  private reader: LineReader | undefined;
  private parser!: CsvEventParser;
  private pending: SensorEvent | null = null;
  private firstTimestamp: number | undefined;
  private lastDue = 0;
  private finished = false;
  /** Events handed out since the start (or the last reset). */
  emitted = 0;

  /** Opens the file and reads its header; throws a CsvReplayError (or the file system's error) when it cannot. */
  constructor(path: string, options: CsvReplayScheduleOptions = {}) {
    const speed = options.speed ?? 1;
    if (typeof speed !== "number" || !Number.isFinite(speed) || speed < 0) {
      throw new RangeError(`"speed" must be a number ≥ 0, 0 meaning as fast as possible (got ${String(speed)})`);
    }
    this.speed = speed;
    this.path = path;
    const sensorId = options.sensorId?.trim() || basename(path, extname(path)) || "csv";
    this.options = { ...options, sensorId, source: options.source ?? path };
    this.open();
  }

  /** Rows without any numeric value, skipped so far. */
  get skippedRows(): number {
    return this.parser.skippedRows;
  }

  get metrics(): readonly string[] {
    return this.parser.metrics;
  }

  /** True once every row has been handed out (reads ahead one row, so it may throw a CsvReplayError). */
  isFinished(): boolean {
    return this.peek() === null;
  }

  /** Milliseconds after the replay start at which the next event is due, or undefined at the end. */
  nextDue(): number | undefined {
    const event = this.peek();
    return event ? this.dueOf(event) : undefined;
  }

  /**
   * Appends to `out` the events due `elapsed` ms after the replay start, at most `max` of them, and returns how
   * many it appended. A CsvReplayError is thrown after the rows before the bad one were appended.
   */
  takeDue(elapsed: number, max: number, out: SensorEvent[]): number {
    let taken = 0;
    while (taken < max) {
      const event = this.peek();
      if (!event || this.dueOf(event) > elapsed) break;
      this.lastDue = this.dueOf(event);
      this.pending = null;
      out.push(event);
      taken++;
    }
    this.emitted += taken;
    return taken;
  }

  /** Back to the first row. */
  reset(): void {
    this.close();
    this.open();
  }

  close(): void {
    this.reader?.close();
    this.reader = undefined;
  }

  private open(): void {
    this.parser = new CsvEventParser(this.options);
    this.pending = null;
    this.firstTimestamp = undefined;
    this.lastDue = 0;
    this.finished = false;
    this.emitted = 0;
    this.reader = new LineReader(this.path);
    let header = this.reader.next();
    while (header !== undefined && header.trim() === "") header = this.reader.next();
    if (header === undefined) {
      this.close();
      throw new CsvReplayError(1, undefined, "the file is empty: a header row is needed", this.path);
    }
    try {
      this.parser.readHeader(header, this.reader.lineNumber);
    } catch (error) {
      this.close();
      throw error;
    }
  }

  private dueOf(event: SensorEvent): number {
    if (this.speed === 0) return 0;
    this.firstTimestamp ??= event.timestamp;
    return Math.max(this.lastDue, (event.timestamp - this.firstTimestamp) / this.speed);
  }

  private peek(): SensorEvent | null {
    if (this.pending || this.finished) return this.pending;
    const reader = this.reader;
    if (!reader) {
      this.finished = true;
      return null;
    }
    for (;;) {
      const line = reader.next();
      if (line === undefined) {
        this.finished = true;
        this.close();
        return null;
      }
      const event = this.parser.parseRow(line, reader.lineNumber);
      if (event) {
        this.pending = event;
        return event;
      }
    }
  }
}
