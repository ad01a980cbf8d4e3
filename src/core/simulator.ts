// Seeded simulation of sensor stations with injected, labelled faults: the test bench for the detectors.
// Everything is a function of (seed, startTime, options), so a run can be reproduced event for event.
import type { GroundTruth, SensorEvent } from "./event";
import { BetaSampler, Random } from "./random";

export type PresetName = "vibration" | "environment";
export type FaultKind = "spike" | "level-shift" | "drift" | "stuck" | "noise-burst";
export const FAULT_KINDS: readonly FaultKind[] = ["spike", "level-shift", "drift", "stuck", "noise-burst"];

export type MetricDistribution =
  | { type: "normal"; mean: number; sd: number }
  /** value = Beta(alpha, beta) · scale + offset */
  | { type: "beta"; alpha: number; beta: number; scale: number; offset: number };

export interface MetricDefinition {
  name: string;
  unit: string;
  description: string;
  distribution: MetricDistribution;
}

export interface PresetDefinition {
  name: PresetName;
  description: string;
  metrics: readonly MetricDefinition[];
  /** Metrics produced when the user names none. */
  defaultMetrics: readonly string[];
}

export const PRESETS: Readonly<Record<PresetName, PresetDefinition>> = {
  vibration: {
    name: "vibration",
    description:
      "Rotating machine in good condition: RMS vibration velocity around 2.5 mm/s (ISO 10816-3 zone A/B for a medium machine), optionally the bearing temperature.",
    metrics: [
      {
        name: "vibration",
        unit: "mm/s",
        description: "RMS vibration velocity, Gaussian",
        distribution: { type: "normal", mean: 2.5, sd: 0.25 },
      },
      {
        name: "temperature",
        unit: "°C",
        description: "bearing temperature, Gaussian",
        distribution: { type: "normal", mean: 45, sd: 1.5 },
      },
    ],
    defaultMetrics: ["vibration"],
  },
  environment: {
    name: "environment",
    description: "Indoor environment station: temperature, relative humidity and sound level drawn from Beta distributions.",
    metrics: [
      {
        name: "temperature",
        unit: "°C",
        description: "Beta(53.822, 46.706)·35 + 10",
        distribution: { type: "beta", alpha: 53.822, beta: 46.706, scale: 35, offset: 10 },
      },
      {
        name: "humidity",
        unit: "%RH",
        description: "Beta(1.987, 7.945)·88",
        distribution: { type: "beta", alpha: 1.987, beta: 7.945, scale: 88, offset: 0 },
      },
      {
        name: "sound",
        unit: "dB",
        description: "Beta(264.759, 261.590)·130 − 11",
        distribution: { type: "beta", alpha: 264.759, beta: 261.59, scale: 130, offset: -11 },
      },
    ],
    defaultMetrics: ["temperature", "humidity", "sound"],
  },
};

/** Mean and standard deviation of a metric without faults (from the distribution's formulas, not sampled). */
export function cleanStatistics(distribution: MetricDistribution): { mean: number; sd: number } {
  if (distribution.type === "normal") return { mean: distribution.mean, sd: distribution.sd };
  const { alpha, beta, scale, offset } = distribution;
  const sum = alpha + beta;
  const variance = (alpha * beta) / (sum * sum * (sum + 1));
  return { mean: (alpha / sum) * scale + offset, sd: Math.sqrt(variance) * Math.abs(scale) };
}

export interface MetricInfo {
  name: string;
  unit: string;
  description: string;
  /** Clean (fault-free) mean and standard deviation. */
  mean: number;
  sd: number;
}

/** Probability per event that a fault of that kind starts on the station of the event (when none is running). */
export interface FaultRates {
  spike?: number;
  levelShift?: number;
  drift?: number;
  stuck?: number;
  noiseBurst?: number;
}

