import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { validateEvent, type SensorEvent } from "../../src/core/event";
import { CsvReplay, CsvReplayError, parseCsvText, parseTimestampCell, splitCsvLine } from "../../src/core/csv-replay";
import { requireSharedData } from "../support/shared-data";

const FIXTURE = join(__dirname, "..", "fixtures", "replay.csv");

function readAll(replay: CsvReplay): SensorEvent[] {
  const events: SensorEvent[] = [];
  replay.takeDue(Infinity, Infinity, events);
  return events;
}

function expectCsvError(action: () => unknown, line: number, column: string | undefined, message: RegExp): void {
  assert.throws(action, (error: unknown) => {
    assert.ok(error instanceof CsvReplayError, String(error));
    assert.equal(error.line, line);
    assert.equal(error.column, column);
    assert.match(error.message, message);
    return true;
  });
}

describe("core/csv-replay", () => {
  let directory: string;
  before(() => {
    directory = mkdtempSync(join(tmpdir(), "csv-replay-"));
  });
  after(() => rmSync(directory, { recursive: true, force: true }));
  const write = (name: string, text: string) => {
    const path = join(directory, name);
    writeFileSync(path, text);
    return path;
  };

  it("reads the fixture: sensor column, labels, missing cells in quality.missing, a row without values skipped", () => {
    const replay = new CsvReplay(FIXTURE, { sensorIdColumn: "sensor", sensorId: "fallback", speed: 0 });
    const events = readAll(replay);
    assert.equal(events.length, 9);
    assert.equal(replay.skippedRows, 1);
    assert.deepEqual(replay.metrics, ["vibration", "temperature"]);
    for (const event of events) validateEvent(event);
    assert.deepEqual(events[0], {
      eventId: `pump-01:${Date.UTC(2024, 0, 1)}:2`,
      sensorId: "pump-01",
      timestamp: Date.UTC(2024, 0, 1),
      readings: { vibration: 2.41, temperature: 44.8 },
      label: { anomaly: false },
    });
    assert.deepEqual(events[2].readings, { temperature: 45.0 });
    assert.deepEqual(events[2].quality, { missing: ["vibration"] });
    assert.deepEqual(events[3].quality, { missing: ["temperature"] }, "a non-numeric cell (n/a) counts as missing");
    assert.deepEqual(events[4].label, { anomaly: true });
    assert.equal(events[4].readings.vibration, 9.8);
    assert.equal(events[6].sensorId, "fallback", "an empty sensor cell falls back to the configured id");
    assert.deepEqual(events[7].label, { anomaly: true });
    assert.ok(replay.isFinished());
  });

  it("reads a NAB data file (timestamp,value; zone-less times read as UTC), named after the file", function () {
    const nabFile = requireSharedData(this, "nab/data/realKnownCause/machine_temperature_system_failure.csv");
    const replay = new CsvReplay(nabFile, { speed: 0 });
    const events = readAll(replay);
    assert.equal(events.length, 22_695);
    assert.equal(events[0].sensorId, "machine_temperature_system_failure");
    assert.equal(events[0].timestamp, Date.UTC(2013, 11, 2, 21, 15));
    assert.equal(events[0].readings.value, 73.96732207);
    assert.equal(events[0].label, undefined);
    assert.equal(replay.skippedRows, 0);
  });

  it("schedules rows on the file's clock divided by the speed-up, never backwards, and all at once for speed 0", () => {
    const path = write("clock.csv", "time,v\n0,1\n10,2\n5,3\n20,4\n");
    const replay = new CsvReplay(path, { timestampColumn: "time", speed: 100 });
    // Epoch seconds: rows 10 s apart are due 100 ms apart at 100×; the out-of-order row waits for the one above it.
    const out: SensorEvent[] = [];
    assert.equal(replay.takeDue(0, 10, out), 1);
    assert.equal(replay.nextDue(), 100);
    assert.equal(replay.takeDue(99, 10, out), 0);
    assert.equal(replay.takeDue(100, 10, out), 2);
    assert.deepEqual(out.map((event) => event.readings.v), [1, 2, 3]);
    assert.equal(replay.takeDue(150, 10, out), 0);
    assert.equal(replay.takeDue(200, 10, out), 1);
    assert.ok(replay.isFinished());
    replay.reset();
    const fast = new CsvReplay(path, { timestampColumn: "time", speed: 0 });
    assert.equal(fast.takeDue(0, 3, []), 3, "speed 0 hands out everything at once, up to the limit asked");
    assert.equal(readAll(replay).length, 4, "reset starts again from the first row");
  });

  it("reads epoch milliseconds, epoch seconds and ISO 8601 with and without a zone", () => {
    assert.equal(parseTimestampCell("1700000000000"), 1_700_000_000_000);
    assert.equal(parseTimestampCell("1700000000"), 1_700_000_000_000);
    assert.equal(parseTimestampCell("1700000000.25"), 1_700_000_000_250);
    assert.equal(parseTimestampCell("2024-01-01 12:00:00"), Date.UTC(2024, 0, 1, 12));
    assert.equal(parseTimestampCell("2024-01-01T12:00:00+02:00"), Date.UTC(2024, 0, 1, 10));
    assert.equal(parseTimestampCell("abc"), undefined);
    assert.equal(parseTimestampCell("March 7"), undefined);
    assert.equal(parseTimestampCell("1700000000", "ms"), 1_700_000_000);
  });

  it("splits quoted cells", () => {
    assert.deepEqual(splitCsvLine(' a , "b,c" ,"say ""hi""",'), ["a", "b,c", 'say "hi"', ""]);
  });

  it("names the line and column of a bad date", () => {
    const rows = ["timestamp,vibration", ...Array.from({ length: 15 }, (_, i) => `${1_700_000_000 + i},2.5`), "abc,2.5"];
    const text = rows.join("\n");
    expectCsvError(() => parseCsvText(text), 17, "timestamp", /^line 17: column "timestamp" is not a date \(got "abc"\)$/);
    // The file replay hands out the rows above the bad one first.
    const replay = new CsvReplay(write("bad-date.csv", text), { speed: 0 });
    const out: SensorEvent[] = [];
    expectCsvError(() => replay.takeDue(0, 1000, out), 17, "timestamp", /line 17/);
    assert.equal(out.length, 15);
  });

  it("names the missing timestamp column, a bad label and a row with too many cells", () => {
    expectCsvError(() => parseCsvText("time,value\n1,2\n"), 1, "timestamp", /column "timestamp" not found in the header \(columns: time, value\)/);
    expectCsvError(() => parseCsvText("timestamp,value,label\n1,2,maybe\n"), 2, "label", /line 2: column "label" must be 0, 1, true or false \(got "maybe"\)/);
    expectCsvError(() => parseCsvText("timestamp,value\n1,2,3\n"), 2, undefined, /line 2: 3 cells but the header has 2 columns/);
    expectCsvError(() => parseCsvText("timestamp,value,value\n"), 1, "value", /column "value" appears twice/);
    expectCsvError(() => parseCsvText("timestamp,value\n1,2\n", { sensorIdColumn: "device" }), 1, "device", /sensor id column "device" not found/);
    expectCsvError(() => new CsvReplay(write("empty.csv", "\n\n")), 1, undefined, /the file is empty/);
    assert.throws(() => new CsvReplay(join(directory, "nope.csv")), /ENOENT/);
  });

  it("reads a 100k-row file lazily with constant memory per chunk (CRLF line ends, BOM, multi-byte names)", () => {
    const lines = ["\uFEFFtimestamp,température,label"];
    for (let i = 0; i < 100_000; i++) lines.push(`${1_700_000_000_000 + i * 1000},${(i % 100) / 10},${i % 1000 === 0 ? 1 : 0}`);
    const path = write("large.csv", lines.join("\r\n") + "\r\n");
    const replay = new CsvReplay(path, { speed: 0, sensorId: "line-7" });
    assert.deepEqual(replay.metrics, ["température"]);
    let count = 0;
    let anomalies = 0;
    let last: SensorEvent | undefined;
    const batch: SensorEvent[] = [];
    while (!replay.isFinished()) {
      batch.length = 0;
      count += replay.takeDue(0, 5000, batch);
      for (const event of batch) if (event.label?.anomaly) anomalies++;
      last = batch[batch.length - 1];
    }
    assert.equal(count, 100_000);
    assert.equal(anomalies, 100);
    assert.equal(last!.timestamp, 1_700_000_000_000 + 99_999 * 1000);
    assert.equal(last!.readings["température"], 9.9);
    assert.equal(last!.eventId, `line-7:${last!.timestamp}:100001`);
  });
});
