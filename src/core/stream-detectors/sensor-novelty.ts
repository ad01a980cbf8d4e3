// The `best` NAB configuration (contextual novelty with cool-down) on live events: one stream detector per sensor
// and metric, built by the same factory as `iot-anomaly detect --detector best`, so each metric's scores are the
// ones the CLI gives for that series with the same range and warm-up.
import type { NoveltyResult, SensorEvent } from "../event";
import { NAMED_DETECTORS } from "./registry";
import { createStreamDetector, parseDetectorSpec, type ContextualNoveltySpec, type CooldownRows } from "./spec";
import { ALERT_LEVEL, type SeriesContext, type ValueRange } from "./types";
import { isRestorable, type RestorableStreamDetector } from "./with-cooldown";

/** "configured": each metric's physical range, given; "warmup": estimated from the metric's warm-up readings. */
export type NoveltyRangeMode = "configured" | "warmup";

export interface SensorNoveltyOptions {
  /** Metrics to score; absent or empty: every metric in the readings. */
  metrics?: readonly string[];
  /** Physical range per metric (range mode "configured"). */
  ranges?: Readonly<Record<string, ValueRange>>;
  /** Default "configured". */
  rangeMode?: NoveltyRangeMode;
  /** Readings per sensor-metric before its alerts count (NAB's probationary period). Default 750. */
  warmupRows?: number;
  /** Readings of a sensor-metric after an alert with no further alert; "auto" (default): a fifth of the warm-up. */
  cooldownRows?: CooldownRows;
  /** The detector's options; defaults are those of the `best` configuration. */
  levels?: number | readonly number[];
  dayParts?: number;
  alertNovelty?: number;
}

export interface SensorNoveltyConfig {
  metrics: readonly string[];
  ranges: Readonly<Record<string, ValueRange>>;
  rangeMode: NoveltyRangeMode;
  warmupRows: number;
  cooldownRows: CooldownRows;
  levels: number[];
  dayParts: number;
  alertNovelty: number;
}

/**
 * 750 is NAB's probationary length for every series of 5000 rows or more (15 %, at most 750), so a long stream is
 * judged as NAB judged the `best` configuration; its cool-down ("auto") is then 150 readings.
 */
export const SENSOR_NOVELTY_DEFAULTS = { rangeMode: "configured", warmupRows: 750, cooldownRows: "auto" } as const;

const BEST = NAMED_DETECTORS.best as ContextualNoveltySpec;
const BEST_WARMUP = NAMED_DETECTORS["contextual-novelty-warmup"] as ContextualNoveltySpec;

const DAY_MS = 86_400_000;

/** One sensor-metric in a state file, with the settings it was learnt with (restored only when they still hold). */
export interface SensorNoveltyMetricSnapshot {
  metric: string;
  rows: number;
  /** Event time of its first and latest readings (ms). */
  firstMs: number;
  lastMs: number;
  ready: boolean;
  settings: string;
  state: unknown;
}

export interface SensorNoveltySnapshot {
  version: 1;
  sensors: Array<[sensorId: string, metrics: SensorNoveltyMetricSnapshot[]]>;
}

interface MetricDetector {
  detector: RestorableStreamDetector;
  rows: number;
  firstMs: number;
  lastMs: number;
  ready: boolean;
  settings: string;
}

function describe(value: unknown): string {
  return value === undefined ? "nothing" : JSON.stringify(value);
}

