#!/usr/bin/env node
// The `iot-anomaly` command: `evaluate` scores detectors on NAB-format labelled data, `detect` scores one CSV.
// Both use the same core detectors as the Node-RED nodes. Usage errors exit with status 2, other failures with 1.
import { parseArgs } from "node:util";
import { detectorNames } from "../core/stream-detectors";
import { detect } from "./detect-command";
import { evaluate, formatEvaluateReport } from "./evaluate-command";
import { UsageError } from "./usage-error";

const HELP = `Usage:
  iot-anomaly evaluate --corpus <folder> --detector <name> [--config <file.json>] [--threshold <t>] [--json]
  iot-anomaly evaluate --corpus <folder> --results <folder> [--json]
  iot-anomaly detect <file.csv> --detector <name> [--config <file.json>] [--output <results.csv>]
                     [--range <min>:<max>] [--warmup <rows>] [--json]
  iot-anomaly --help

evaluate  Runs a detector over a corpus in the Numenta Anomaly Benchmark's layout (data/<category>/<series>.csv
          of timestamp,value and labels/combined_windows.json; config/profiles.json if present) and prints the NAB
          score for the standard, reward_low_FP_rate and reward_low_FN_rate profiles (null detector 0, perfect
          100) and per series the window-level precision and recall. --results scores a folder of results files
          already in NAB's format (<category>/<detector>_<series>.csv with an anomaly_score column) instead.
          --threshold scores at a fixed threshold (0.5 = the detector's own alerts) instead of NAB's optimised one.
detect    Scores one CSV (timestamp,value) row by row and writes NAB's results format
          timestamp,value,anomaly_score,label (label 1 where the detector alerts) to --output or stdout.
          Warm-up defaults to NAB's probationary length (15% of the rows, at most 750); a detector with
          "range": "configured" uses --range, else the file's min and max.

Detectors: ${detectorNames().join(", ")}.
--config <file.json> overrides options of --detector, or, with a "type" of its own, is a whole configuration,
e.g. {"type": "rolling-sigma", "windowSize": 200, "k": 3, "cooldownRows": "auto"}.
--json prints machine-readable results.
`;

function usageFail(message: string): never {
  process.stderr.write(`iot-anomaly: ${message} (see iot-anomaly --help)\n`);
  process.exit(2);
}

function parse(args: string[], allowPositionals: boolean) {
  try {
    return parseArgs({
      args,
      allowPositionals,
      strict: true,
      options: {
        corpus: { type: "string" },
        detector: { type: "string" },
        config: { type: "string" },
        results: { type: "string" },
        threshold: { type: "string" },
        output: { type: "string" },
        input: { type: "string" },
        range: { type: "string" },
        warmup: { type: "string" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (error) {
    // parseArgs' messages name the option; keep the first line only.
    usageFail((error as Error).message.split("\n")[0]);
  }
}

function main(argv: string[]): void {
  const [command, ...rest] = argv;
  if (command === undefined) usageFail("a command is needed: evaluate or detect");
  if (command === "--help" || command === "-h" || command === "help") {
    process.stdout.write(HELP);
    return;
  }
  if (command !== "evaluate" && command !== "detect") usageFail(`unknown command "${command}": use evaluate or detect`);
  const { values, positionals } = parse(rest, command === "detect");
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  if (command === "evaluate") {
    const report = evaluate(values);
    process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatEvaluateReport(report));
    return;
  }
  if (positionals.length > 1) usageFail(`detect takes one input file (got ${positionals.length})`);
  const input = values.input ?? positionals[0];
  const { report, csv } = detect({ ...values, input });
  if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else if (values.output === undefined) process.stdout.write(csv);
  else process.stderr.write(`${report.rowCount} rows, ${report.alertCount} alerts written to ${report.output}\n`);
}

// Piped into `head`: stop quietly when the reader goes away.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0);
  throw error;
});

try {
  main(process.argv.slice(2));
} catch (error) {
  if (error instanceof UsageError) usageFail(error.message);
  process.stderr.write(`iot-anomaly: ${(error as Error).message}\n`);
  process.exit(1);
}
