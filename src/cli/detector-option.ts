// Turns `--detector <name>` and `--config <file.json>` into a checked detector configuration.
import { existsSync, readFileSync } from "node:fs";
import { resolveDetectorSpec, type DetectorSpec } from "../core/stream-detectors";
import { UsageError } from "./usage-error";

export function readConfigFile(path: string): unknown {
  if (!existsSync(path)) throw new UsageError(`config file ${path} does not exist`);
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new UsageError(`config file ${path} is not valid JSON: ${(error as Error).message}`);
  }
}

export function detectorSpecFromOptions(detector: string | undefined, configPath: string | undefined): DetectorSpec {
  const config = configPath === undefined ? undefined : readConfigFile(configPath);
  try {
    return resolveDetectorSpec(detector, config);
  } catch (error) {
    const where = configPath === undefined ? "" : ` (in ${configPath})`;
    throw new UsageError(`${(error as Error).message}${where}`);
  }
}

/** `--range min:max` as a sensor's configured range. */
export function parseRangeOption(text: string | undefined): { min: number; max: number } | undefined {
  if (text === undefined) return undefined;
  const match = /^\s*(-?[\d.eE+-]+)\s*:\s*(-?[\d.eE+-]+)\s*$/.exec(text);
  const min = match ? Number(match[1]) : Number.NaN;
  const max = match ? Number(match[2]) : Number.NaN;
  if (!Number.isFinite(min) || !Number.isFinite(max) || max < min) {
    throw new UsageError(`--range must be "<min>:<max>" with min ≤ max (got ${JSON.stringify(text)})`);
  }
  return { min, max };
}
