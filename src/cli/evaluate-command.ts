// `iot-anomaly evaluate`: scores a detector configuration (run here over the corpus) or a folder of results files
// (already in NAB's results format) on a NAB-format corpus, the way NAB's scorer does.
import { existsSync, statSync } from "node:fs";
import {
  readNabCorpus,
  readNabResultsFolder,
  runDetectorOnCorpus,
  scoreNab,
  type NabScore,
  type ScoredSeries,
  type SeriesScore,
} from "../core/nab";
import { rangeModesOf, type DetectorSpec } from "../core/stream-detectors";
import { detectorSpecFromOptions } from "./detector-option";
import { UsageError } from "./usage-error";

export interface EvaluateOptions {
  corpus?: string;
  detector?: string;
  config?: string;
  results?: string;
  threshold?: string;
  json?: boolean;
}

/** What `--json` prints. */
export interface EvaluateReport {
  corpus: string;
  /** The detector configuration run, or the results folder scored. */
  detector: DetectorSpec | { results: string };
  /** Range modes the configuration uses ("configured": each series' min and max, as NAB hands its detectors). */
  rangeModes: string[];
  /** "optimised" (NAB's per-profile sweep) or the fixed threshold given with --threshold. */
  thresholdMode: "optimised" | number;
  [profile: string]: unknown;
  profiles: Record<string, { score: number; rawScore: number; threshold: number; nullRawScore: number; perfectRawScore: number }>;
  files: Record<string, { windows: number } & Record<string, SeriesScore | number>>;
}

function isDirectory(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory();
}

export function checkEvaluateOptions(options: EvaluateOptions): void {
  if (options.corpus === undefined) throw new UsageError("evaluate needs --corpus <folder> (NAB layout: data/, labels/combined_windows.json)");
  if (!isDirectory(options.corpus)) throw new UsageError(`corpus folder ${options.corpus} does not exist`);
  if (options.results !== undefined && (options.detector !== undefined || options.config !== undefined)) {
    throw new UsageError("evaluate takes either --results <folder> or --detector/--config, not both");
  }
  if (options.results === undefined && options.detector === undefined && options.config === undefined) {
    throw new UsageError("evaluate needs --detector <name>, --config <file.json> or --results <folder>");
  }
  if (options.results !== undefined && !isDirectory(options.results)) throw new UsageError(`results folder ${options.results} does not exist`);
  if (options.threshold !== undefined && !Number.isFinite(Number(options.threshold))) {
    throw new UsageError(`--threshold must be a number (got ${JSON.stringify(options.threshold)})`);
  }
}

export function evaluate(options: EvaluateOptions): EvaluateReport {
  checkEvaluateOptions(options);
  const corpusPath = options.corpus as string;
  const spec = options.results === undefined ? detectorSpecFromOptions(options.detector, options.config) : undefined;
  const corpus = readNabCorpus(corpusPath);
  const entries: ScoredSeries[] = spec === undefined ? readNabResultsFolder(options.results as string, corpus) : runDetectorOnCorpus(spec, corpus);
  const threshold = options.threshold === undefined ? undefined : Number(options.threshold);
  const score = scoreNab(entries, corpus.profiles, { threshold });
  return report(corpusPath, spec ?? { results: options.results as string }, spec === undefined ? [] : rangeModesOf(spec), threshold, score);
}

function report(corpus: string, detector: EvaluateReport["detector"], rangeModes: string[], threshold: number | undefined, score: NabScore): EvaluateReport {
  // The three headline scores first, as NAB prints them; full precision under "profiles".
  const headline: Record<string, number> = {};
  for (const [name, profile] of Object.entries(score.profiles)) headline[name] = round(profile.score);
  const result: EvaluateReport = { ...headline, corpus, detector, rangeModes, thresholdMode: threshold ?? "optimised", profiles: {}, files: {} };
  for (const [name, profile] of Object.entries(score.profiles)) {
    result.profiles[name] = {
      score: profile.score,
      rawScore: profile.rawScore,
      threshold: profile.threshold,
      nullRawScore: profile.nullRawScore,
      perfectRawScore: profile.perfectRawScore,
    };
    for (const [file, series] of Object.entries(profile.series)) {
      const entry = (result.files[file] ??= { windows: series.windows });
      entry[name] = series;
    }
  }
  return result;
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

function percent(value: number | null): string {
  return value === null ? "-" : `${(100 * value).toFixed(0)}%`;
}

/** The report as a person reads it: the three scores, then per series the first profile's window-level figures. */
export function formatEvaluateReport(result: EvaluateReport): string {
  const lines: string[] = [];
  const what = "results" in result.detector ? `results in ${result.detector.results}` : JSON.stringify(result.detector);
  lines.push(`NAB scores on ${result.corpus}`);
  lines.push(`detector: ${what}`);
  if (result.rangeModes.length > 0) lines.push(`range mode: ${result.rangeModes.join(", ")}`);
  lines.push(`threshold: ${result.thresholdMode === "optimised" ? "optimised per profile (NAB's sweep)" : `fixed at ${result.thresholdMode}`}`);
  lines.push("");
  lines.push(`${"profile".padEnd(22)}${"score".padStart(8)}${"threshold".padStart(12)}${"raw".padStart(10)}`);
  const profiles = Object.keys(result.profiles);
  for (const name of profiles) {
    const profile = result.profiles[name];
    lines.push(`${name.padEnd(22)}${profile.score.toFixed(2).padStart(8)}${formatThreshold(profile.threshold).padStart(12)}${profile.rawScore.toFixed(2).padStart(10)}`);
  }
  const first = profiles[0];
  lines.push("");
  lines.push(`per series at the ${first} threshold (window level: a window counts once however often it is detected)`);
  lines.push(`${"series".padEnd(56)}${"windows".padStart(8)}${"detected".padStart(9)}${"FP".padStart(5)}${"precision".padStart(10)}${"recall".padStart(8)}`);
  for (const [file, entry] of Object.entries(result.files)) {
    const series = entry[first] as SeriesScore;
    lines.push(
      `${file.padEnd(56)}${String(series.windows).padStart(8)}${String(series.detectedWindows).padStart(9)}${String(series.falsePositives).padStart(5)}` +
        `${percent(series.precision).padStart(10)}${percent(series.recall).padStart(8)}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

function formatThreshold(threshold: number): string {
  return Number(threshold.toPrecision(6)).toString();
}
