// Per-metric physical ranges and level lists written as text, as a node's edit dialog holds them:
// "temperature=10:45, humidity=0:88" and "6, 8, 10, 12". Errors quote the part that is wrong.
import type { ValueRange } from "./types";

function numberOf(text: string): number {
  const trimmed = text.trim();
  return trimmed === "" ? Number.NaN : Number(trimmed);
}

/** "metric=min:max" pairs separated by commas (or new lines); empty text is no range at all. */
export function parseMetricRanges(text: string): Record<string, ValueRange> {
  const ranges: Record<string, ValueRange> = Object.create(null);
  for (const part of text.split(/[,\n]/)) {
    if (part.trim() === "") continue;
    const equals = part.indexOf("=");
    const metric = equals < 0 ? "" : part.slice(0, equals).trim();
    const bounds = equals < 0 ? [] : part.slice(equals + 1).split(":");
    if (metric === "" || bounds.length !== 2) {
      throw new RangeError(`ranges: "${part.trim()}" is not metric=min:max (e.g. temperature=10:45)`);
    }
    const min = numberOf(bounds[0]);
    const max = numberOf(bounds[1]);
    if (!Number.isFinite(min) || !Number.isFinite(max) || !(max > min)) {
      throw new RangeError(`range of metric "${metric}" must be two numbers min:max with min below max (got "${part.slice(equals + 1).trim()}")`);
    }
    if (ranges[metric] !== undefined) throw new RangeError(`range of metric "${metric}" is given twice`);
    ranges[metric] = { min, max };
  }
  return ranges;
}

/** "6, 8, 10, 12" as numbers; `option` names the field in the error. */
export function parseNumberList(text: string, option: string): number[] {
  const numbers = text.split(",").filter((part) => part.trim() !== "").map(numberOf);
  if (numbers.some((value) => !Number.isFinite(value))) {
    throw new RangeError(`"${option}" must be a comma-separated list of numbers (got ${JSON.stringify(text)})`);
  }
  return numbers;
}
