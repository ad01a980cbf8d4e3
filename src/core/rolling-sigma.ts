// Rolling k-sigma detector: flags a reading that lies more than k standard deviations from the mean of the previous
// `windowSize` readings of the same sensor and metric. One RollingWindow per sensor-metric; O(1) per reading.
import type { SensorEvent, SigmaMetricResult, SigmaResult } from "./event";
import { RollingWindow, WINDOW_SIZE_LIMITS, type RollingWindowState } from "./rolling-stats";

export type SigmaDirection = "both" | "upper" | "lower";

export interface RollingSigmaOptions {
  /** Readings per sensor-metric the statistics cover (2 to 100000). Default 100. */
  windowSize?: number;
  /** Flag when the reading is more than k standard deviations from the window mean. Default 3. */
  k?: number;
  /** Readings a window needs before it may flag (2 to windowSize). Default 30, or windowSize when that is smaller. */
  minSamples?: number;
  /**
   * Smallest standard deviation used for the decision, in the metric's own units (absolute, not relative to the
   * mean: a relative floor means nothing for signals centred on zero or for °C vs K). It stops division by zero on a
   * constant series, where any change is then flagged. Set it to the sensor's resolution (e.g. 0.01) if a one-step
   * flicker on an otherwise flat signal should not be flagged. Default 1e-9.
   */
  sigmaFloor?: number;
  /** "both" (default) flags either side; "upper" only readings above the mean; "lower" only below. */
  direction?: SigmaDirection;
  /** Metrics to check; absent or empty checks every metric in `readings`. */
  metrics?: readonly string[];
}

export interface RollingSigmaConfig {
  windowSize: number;
  k: number;
  minSamples: number;
  sigmaFloor: number;
  direction: SigmaDirection;
  /** Empty: every metric of each event. */
  metrics: readonly string[];
}

/** Persisted state of every window. Entries, not objects keyed by id, so an id like "__proto__" is safe. */
export interface RollingSigmaSnapshot {
  version: 1;
  windowSize: number;
  sensors: Array<[sensorId: string, metrics: Array<[metric: string, window: RollingWindowState]>]>;
}

export const ROLLING_SIGMA_DEFAULTS = {
  windowSize: 100,
  k: 3,
  minSamples: 30,
  sigmaFloor: 1e-9,
  direction: "both",
} as const;

const DIRECTIONS: readonly SigmaDirection[] = ["both", "upper", "lower"];

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return "an array";
  if (value !== null && typeof value === "object") return "an object";
  return String(value);
}

/** Defaults applied and every option checked once; the Error names the option and the value. */
export function resolveRollingSigmaOptions(options: RollingSigmaOptions = {}): RollingSigmaConfig {
  // Apply defaults
  const windowSize = options.windowSize ?? ROLLING_SIGMA_DEFAULTS.windowSize;
  const k = options.k ?? ROLLING_SIGMA_DEFAULTS.k;
  const minSamples =
    options.minSamples ?? (typeof windowSize === "number" ? Math.min(ROLLING_SIGMA_DEFAULTS.minSamples, windowSize) : ROLLING_SIGMA_DEFAULTS.minSamples);
  const sigmaFloor = options.sigmaFloor ?? ROLLING_SIGMA_DEFAULTS.sigmaFloor;
  const direction = options.direction ?? ROLLING_SIGMA_DEFAULTS.direction;
  const metrics = options.metrics ?? [];

  // Validate arguments
  if (!Number.isInteger(windowSize) || windowSize < WINDOW_SIZE_LIMITS.min || windowSize > WINDOW_SIZE_LIMITS.max) {
    throw new RangeError(
      `"windowSize" must be an integer from ${WINDOW_SIZE_LIMITS.min} to ${WINDOW_SIZE_LIMITS.max} (got ${describe(windowSize)})`,
    );
  }
  if (typeof k !== "number" || !Number.isFinite(k) || k <= 0) {
    throw new RangeError(`"k" must be a positive number of standard deviations (got ${describe(k)})`);
  }
  if (!Number.isInteger(minSamples) || minSamples < 2 || minSamples > windowSize) {
    throw new RangeError(`"minSamples" must be an integer from 2 to windowSize (${windowSize}) (got ${describe(minSamples)})`);
  }
  if (typeof sigmaFloor !== "number" || !Number.isFinite(sigmaFloor) || sigmaFloor <= 0) {
    throw new RangeError(`"sigmaFloor" must be a positive number in the metric's units (got ${describe(sigmaFloor)})`);
  }
  if (!DIRECTIONS.includes(direction)) {
    throw new RangeError(`"direction" must be one of "both", "upper", "lower" (got ${describe(direction)})`);
  }
  if (!Array.isArray(metrics) || metrics.some((metric) => typeof metric !== "string" || metric.length === 0)) {
    throw new TypeError(`"metrics" must be a list of metric names (got ${describe(metrics)})`);
  }

  return { windowSize, k, minSamples, sigmaFloor, direction, metrics: [...new Set(metrics)] };
}