export interface SimulatorOptions {
  preset?: PresetName;
  /** Subset of the preset's metrics, as an array or a comma list; empty means the preset's defaults. */
  metrics?: readonly string[] | string;
  /** Number of stations (default 5). */
  stations?: number;
  /** Events per second per station, on the simulated clock (default 10). */
  ratePerStation?: number;
  seed?: number;
  /** Timestamp (ms since epoch) of the first event; defaults to now. Fix it for a reproducible run. */
  startTime?: number;
  /** Sensor ids are `${sensorPrefix}-${n}`, n zero-padded to at least two digits (station-01). */
  sensorPrefix?: string;
  faults?: FaultRates;
  /** A spike lies this many clean standard deviations beyond the clean reading's own deviation (default 8). */
  spikeSigma?: number;
  /** Offset of a level shift in clean standard deviations (default 4). */
  levelShiftSigma?: number;
  /** Offset a drift ramps up to, in clean standard deviations (default 6). */
  driftSigma?: number;
  /** Standard deviation multiplier during a noise burst (default 5). */
  noiseFactor?: number;
  /** Length of the faults that last (all but spikes), in events of the station, drawn uniformly (default 20..100). */
  faultDuration?: { min: number; max: number };
}

export const SIMULATOR_LIMITS = {
  maxStations: 10_000,
  maxRatePerStation: 100_000,
  maxFaultDuration: 1_000_000,
} as const;

export const SIMULATOR_DEFAULTS = {
  preset: "vibration" as PresetName,
  stations: 5,
  ratePerStation: 10,
  seed: 42,
  sensorPrefix: "station",
  spikeSigma: 8,
  levelShiftSigma: 4,
  driftSigma: 6,
  noiseFactor: 5,
  faultDuration: { min: 20, max: 100 },
};

/** An option the simulator cannot work with; `option` names it as the user wrote it. */
export class SimulatorConfigError extends Error {
  constructor(readonly option: string, message: string) {
    super(message);
    this.name = "SimulatorConfigError";
  }
}

function fail(option: string, message: string): never {
  throw new SimulatorConfigError(option, message);
}

function checkNumber(option: string, value: unknown, min: number, max: number, integer: boolean): number {
  const ok = typeof value === "number" && Number.isFinite(value) && value >= min && value <= max && (!integer || Number.isInteger(value));
  if (!ok) {
    const kind = integer ? "an integer" : "a number";
    fail(option, `"${option}" must be ${kind} from ${min} to ${max} (got ${JSON.stringify(value) ?? String(value)})`);
  }
  return value as number;
}

/** The metrics of `preset` named by `metrics` (array or comma list), in the order given; throws naming a bad name. */
export function resolveMetrics(preset: PresetName, metrics?: readonly string[] | string): MetricDefinition[] {
  const definition = PRESETS[preset];
  if (!definition) fail("preset", `"preset" must be one of ${Object.keys(PRESETS).join(", ")} (got ${JSON.stringify(preset)})`);
  const names = (typeof metrics === "string" ? metrics.split(",") : metrics ?? [])
    .map((name) => name.trim())
    .filter((name) => name.length > 0);
  const wanted = names.length > 0 ? names : definition.defaultMetrics;
  const chosen: MetricDefinition[] = [];
  for (const name of wanted) {
    const metric = definition.metrics.find((candidate) => candidate.name === name);
    if (!metric) {
      fail("metrics", `metric "${name}" is not in the "${preset}" preset (choose from ${definition.metrics.map((m) => m.name).join(", ")})`);
    }
    if (chosen.includes(metric)) fail("metrics", `metric "${name}" is listed twice`);
    chosen.push(metric);
  }
  return chosen;
}

// Fault kinds as small integers for the per-station state arrays.
const NO_FAULT = -1;
const SPIKE = 0;
const LEVEL_SHIFT = 1;
const DRIFT = 2;
const STUCK = 3;
const NOISE_BURST = 4;

/**
 * Generates events for `stations` stations, round-robin: event k belongs to station k mod stations and carries
 * sequence number seq = floor(k / stations), so all stations share the timestamps
 * startTime + round(seq · 1000 / ratePerStation) and the stream is also in time order.
 *
 * Fault model (one fault at a time per station, on one metric chosen at random; every event inside a fault is
 * labelled `{ anomaly: true, kind, metric }`, the others `{ anomaly: false }`):
 * - spike: one reading at cleanMean ± (spikeSigma + |z|)·sd, where z is the clean reading's own z-score, so a
 *   spike is always at least spikeSigma·sd from the clean mean (it may leave the physical range: a glitch);
 * - level-shift: ± levelShiftSigma·sd added for the duration;
 * - drift: an offset ramping linearly to ± driftSigma·sd over the duration;
 * - stuck: the last reading before the fault repeated for the duration;
 * - noise-burst: deviations from the clean mean multiplied by noiseFactor for the duration.
 */