/** Defaults applied and every option checked once, with errors naming the option (and the metric). */
export function resolveSensorNoveltyOptions(options: SensorNoveltyOptions = {}): SensorNoveltyConfig {
  // Apply defaults
  const metrics = options.metrics ?? [];
  const ranges = options.ranges ?? {};
  const rangeMode = options.rangeMode ?? SENSOR_NOVELTY_DEFAULTS.rangeMode;
  const warmupRows = options.warmupRows ?? SENSOR_NOVELTY_DEFAULTS.warmupRows;
  const cooldownRows = options.cooldownRows ?? SENSOR_NOVELTY_DEFAULTS.cooldownRows;
  const levels = options.levels ?? BEST.levels!;
  const dayParts = options.dayParts ?? BEST.dayParts!;
  const alertNovelty = options.alertNovelty ?? BEST.alertNovelty!;

  // Validate arguments
  if (!Array.isArray(metrics) || metrics.some((metric) => typeof metric !== "string" || metric.length === 0)) {
    throw new TypeError(`"metrics" must be a list of metric names (got ${describe(metrics)})`);
  }
  if (rangeMode !== "configured" && rangeMode !== "warmup") {
    throw new RangeError(`"rangeMode" must be "configured" or "warmup" (got ${describe(rangeMode)})`);
  }
  if (!Number.isInteger(warmupRows) || warmupRows < 1 || warmupRows > 10_000_000) {
    throw new RangeError(`"warmupRows" must be a whole number of readings from 1 to 10000000 (got ${describe(warmupRows)})`);
  }
  if (cooldownRows !== "auto" && (!Number.isInteger(cooldownRows) || (cooldownRows as number) < 0)) {
    throw new RangeError(`"cooldownRows" must be a whole number of readings, 0 or more, or "auto" (got ${describe(cooldownRows)})`);
  }
  const levelList = typeof levels === "number" ? [levels] : Array.isArray(levels) ? [...levels] : [];
  if (levelList.length === 0 || levelList.some((count) => !Number.isInteger(count) || count < 2 || count > 1000)) {
    throw new RangeError(`"levels" must be one or more whole numbers from 2 to 1000 (got ${describe(levels)})`);
  }
  if (!Number.isInteger(dayParts) || dayParts < 0 || dayParts > 1440) {
    throw new RangeError(`"dayParts" must be a whole number from 0 to 1440 (got ${describe(dayParts)})`);
  }
  if (typeof alertNovelty !== "number" || !(alertNovelty > 0 && alertNovelty <= 1)) {
    throw new RangeError(`"alertNovelty" must be a number above 0, at most 1 (got ${describe(alertNovelty)})`);
  }
  if (ranges === null || typeof ranges !== "object" || Array.isArray(ranges)) {
    throw new TypeError(`"ranges" must be an object of metric: { min, max } (got ${describe(ranges)})`);
  }
  const checkedRanges: Record<string, ValueRange> = Object.create(null);
  for (const [metric, range] of Object.entries(ranges)) {
    const { min, max } = (range ?? {}) as Partial<ValueRange>;
    if (typeof min !== "number" || typeof max !== "number" || !Number.isFinite(min) || !Number.isFinite(max) || !(max > min)) {
      throw new RangeError(`range of metric "${metric}" must have a finite min below its max (got ${describe(range)})`);
    }
    checkedRanges[metric] = { min, max };
  }
  if (rangeMode === "configured") {
    // Listed metrics must each have a range; a range for a metric not listed is most likely a typo.
    const missing = metrics.filter((metric) => checkedRanges[metric] === undefined);
    if (missing.length > 0) {
      throw new RangeError(
        `metric ${missing.map((metric) => `"${metric}"`).join(", ")} has no range: range mode "configured" needs one per metric (e.g. ${missing[0]}=0:100), or use range mode "warmup"`,
      );
    }
    const unlisted = metrics.length === 0 ? [] : Object.keys(checkedRanges).filter((metric) => !metrics.includes(metric));
    if (unlisted.length > 0) {
      throw new RangeError(`range given for metric ${unlisted.map((metric) => `"${metric}"`).join(", ")}, which is not among the metrics (${metrics.join(", ")})`);
    }
  }
  const config: SensorNoveltyConfig = {
    metrics: [...new Set(metrics)],
    ranges: checkedRanges,
    rangeMode,
    warmupRows,
    cooldownRows,
    levels: levelList,
    dayParts,
    alertNovelty,
  };
  parseDetectorSpec(specFor(config, rangeMode)); // the factory's own checks, as a safety net
  return config;
}

/** The `best` configuration (or its warm-up-range variant) with this node's options. */
function specFor(config: SensorNoveltyConfig, rangeMode: NoveltyRangeMode): ContextualNoveltySpec {
  const base = rangeMode === "configured" ? BEST : BEST_WARMUP;
  return { ...base, levels: [...config.levels], dayParts: config.dayParts, alertNovelty: config.alertNovelty, cooldownRows: config.cooldownRows };
}

/**
 * Scores events with one `best` detector per sensor and metric.
 *
 * A metric's reading is scored on NAB's scale (0 to 1, alert at ALERT_LEVEL); the first `warmupRows` readings of a
 * sensor-metric (and, with day parts, its first day of event time) are its warm-up: scored like every other (so the
 * scores equal the CLI's) but never an alert, as NAB ignores detections in its probationary period. Range mode "configured" with no metrics listed: a metric
 * that has no configured range is scored with a range estimated from its warm-up (the `contextual-novelty-warmup`
 * configuration) and listed in `estimatedRangeMetrics`; with metrics listed, a missing range is a config error.
 */