/**
 * Rolling k-sigma detector keyed per sensor and metric.
 *
 * Each reading is judged against the window *before* it (z first, then the reading joins the window), so a spike
 * does not inflate the statistics it is judged by. A window flags only once it holds `minSamples` readings; until
 * then `mean`, `std` and `z` are null. `std` is the sample standard deviation (n - 1); the decision uses
 * `max(std, sigmaFloor)`. Non-finite readings are not judged and do not enter the window.
 */
export class RollingSigma {
  readonly config: Readonly<RollingSigmaConfig>;
  private readonly windowSize: number;
  private readonly k: number;
  private readonly minSamples: number;
  private readonly sigmaFloor: number;
  /** +1 flags only high readings, -1 only low, 0 both. */
  private readonly side: number;
  private readonly metrics: readonly string[];
  private windows = new Map<string, Map<string, RollingWindow>>();
  private readyWindows = 0;

  constructor(options: RollingSigmaOptions = {}) {
    this.config = Object.freeze(resolveRollingSigmaOptions(options));
    this.windowSize = this.config.windowSize;
    this.k = this.config.k;
    this.minSamples = this.config.minSamples;
    this.sigmaFloor = this.config.sigmaFloor;
    this.side = this.config.direction === "upper" ? 1 : this.config.direction === "lower" ? -1 : 0;
    this.metrics = this.config.metrics;
  }

  /** Sensors with at least one window. */
  get sensorCount(): number {
    return this.windows.size;
  }

  /** Sensor-metric windows, all sensors together. */
  get windowCount(): number {
    let count = 0;
    for (const metrics of this.windows.values()) count += metrics.size;
    return count;
  }

  /** Windows holding at least `minSamples` readings, i.e. able to flag. */
  get readyWindowCount(): number {
    return this.readyWindows;
  }

  /** Judges one reading against the previous readings of the same sensor and metric, then adds it to the window. */
  check(sensorId: string, metric: string, value: number): SigmaMetricResult {
    return this.judge(this.windowFor(sensorId, metric), value);
  }

  /**
   * Adds `event.detectors.rolling3Sigma` for every metric in `event.readings` (or only the configured metrics that
   * are present). Readings are not touched. `ready` is true when every judged metric had `minSamples` readings;
   * an event carrying none of the configured metrics gets `ready: false` and no metric results.
   */
  processEvent(event: SensorEvent): SigmaResult {
    const readings = event.readings;
    let sensor = this.windows.get(event.sensorId);
    if (sensor === undefined) {
      sensor = new Map();
      this.windows.set(event.sensorId, sensor);
    }
    const metrics: Record<string, SigmaMetricResult> = {};
    let anomaly = false;
    let ready = true;
    let judged = 0;
    if (this.metrics.length === 0) {
      for (const metric in readings) {
        const result = this.judge(this.windowIn(sensor, metric), readings[metric]);
        metrics[metric] = result;
        if (result.flag) anomaly = true;
        if (result.z === null) ready = false;
        judged++;
      }
    } else {
      for (let i = 0; i < this.metrics.length; i++) {
        const metric = this.metrics[i];
        const value = readings[metric];
        if (typeof value !== "number" || !Object.prototype.hasOwnProperty.call(readings, metric)) continue;
        const result = this.judge(this.windowIn(sensor, metric), value);
        metrics[metric] = result;
        if (result.flag) anomaly = true;
        if (result.z === null) ready = false;
        judged++;
      }
    }
    if (sensor.size === 0) this.windows.delete(event.sensorId); // none of the configured metrics: keep no empty entry
    const result: SigmaResult = { anomaly, ready: ready && judged > 0, metrics };
    (event.detectors ??= {}).rolling3Sigma = result;
    return result;
  }