export class StationSimulator {
  readonly preset: PresetName;
  readonly metrics: readonly MetricInfo[];
  readonly sensorIds: readonly string[];
  readonly stations: number;
  readonly ratePerStation: number;
  readonly seed: number;
  readonly startTime: number;

  private random: Random;
  private index = 0;
  private station = 0;
  private sequence = 0;
  private readonly millisecondsPerEvent: number;

  // Per metric, flattened for the hot loop.
  private readonly metricNames: string[];
  private readonly metricIsBeta: Uint8Array;
  private readonly metricMean: Float64Array;
  private readonly metricSd: Float64Array;
  private readonly normalMean: Float64Array;
  private readonly normalSd: Float64Array;
  private readonly betaScale: Float64Array;
  private readonly betaOffset: Float64Array;
  private readonly betaSamplers: (BetaSampler | null)[];

  // Fault configuration: cumulative start probabilities per kind, in FAULT_KINDS order.
  private readonly faultThresholds: Float64Array;
  private readonly totalFaultRate: number;
  private readonly spikeSigma: number;
  private readonly levelShiftSigma: number;
  private readonly driftSigma: number;
  private readonly noiseFactor: number;
  private readonly durationMin: number;
  private readonly durationSpan: number;

  // Per station fault state and last readings (station · metrics + metric).
  private readonly faultKind: Int8Array;
  private readonly faultMetric: Int32Array;
  private readonly faultLength: Int32Array;
  private readonly faultRemaining: Int32Array;
  private readonly faultSign: Float64Array;
  private readonly stuckValue: Float64Array;
  private readonly lastValue: Float64Array;