export class SensorNovelty {
  readonly config: Readonly<SensorNoveltyConfig>;
  private readonly configuredSpec: ContextualNoveltySpec;
  private readonly warmupSpec: ContextualNoveltySpec;
  private sensors = new Map<string, Map<string, MetricDetector>>();
  private readyCount = 0;
  private readonly estimated = new Set<string>();

  constructor(options: SensorNoveltyOptions = {}) {
    this.config = Object.freeze(resolveSensorNoveltyOptions(options));
    this.configuredSpec = specFor(this.config, "configured");
    this.warmupSpec = specFor(this.config, "warmup");
  }

  get sensorCount(): number {
    return this.sensors.size;
  }

  /** Sensor-metric detectors, all sensors together. */
  get detectorCount(): number {
    let count = 0;
    for (const metrics of this.sensors.values()) count += metrics.size;
    return count;
  }

  /** Sensor-metric detectors past their warm-up. */
  get readyDetectorCount(): number {
    return this.readyCount;
  }

  /** How far the sensor-metric furthest into its warm-up got: readings (of warmupRows) and hours of event time (of
   * 24, with day parts), for a "warming up" status. */
  get warmupProgress(): { rows: number; hours: number } {
    let rows = 0;
    let spanMs = 0;
    for (const metrics of this.sensors.values()) {
      for (const state of metrics.values()) {
        rows = Math.max(rows, state.rows);
        spanMs = Math.max(spanMs, state.lastMs - state.firstMs);
      }
    }
    return { rows: Math.min(rows, this.config.warmupRows), hours: Math.min(24, spanMs / 3_600_000) };
  }

  /** Metrics (range mode "configured") scored with a warm-up estimate because they have no configured range. */
  get estimatedRangeMetrics(): string[] {
    return [...this.estimated];
  }

  /**
   * Adds `event.detectors.contextualNovelty = { anomaly, score, ready, metrics }`: the score of each scored metric,
   * their highest, `ready` when every scored metric is past its warm-up, `anomaly` when a ready metric scores at
   * least ALERT_LEVEL. A configured metric missing from the event is skipped (its detector waits for its next
   * reading). Readings are not touched.
   */
  processEvent(event: SensorEvent): NoveltyResult {
    const readings = event.readings;
    let sensor = this.sensors.get(event.sensorId);
    if (sensor === undefined) {
      sensor = new Map();
      this.sensors.set(event.sensorId, sensor);
    }
    const result: NoveltyResult = { anomaly: false, score: 0, ready: true, metrics: {} };
    let scored = 0;
    const listed = this.config.metrics;
    if (listed.length === 0) {
      for (const metric in readings) if (this.scoreReading(sensor, metric, readings[metric], event.timestamp, result)) scored++;
    } else {
      for (let i = 0; i < listed.length; i++) {
        const metric = listed[i];
        if (!Object.prototype.hasOwnProperty.call(readings, metric)) continue; // this reading is missing: skipped
        if (this.scoreReading(sensor, metric, readings[metric], event.timestamp, result)) scored++;
      }
    }
    if (sensor.size === 0) this.sensors.delete(event.sensorId); // nothing scored: keep no empty entry
    if (scored === 0) result.ready = false;
    (event.detectors ??= {}).contextualNovelty = result;
    return result;
  }

  /** Forgets every sensor. */
  reset(): void {
    this.sensors = new Map();
    this.readyCount = 0;
    this.estimated.clear();
  }

  snapshot(): SensorNoveltySnapshot {
    const sensors: SensorNoveltySnapshot["sensors"] = [];
    for (const [sensorId, metrics] of this.sensors) {
      const entries: SensorNoveltySnapshot["sensors"][number][1] = [];
      for (const [metric, { rows, firstMs, lastMs, ready, settings, detector }] of metrics) {
        entries.push({ metric, rows, firstMs, lastMs, ready, settings, state: detector.snapshot() });
      }
      sensors.push([sensorId, entries]);
    }
    return { version: 1, sensors };
  }