  /** Forgets every window. */
  reset(): void {
    this.windows = new Map();
    this.readyWindows = 0;
  }

  /** Every window, for a state file. */
  snapshot(): RollingSigmaSnapshot {
    const sensors: RollingSigmaSnapshot["sensors"] = [];
    for (const [sensorId, metrics] of this.windows) {
      const entries: Array<[string, RollingWindowState]> = [];
      for (const [metric, window] of metrics) entries.push([metric, window.toJSON()]);
      sensors.push([sensorId, entries]);
    }
    return { version: 1, windowSize: this.windowSize, sensors };
  }

  /**
   * Replaces every window with those of a snapshot. Throws (leaving the current windows untouched) when the
   * snapshot is malformed or was taken with another windowSize: statistics over another window length would be
   * judged as if they were this one's.
   */
  restore(snapshot: RollingSigmaSnapshot): void {
    if (snapshot === null || typeof snapshot !== "object" || snapshot.version !== 1 || !Array.isArray(snapshot.sensors)) {
      throw new Error("rolling-sigma snapshot is not a version 1 snapshot");
    }
    if (snapshot.windowSize !== this.windowSize) {
      throw new Error(`rolling-sigma snapshot has windowSize ${String(snapshot.windowSize)}, the detector ${this.windowSize}`);
    }
    const windows = new Map<string, Map<string, RollingWindow>>();
    let readyWindows = 0;
    for (const entry of snapshot.sensors) {
      if (!Array.isArray(entry) || typeof entry[0] !== "string" || !Array.isArray(entry[1])) {
        throw new Error("rolling-sigma snapshot has a malformed sensor entry");
      }
      const metrics = new Map<string, RollingWindow>();
      for (const metricEntry of entry[1]) {
        if (!Array.isArray(metricEntry) || typeof metricEntry[0] !== "string") {
          throw new Error(`rolling-sigma snapshot has a malformed metric entry for sensor "${entry[0]}"`);
        }
        const window = RollingWindow.fromJSON(metricEntry[1]);
        if (window.windowSize !== this.windowSize) {
          throw new Error(`rolling-sigma snapshot window "${entry[0]}/${metricEntry[0]}" has windowSize ${window.windowSize}`);
        }
        if (window.count >= this.minSamples) readyWindows++;
        metrics.set(metricEntry[0], window);
      }
      windows.set(entry[0], metrics);
    }
    this.windows = windows;
    this.readyWindows = readyWindows;
  }

  /** The window of one sensor-metric, or undefined; for inspection and tests. */
  window(sensorId: string, metric: string): RollingWindow | undefined {
    return this.windows.get(sensorId)?.get(metric);
  }

  private windowFor(sensorId: string, metric: string): RollingWindow {
    let sensor = this.windows.get(sensorId);
    if (sensor === undefined) {
      sensor = new Map();
      this.windows.set(sensorId, sensor);
    }
    return this.windowIn(sensor, metric);
  }

  private windowIn(sensor: Map<string, RollingWindow>, metric: string): RollingWindow {
    let window = sensor.get(metric);
    if (window === undefined) {
      window = new RollingWindow(this.windowSize);
      sensor.set(metric, window);
    }
    return window;
  }

  private judge(window: RollingWindow, value: number): SigmaMetricResult {
    const count = window.count;
    if (count < this.minSamples) {
      if (window.add(value) && count + 1 === this.minSamples) this.readyWindows++;
      return { mean: null, std: null, z: null, flag: false };
    }
    const mean = window.mean as number;
    const std = window.std as number;
    if (!window.add(value)) return { mean, std, z: null, flag: false };
    const z = (value - mean) / (std > this.sigmaFloor ? std : this.sigmaFloor);
    const side = this.side;
    const flag = side === 0 ? z > this.k || z < -this.k : side > 0 ? z > this.k : z < -this.k;
    return { mean, std, z, flag };
  }
}
