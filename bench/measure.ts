// Small helpers for `npm run bench`: repeat a measurement, report the median and every run, so a noisy
// 2-core machine shows its spread instead of one lucky figure.

export interface Figure {
  name: string;
  median: number;
  runs: number[];
  unit: string;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

export function percentile(sortedValues: ArrayLike<number>, fraction: number): number {
  if (sortedValues.length === 0) return NaN;
  const index = Math.min(sortedValues.length - 1, Math.max(0, Math.ceil(fraction * sortedValues.length) - 1));
  return sortedValues[index];
}

/** Runs `measureOnce` `repetitions` times (after one warm-up run) and returns the median of what it returns. */
export async function repeat(name: string, unit: string, repetitions: number, measureOnce: () => number | Promise<number>): Promise<Figure> {
  await measureOnce();
  const runs: number[] = [];
  for (let run = 0; run < repetitions; run++) runs.push(await measureOnce());
  return { name, median: median(runs), runs, unit };
}

/** Items per second for `count` calls of work done by `body`. */
export function ratePerSecond(count: number, body: () => void): number {
  const started = process.hrtime.bigint();
  body();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return count / seconds;
}

export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Math.abs(value) >= 1e6) return `${(value / 1e6).toFixed(2)} M`;
  if (Math.abs(value) >= 1e4) return `${(value / 1e3).toFixed(1)} k`;
  return value.toFixed(value >= 100 ? 0 : 2);
}

export function printFigure(figure: Figure): void {
  const runs = figure.runs.map(formatNumber).join(", ");
  console.log(`${figure.name.padEnd(58)} ${formatNumber(figure.median).padStart(10)} ${figure.unit}   (runs: ${runs})`);
}