  /**
   * Replaces every detector with those of a snapshot. A sensor-metric learnt with other settings (levels, day parts,
   * range, warm-up, cool-down) is left out, to warm up again: its patterns would be read on another grid. Throws,
   * changing nothing, when the snapshot is malformed.
   */
  restore(snapshot: SensorNoveltySnapshot): { restored: number; discarded: number } {
    if (snapshot === null || typeof snapshot !== "object" || snapshot.version !== 1 || !Array.isArray(snapshot.sensors)) {
      throw new TypeError("contextual-novelty state is not a version 1 snapshot");
    }
    const sensors = new Map<string, Map<string, MetricDetector>>();
    const estimated = new Set<string>();
    let readyCount = 0;
    let restored = 0;
    let discarded = 0;
    for (const entry of snapshot.sensors) {
      if (!Array.isArray(entry) || typeof entry[0] !== "string" || !Array.isArray(entry[1])) {
        throw new TypeError("contextual-novelty state has a malformed sensor entry");
      }
      const [sensorId, entries] = entry;
      const metrics = new Map<string, MetricDetector>();
      for (const metricEntry of entries) {
        const { metric, rows, firstMs, lastMs, ready, settings, state } = (metricEntry ?? {}) as Partial<SensorNoveltyMetricSnapshot>;
        if (typeof metric !== "string" || typeof rows !== "number" || !Number.isInteger(rows) || rows < 0 || typeof settings !== "string" ||
          typeof firstMs !== "number" || typeof lastMs !== "number" || typeof ready !== "boolean") {
          throw new TypeError(`contextual-novelty state has a malformed entry for sensor "${sensorId}"`);
        }
        if (!this.watches(metric)) continue; // no longer a scored metric
        const fresh = this.build(metric);
        if (fresh.settings !== settings) {
          discarded++;
          continue;
        }
        try {
          fresh.detector.restore(state);
        } catch (error) {
          throw new TypeError(`contextual-novelty state of "${sensorId}" / "${metric}": ${(error as Error).message}`);
        }
        Object.assign(fresh, { rows, firstMs, lastMs, ready });
        if (ready) readyCount++;
        if (fresh.estimatedRange) estimated.add(metric);
        metrics.set(metric, fresh);
        restored++;
      }
      if (metrics.size > 0) sensors.set(sensorId, metrics);
    }
    this.sensors = sensors;
    this.readyCount = readyCount;
    this.estimated.clear();
    for (const metric of estimated) this.estimated.add(metric);
    return { restored, discarded };
  }

  /** Scores one reading into `result`; false when it is not a finite number (nothing learnt). */
  private scoreReading(sensor: Map<string, MetricDetector>, metric: string, value: number, timestampMs: number, result: NoveltyResult): boolean {
    if (typeof value !== "number" || !Number.isFinite(value)) return false;
    const state = sensor.get(metric) ?? this.create(sensor, metric);
    const score = state.detector.score(timestampMs, value);
    if (state.rows++ === 0) state.firstMs = timestampMs;
    state.lastMs = timestampMs;
    const wasReady = state.ready;
    if (!wasReady && this.warmedUp(state)) {
      state.ready = true; // from the next reading on: this one still belonged to the warm-up
      this.readyCount++;
    }
    result.metrics[metric] = score;
    if (score > result.score) result.score = score;
    if (!wasReady) result.ready = false;
    else if (score >= ALERT_LEVEL) result.anomaly = true;
    return true;
  }

  /**
   * Warm-up over: warmupRows readings and, with day parts, a day of event time. Every part of the day is new on the
   * first day, so without that a 1 Hz stream would alert at each new hour of its first day (on NAB, 750 rows of
   * 5-minute data cover 2.6 days: the probationary period always held a whole day).
   */
  private warmedUp(state: MetricDetector): boolean {
    return state.rows >= this.config.warmupRows && (this.config.dayParts === 0 || state.lastMs - state.firstMs >= DAY_MS);
  }

  private watches(metric: string): boolean {
    return this.config.metrics.length === 0 || this.config.metrics.includes(metric);
  }

  private create(sensor: Map<string, MetricDetector>, metric: string): MetricDetector {
    const built = this.build(metric);
    if (built.estimatedRange) this.estimated.add(metric);
    sensor.set(metric, built);
    return built;
  }

  private build(metric: string): MetricDetector & { estimatedRange: boolean } {
    const range = this.config.ranges[metric];
    const estimatedRange = this.config.rangeMode === "configured" && range === undefined;
    const spec = this.config.rangeMode === "warmup" || estimatedRange ? this.warmupSpec : this.configuredSpec;
    const context: SeriesContext = { warmupRows: this.config.warmupRows };
    if (spec.range === "configured") context.range = range;
    const detector = createStreamDetector(spec, context);
    if (!isRestorable(detector)) throw new Error(`the "${spec.type}" detector cannot save its state`);
    // What the learnt state depends on (not the alert level, which only reads it); a change of any of these makes a
    // saved state meaningless or of another shape.
    const { alertNovelty: _alertNovelty, ...learnt } = spec;
    const settings = JSON.stringify({ spec: learnt, context });
    return { detector, rows: 0, firstMs: 0, lastMs: 0, ready: false, settings, estimatedRange };
  }
}
