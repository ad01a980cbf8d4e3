// Reading NAB's CSV files (data files `timestamp,value` and results files `timestamp,value,anomaly_score,label,…`)
// and writing results files. NAB files are at most a few MB, so a file is read whole.
import { readFileSync } from "node:fs";
import { parseNumberCell, parseTimestampCell, splitCsvLine } from "../csv-replay";

/** The columns of a NAB CSV file this package uses; `timestamps` keeps the file's own text for writing it back. */
export interface NabTable {
  timestamps: string[];
  /** Milliseconds since epoch (zone-less NAB times read as UTC). NAB's own files repeat a time now and then, and
   * one steps back an hour, so order is not checked: rows count, not times. */
  times: Float64Array;
  values: Float64Array;
  /** `anomaly_score` column of a results file; absent for a data file. */
  scores?: Float64Array;
}

/** Column order NAB's scorer writes and reads; the S(t) columns it adds are optional on input. */
export const NAB_RESULTS_HEADER = ["timestamp", "value", "anomaly_score", "label"] as const;

/**
 * Parses the text of a NAB CSV file. `withScores` requires an `anomaly_score` column (a results file). Errors name
 * the file (`source`), the line and the column.
 */
export function parseNabTable(text: string, source: string, withScores = false): NabTable {
  const lines = text.split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1].trim() === "") lines.pop();
  if (lines.length === 0) throw new Error(`${source}: the file is empty, a header "timestamp,value" is needed`);
  const header = splitCsvLine(lines[0].replace(/^\uFEFF/, ""));
  const column = (name: string): number => {
    const index = header.indexOf(name);
    if (index === -1) throw new Error(`${source}: line 1: column "${name}" not found in the header (columns: ${header.join(", ")})`);
    return index;
  };
  const timeIndex = column("timestamp");
  const valueIndex = column("value");
  const scoreIndex = withScores ? column("anomaly_score") : -1;
  const rowCount = lines.length - 1;
  const table: NabTable = {
    timestamps: new Array<string>(rowCount),
    times: new Float64Array(rowCount),
    values: new Float64Array(rowCount),
  };
  if (withScores) table.scores = new Float64Array(rowCount);
  for (let row = 0; row < rowCount; row++) {
    const lineNumber = row + 2;
    const cells = splitCsvLine(lines[row + 1]);
    const time = parseTimestampCell(cells[timeIndex] ?? "", "iso");
    if (time === undefined) {
      throw new Error(`${source}: line ${lineNumber}: "timestamp" is not a date and time (got ${JSON.stringify(cells[timeIndex] ?? "")})`);
    }
    const value = parseNumberCell(cells[valueIndex] ?? "");
    if (value === undefined) {
      throw new Error(`${source}: line ${lineNumber}: "value" is not a number (got ${JSON.stringify(cells[valueIndex] ?? "")})`);
    }
    table.timestamps[row] = cells[timeIndex];
    table.times[row] = time;
    table.values[row] = value;
    if (table.scores) {
      const score = parseNumberCell(cells[scoreIndex] ?? "");
      if (score === undefined) {
        throw new Error(`${source}: line ${lineNumber}: "anomaly_score" is not a number (got ${JSON.stringify(cells[scoreIndex] ?? "")})`);
      }
      table.scores[row] = score;
    }
  }
  return table;
}

export function readNabTable(path: string, withScores = false): NabTable {
  return parseNabTable(readFileSync(path, "utf8"), path, withScores);
}

/**
 * A results file in NAB's format: `timestamp,value,anomaly_score,label`, label 1 inside a labelled window
 * (`inWindow`), as NAB's own results files carry it.
 */
export function formatNabResults(table: NabTable, scores: ArrayLike<number>, inWindow?: ArrayLike<boolean>): string {
  const lines = [NAB_RESULTS_HEADER.join(",")];
  for (let row = 0; row < table.timestamps.length; row++) {
    lines.push(`${table.timestamps[row]},${table.values[row]},${scores[row]},${inWindow?.[row] ? 1 : 0}`);
  }
  return `${lines.join("\n")}\n`;
}
