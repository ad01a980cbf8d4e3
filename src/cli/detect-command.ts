// `iot-anomaly detect`: runs a detector configuration over one CSV (`timestamp,value`) and writes NAB's results
// format, `timestamp,value,anomaly_score,label`, where label is 1 on the rows the detector alerts on.
import { existsSync, writeFileSync } from "node:fs";
import { formatNabResults, nabSeriesContext, readNabTable } from "../core/nab";
import { ALERT_LEVEL, rangeModesOf, scoreSeries, type DetectorSpec } from "../core/stream-detectors";
import { detectorSpecFromOptions, parseRangeOption } from "./detector-option";
import { UsageError } from "./usage-error";

export interface DetectOptions {
  input?: string;
  output?: string;
  detector?: string;
  config?: string;
  range?: string;
  warmup?: string;
  json?: boolean;
}

export interface DetectReport {
  input: string;
  output: string | null;
  detector: DetectorSpec;
  rangeModes: string[];
  /** The range used in mode "configured": --range, else the file's min and max (as NAB gives its detectors). */
  range: { min: number; max: number };
  warmupRows: number;
  rowCount: number;
  alertCount: number;
  alerts: Array<{ row: number; timestamp: string; value: number; anomaly_score: number }>;
}

export function detect(options: DetectOptions): { report: DetectReport; csv: string } {
  if (options.input === undefined) throw new UsageError("detect needs an input CSV: iot-anomaly detect <file.csv> --detector <name>");
  if (!existsSync(options.input)) throw new UsageError(`input file ${options.input} does not exist`);
  if (options.detector === undefined && options.config === undefined) throw new UsageError("detect needs --detector <name> or --config <file.json>");
  const spec = detectorSpecFromOptions(options.detector, options.config);
  const configuredRange = parseRangeOption(options.range);
  let warmupRows: number | undefined;
  if (options.warmup !== undefined) {
    warmupRows = Number(options.warmup);
    if (!Number.isInteger(warmupRows) || warmupRows < 0) throw new UsageError(`--warmup must be a whole number of rows (got ${JSON.stringify(options.warmup)})`);
  }
  const table = readNabTable(options.input);
  // By default the file is treated as NAB treats a series: warm-up = probationary length, range = min and max.
  const context = nabSeriesContext(table.values);
  if (configuredRange !== undefined) context.range = configuredRange;
  if (warmupRows !== undefined) context.warmupRows = warmupRows;
  const scores = scoreSeries(spec, table.times, table.values, context);
  const flags = Array.from(scores, (score) => score >= ALERT_LEVEL);
  const alerts: DetectReport["alerts"] = [];
  flags.forEach((flag, row) => {
    if (flag) alerts.push({ row: row + 1, timestamp: table.timestamps[row], value: table.values[row], anomaly_score: scores[row] });
  });
  const csv = formatNabResults(table, scores, flags);
  if (options.output !== undefined) writeFileSync(options.output, csv);
  return {
    csv,
    report: {
      input: options.input,
      output: options.output ?? null,
      detector: spec,
      rangeModes: rangeModesOf(spec),
      range: context.range as { min: number; max: number },
      warmupRows: context.warmupRows,
      rowCount: table.times.length,
      alertCount: alerts.length,
      alerts,
    },
  };
}