  constructor(options: SimulatorOptions = {}) {
    // Apply defaults
    const preset = options.preset ?? SIMULATOR_DEFAULTS.preset;
    const stations = options.stations ?? SIMULATOR_DEFAULTS.stations;
    const ratePerStation = options.ratePerStation ?? SIMULATOR_DEFAULTS.ratePerStation;
    const seed = options.seed ?? SIMULATOR_DEFAULTS.seed;
    const startTime = options.startTime ?? Date.now();
    const sensorPrefix = options.sensorPrefix ?? SIMULATOR_DEFAULTS.sensorPrefix;
    const faults = options.faults ?? {};
    const duration = options.faultDuration ?? SIMULATOR_DEFAULTS.faultDuration;

    // Validate arguments
    const definitions = resolveMetrics(preset, options.metrics);
    this.stations = checkNumber("stations", stations, 1, SIMULATOR_LIMITS.maxStations, true);
    this.ratePerStation = checkNumber("ratePerStation", ratePerStation, 0.001, SIMULATOR_LIMITS.maxRatePerStation, false);
    this.seed = checkNumber("seed", seed, -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, false);
    this.startTime = checkNumber("startTime", startTime, 0, 8.64e15, false);
    if (typeof sensorPrefix !== "string" || sensorPrefix.trim() === "" || sensorPrefix.length > 200) {
      fail("sensorPrefix", `"sensorPrefix" must be a non-empty text of at most 200 characters (got ${JSON.stringify(sensorPrefix)})`);
    }
    this.spikeSigma = checkNumber("spikeSigma", options.spikeSigma ?? SIMULATOR_DEFAULTS.spikeSigma, 0, 1000, false);
    this.levelShiftSigma = checkNumber("levelShiftSigma", options.levelShiftSigma ?? SIMULATOR_DEFAULTS.levelShiftSigma, 0, 1000, false);
    this.driftSigma = checkNumber("driftSigma", options.driftSigma ?? SIMULATOR_DEFAULTS.driftSigma, 0, 1000, false);
    this.noiseFactor = checkNumber("noiseFactor", options.noiseFactor ?? SIMULATOR_DEFAULTS.noiseFactor, 0, 1000, false);
    this.durationMin = checkNumber("faultDuration.min", duration.min, 1, SIMULATOR_LIMITS.maxFaultDuration, true);
    const durationMax = checkNumber("faultDuration.max", duration.max, 1, SIMULATOR_LIMITS.maxFaultDuration, true);
    if (durationMax < this.durationMin) fail("faultDuration.max", `"faultDuration.max" (${durationMax}) must not be below "faultDuration.min" (${this.durationMin})`);
    this.durationSpan = durationMax - this.durationMin + 1;
    const rates = [faults.spike, faults.levelShift, faults.drift, faults.stuck, faults.noiseBurst];
    const rateNames = ["faults.spike", "faults.levelShift", "faults.drift", "faults.stuck", "faults.noiseBurst"];
    this.faultThresholds = new Float64Array(FAULT_KINDS.length);
    let cumulative = 0;
    for (let kind = 0; kind < rates.length; kind++) {
      cumulative += checkNumber(rateNames[kind], rates[kind] ?? 0, 0, 1, false);
      this.faultThresholds[kind] = cumulative;
    }
    if (cumulative > 1) fail("faults", `fault rates add up to ${cumulative}; their sum is a probability per event and must not exceed 1`);
    this.totalFaultRate = cumulative;

    this.preset = preset;
    this.millisecondsPerEvent = 1000 / this.ratePerStation;
    this.random = new Random(seed);

    const digits = Math.max(2, String(this.stations).length);
    this.sensorIds = Array.from({ length: this.stations }, (_, n) => `${sensorPrefix}-${String(n + 1).padStart(digits, "0")}`);

    const count = definitions.length;
    this.metrics = definitions.map((definition) => ({
      name: definition.name,
      unit: definition.unit,
      description: definition.description,
      ...cleanStatistics(definition.distribution),
    }));
    this.metricNames = definitions.map((definition) => definition.name);
    this.metricIsBeta = new Uint8Array(count);
    this.metricMean = new Float64Array(count);
    this.metricSd = new Float64Array(count);
    this.normalMean = new Float64Array(count);
    this.normalSd = new Float64Array(count);
    this.betaScale = new Float64Array(count);
    this.betaOffset = new Float64Array(count);
    this.betaSamplers = [];
    definitions.forEach((definition, metric) => {
      const distribution = definition.distribution;
      this.metricMean[metric] = this.metrics[metric].mean;
      this.metricSd[metric] = this.metrics[metric].sd;
      if (distribution.type === "beta") {
        this.metricIsBeta[metric] = 1;
        this.betaScale[metric] = distribution.scale;
        this.betaOffset[metric] = distribution.offset;
        this.betaSamplers.push(new BetaSampler(distribution.alpha, distribution.beta));
      } else {
        this.normalMean[metric] = distribution.mean;
        this.normalSd[metric] = distribution.sd;
        this.betaSamplers.push(null);
      }
    });

    this.faultKind = new Int8Array(this.stations).fill(NO_FAULT);
    this.faultMetric = new Int32Array(this.stations);
    this.faultLength = new Int32Array(this.stations);
    this.faultRemaining = new Int32Array(this.stations);
    this.faultSign = new Float64Array(this.stations);
    this.stuckValue = new Float64Array(this.stations);
    this.lastValue = new Float64Array(this.stations * count);
    this.resetStationState();
  }

  /** Events generated since construction or the last reset. */
  get generated(): number {
    return this.index;
  }

  /** Timestamp of the next event. */
  get nextTimestamp(): number {
    return this.timestampOf(this.sequence);
  }

  /** Timestamp of sequence number `sequence` (shared by all stations). */
  timestampOf(sequence: number): number {
    return this.startTime + Math.round(sequence * this.millisecondsPerEvent);
  }

  /** How many events (over all stations, counted from the start) have a timestamp at or before `time`. */
  countUntil(time: number): number {
    if (time < this.startTime) return 0;
    // Estimate, then correct for the rounding of timestamps to whole milliseconds.
    let sequences = Math.floor((time - this.startTime) / this.millisecondsPerEvent) + 1;
    while (sequences > 0 && this.timestampOf(sequences - 1) > time) sequences--;
    while (this.timestampOf(sequences) <= time) sequences++;
    return sequences * this.stations;
  }

