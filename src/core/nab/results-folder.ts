// A folder of one detector's results files in NAB's layout (<category>/<detector>_<series>.csv, as NAB's results/
// holds them, or <category>/<series>.csv), matched to the series of a corpus so published outputs can be re-scored.
import { existsSync, readdirSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import type { NabCorpus, NabSeries } from "./corpus";
import { readNabTable } from "./nab-csv";
import type { ScoredSeries } from "./scorer";

/** The results file of `series` in `folder`, or undefined. A file named exactly like the series wins. */
export function findResultsFile(folder: string, series: NabSeries): string | undefined {
  const [category, file] = series.name.split("/");
  const directory = join(folder, category);
  if (!existsSync(directory) || !statSync(directory).isDirectory()) return undefined;
  const exact = join(directory, file);
  if (existsSync(exact)) return exact;
  const preferred = join(directory, `${basename(folder)}_${file}`);
  if (existsSync(preferred)) return preferred;
  const candidates = readdirSync(directory).filter((name) => name.endsWith(`_${file}`));
  if (candidates.length > 1) {
    throw new Error(`results folder ${folder} has several files for "${series.name}": ${candidates.join(", ")}`);
  }
  return candidates.length === 1 ? join(directory, candidates[0]) : undefined;
}

/** The anomaly scores of every series of the corpus from a results folder; every series needs its file. */
export function readNabResultsFolder(folder: string, corpus: NabCorpus): ScoredSeries[] {
  if (!existsSync(folder) || !statSync(folder).isDirectory()) throw new Error(`results folder ${folder} does not exist`);
  return corpus.series.map((series) => {
    const path = findResultsFile(folder, series);
    if (path === undefined) {
      throw new Error(`results folder ${folder} has no results file for "${series.name}" (expected ${series.name.replace("/", "/<detector>_")})`);
    }
    const table = readNabTable(path, true);
    const rowCount = series.table.times.length;
    if (table.times.length !== rowCount) {
      throw new Error(`${path} has ${table.times.length} rows but the data file ${series.name} has ${rowCount}`);
    }
    for (let row = 0; row < rowCount; row++) {
      if (table.times[row] !== series.table.times[row]) {
        throw new Error(`${path}: line ${row + 2}: timestamp ${table.timestamps[row]} differs from the data file's ${series.table.timestamps[row]}`);
      }
    }
    return { series, scores: table.scores as Float64Array };
  });
}
