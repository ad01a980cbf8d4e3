// A labelled corpus in the Numenta Anomaly Benchmark's layout: data/<category>/<series>.csv, the anomaly windows in
// labels/combined_windows.json, and optionally config/profiles.json (else NAB's three built-in profiles).
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseTimestampCell } from "../csv-replay";
import { readNabTable, type NabTable } from "./nab-csv";
import { NAB_DEFAULT_PROFILES, parseNabProfiles, type NabProfile } from "./profiles";

/** A labelled window as row indices of its series, both ends included. */
export interface WindowRows {
  first: number;
  last: number;
}

export interface NabSeries {
  /** "<category>/<series>.csv", the key NAB's label files use. */
  name: string;
  path: string;
  table: NabTable;
  /** Labelled windows in time order, not overlapping. */
  windows: WindowRows[];
}

export interface NabCorpus {
  root: string;
  series: NabSeries[];
  profiles: NabProfile[];
}

function isDirectory(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory();
}

/** Names "<category>/<file>.csv" of the data files under `dataDir`, sorted. */
export function listNabDataFiles(dataDir: string): string[] {
  const names: string[] = [];
  for (const category of readdirSync(dataDir).sort()) {
    if (!isDirectory(join(dataDir, category))) continue;
    for (const file of readdirSync(join(dataDir, category)).sort()) {
      if (file.endsWith(".csv")) names.push(`${category}/${file}`);
    }
  }
  return names;
}

/**
 * Windows of one series as row indices. NAB takes the first row whose time equals each edge (its files repeat a
 * time now and then); an edge between rows is taken inward (first row after the start, last row before the end).
 */
export function windowsToRows(times: Float64Array, windows: ReadonlyArray<readonly [string, string]>, source: string): WindowRows[] {
  const rows: WindowRows[] = [];
  for (const window of windows) {
    if (!Array.isArray(window) || window.length !== 2 || typeof window[0] !== "string" || typeof window[1] !== "string") {
      throw new Error(`${source}: a window must be a pair of timestamps ["<start>", "<end>"] (got ${JSON.stringify(window)})`);
    }
    const start = parseTimestampCell(window[0], "iso");
    const end = parseTimestampCell(window[1], "iso");
    if (start === undefined || end === undefined || end < start) {
      throw new Error(`${source}: window ${JSON.stringify(window)} is not a pair of increasing timestamps`);
    }
    let first = times.indexOf(start);
    if (first === -1) first = times.findIndex((time) => time > start);
    if (first === -1) first = times.length;
    let last = times.indexOf(end, first);
    if (last === -1) {
      last = first;
      while (last < times.length && times[last] < end) last++;
      last--;
    }
    if (last < first) throw new Error(`${source}: window ${JSON.stringify(window)} holds no row of the series`);
    if (rows.length > 0 && first <= rows[rows.length - 1].last) {
      throw new Error(`${source}: window ${JSON.stringify(window)} overlaps or precedes the window before it`);
    }
    rows.push({ first, last });
  }
  return rows;
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new Error(`${path} is not valid JSON: ${(error as Error).message}`);
  }
}

/** Reads a whole corpus; every error names the folder or file at fault. */
export function readNabCorpus(root: string): NabCorpus {
  if (!isDirectory(root)) throw new Error(`corpus folder ${root} does not exist`);
  const dataDir = join(root, "data");
  if (!isDirectory(dataDir)) throw new Error(`corpus folder ${root} has no data/ folder (NAB layout: data/<category>/<series>.csv)`);
  const windowsPath = join(root, "labels", "combined_windows.json");
  if (!existsSync(windowsPath)) throw new Error(`corpus folder ${root} has no labels/combined_windows.json`);
  const labels = readJson(windowsPath);
  if (labels === null || typeof labels !== "object" || Array.isArray(labels)) {
    throw new Error(`${windowsPath} must hold an object {"<category>/<series>.csv": [[start, end], …]}`);
  }
  const profilesPath = join(root, "config", "profiles.json");
  const profiles = existsSync(profilesPath) ? parseNabProfiles(readFileSync(profilesPath, "utf8"), profilesPath) : [...NAB_DEFAULT_PROFILES];

  const names = listNabDataFiles(dataDir);
  if (names.length === 0) throw new Error(`corpus folder ${root} has no data/<category>/<series>.csv file`);
  const series = names.map((name): NabSeries => {
    const windows = (labels as Record<string, unknown>)[name];
    if (!Array.isArray(windows)) throw new Error(`${windowsPath} has no entry for "${name}" (an empty list [] means no anomaly)`);
    const path = join(dataDir, name);
    const table = readNabTable(path);
    return { name, path, table, windows: windowsToRows(table.times, windows as Array<[string, string]>, `${windowsPath} "${name}"`) };
  });
  return { root, series, profiles };
}

/** Per row, whether it lies inside a labelled window (the `label` column of NAB's results files). */
export function windowMask(rowCount: number, windows: readonly WindowRows[]): boolean[] {
  const mask = new Array<boolean>(rowCount).fill(false);
  for (const window of windows) for (let row = window.first; row <= window.last; row++) mask[row] = true;
  return mask;
}