  /** Starts again from the seed: the same events as after construction. */
  reset(): void {
    this.random = new Random(this.seed);
    this.index = 0;
    this.station = 0;
    this.sequence = 0;
    this.resetStationState();
  }

  /** Appends the next `count` events to `out` (a new array by default) and returns it. */
  generate(count: number, out: SensorEvent[] = []): SensorEvent[] {
    for (let i = 0; i < count; i++) out.push(this.next());
    return out;
  }

  /** The next event. */
  next(): SensorEvent {
    const station = this.station;
    const sequence = this.sequence;
    const random = this.random;
    const metricCount = this.metricNames.length;
    const base = station * metricCount;

    let kind = this.faultKind[station];
    if (kind === NO_FAULT && this.totalFaultRate > 0) {
      const draw = random.uniform();
      if (draw < this.totalFaultRate) kind = this.startFault(station, draw);
    }

    const readings: Record<string, number> = {};
    for (let metric = 0; metric < metricCount; metric++) {
      const sampler = this.betaSamplers[metric];
      let value =
        sampler === null
          ? this.normalMean[metric] + this.normalSd[metric] * random.standardNormal()
          : sampler.sample(random) * this.betaScale[metric] + this.betaOffset[metric];
      if (kind !== NO_FAULT && metric === this.faultMetric[station]) value = this.applyFault(station, kind, metric, value);
      this.lastValue[base + metric] = value;
      readings[this.metricNames[metric]] = value;
    }

    let label: GroundTruth;
    if (kind === NO_FAULT) {
      label = { anomaly: false };
    } else {
      label = { anomaly: true, kind: FAULT_KINDS[kind], metric: this.metricNames[this.faultMetric[station]] };
      if (--this.faultRemaining[station] === 0) this.faultKind[station] = NO_FAULT;
    }

    const sensorId = this.sensorIds[station];
    const timestamp = this.startTime + Math.round(sequence * this.millisecondsPerEvent);
    const event: SensorEvent = { eventId: `${sensorId}:${timestamp}:${sequence}`, sensorId, timestamp, readings, label };

    this.index++;
    if (++this.station === this.stations) {
      this.station = 0;
      this.sequence++;
    }
    return event;
  }

  private startFault(station: number, draw: number): number {
    const thresholds = this.faultThresholds;
    let kind = 0;
    while (draw >= thresholds[kind]) kind++;
    const random = this.random;
    const metric = random.integer(this.metricNames.length);
    const length = kind === SPIKE ? 1 : this.durationMin + random.integer(this.durationSpan);
    this.faultKind[station] = kind;
    this.faultMetric[station] = metric;
    this.faultLength[station] = length;
    this.faultRemaining[station] = length;
    this.faultSign[station] = random.sign();
    this.stuckValue[station] = this.lastValue[station * this.metricNames.length + metric];
    return kind;
  }

  private applyFault(station: number, kind: number, metric: number, clean: number): number {
    const mean = this.metricMean[metric];
    const sd = this.metricSd[metric];
    const sign = this.faultSign[station];
    switch (kind) {
      case SPIKE:
        return mean + sign * (this.spikeSigma * sd + Math.abs(clean - mean));
      case LEVEL_SHIFT:
        return clean + sign * this.levelShiftSigma * sd;
      case DRIFT: {
        const length = this.faultLength[station];
        const progress = (length - this.faultRemaining[station] + 1) / length;
        return clean + sign * this.driftSigma * sd * progress;
      }
      case STUCK:
        return this.stuckValue[station];
      case NOISE_BURST:
        return mean + (clean - mean) * this.noiseFactor;
      default:
        return clean;
    }
  }

  private resetStationState(): void {
    this.faultKind.fill(NO_FAULT);
    this.faultRemaining.fill(0);
    // A station stuck before its first reading repeats the clean mean.
    for (let station = 0; station < this.stations; station++) {
      for (let metric = 0; metric < this.metricNames.length; metric++) {
        this.lastValue[station * this.metricNames.length + metric] = this.metricMean[metric];
      }
    }
  }
}
