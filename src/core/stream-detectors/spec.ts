// Detector configurations as plain JSON (what `--config file.json` holds and what the named configurations are):
// defaults applied and every option checked once, with errors that name the option, then built into a detector.
import { ContextualNovelty, type ContextualNoveltyOptions } from "./contextual-novelty";
import { IsolationForestStream, type IsolationForestStreamOptions } from "./isolation-forest-stream";
import { RollingSigmaStream, type RollingSigmaStreamOptions } from "./rolling-sigma-stream";
import type { SeriesContext, StreamDetector } from "./types";
import { RANGE_MODES, type RangeMode } from "./value-range";
import { MaxOfDetectors, WithCooldown } from "./with-cooldown";

/** Rows of alert cool-down; "auto": a fifth of the warm-up (NAB's detectors rest for P/5 rows after an alert). */
export type CooldownRows = number | "auto";

export interface RollingSigmaSpec extends Partial<RollingSigmaStreamOptions> {
  type: "rolling-sigma";
  cooldownRows?: CooldownRows;
}
export interface IsolationForestSpec extends Partial<IsolationForestStreamOptions> {
  type: "isolation-forest";
  cooldownRows?: CooldownRows;
}
export interface ContextualNoveltySpec extends Partial<ContextualNoveltyOptions> {
  type: "contextual-novelty";
  cooldownRows?: CooldownRows;
}
export interface MaxSpec {
  type: "max";
  members: DetectorSpec[];
  cooldownRows?: CooldownRows;
}
export type DetectorSpec = RollingSigmaSpec | IsolationForestSpec | ContextualNoveltySpec | MaxSpec;
export const DETECTOR_TYPES = ["rolling-sigma", "isolation-forest", "contextual-novelty", "max"] as const;

export const ROLLING_SIGMA_STREAM_DEFAULTS: RollingSigmaStreamOptions = {
  windowSize: 100,
  k: 3,
  minSamples: 30,
  sigmaFloor: 1e-9,
  sigmaFloorOfRange: 0,
  range: "none",
  rangePadding: 0.2,
};

export const ISOLATION_FOREST_STREAM_DEFAULTS: IsolationForestStreamOptions = {
  lags: 8,
  features: "values",
  trainRows: "auto",
  retrainEvery: 0,
  nEstimators: 100,
  maxSamples: 256,
  seed: 42,
  alertScore: 0.5,
};

export const CONTEXTUAL_NOVELTY_DEFAULTS: ContextualNoveltyOptions = {
  levels: [6, 8, 10, 12],
  maxOrder: 1,
  dayParts: 24,
  alertNovelty: 0.5,
  range: "configured",
  rangePadding: 0.2,
};

type Check = (value: unknown) => string | null;

const integer = (min: number, max = Number.MAX_SAFE_INTEGER): Check => (value) =>
  Number.isInteger(value) && (value as number) >= min && (value as number) <= max ? null : `an integer from ${min} to ${max}`;
const positive: Check = (value) => (typeof value === "number" && Number.isFinite(value) && value > 0 ? null : "a positive number");
const fraction: Check = (value) => (typeof value === "number" && value >= 0 && value <= 1 ? null : "a number from 0 to 1");
const oneOf = (choices: readonly string[]): Check => (value) =>
  typeof value === "string" && choices.includes(value) ? null : `one of ${choices.map((choice) => `"${choice}"`).join(", ")}`;
const either = (first: Check, second: Check): Check => (value) => {
  const a = first(value);
  const b = second(value);
  return a === null || b === null ? null : `${a} or ${b}`;
};
const cooldown = either(integer(0), oneOf(["auto"]));

const CHECKS: Record<DetectorSpec["type"], Record<string, Check>> = {
  "rolling-sigma": {
    windowSize: integer(2, 100_000),
    k: positive,
    minSamples: integer(2, 100_000),
    sigmaFloor: positive,
    sigmaFloorOfRange: fraction,
    range: oneOf(RANGE_MODES),
    rangePadding: (value) => (typeof value === "number" && value >= 0 && value <= 10 ? null : "a number from 0 to 10"),
    cooldownRows: cooldown,
  },
  "isolation-forest": {
    lags: integer(1, 1000),
    features: oneOf(["values", "differences"]),
    trainRows: either(integer(2, 1_000_000), oneOf(["auto"])),
    retrainEvery: integer(0),
    nEstimators: integer(1, 10_000),
    maxSamples: integer(2, 4096),
    seed: integer(0, 0xffffffff),
    alertScore: (value) => (typeof value === "number" && value > 0 && value < 1 ? null : "a number between 0 and 1"),
    cooldownRows: cooldown,
  },
  "contextual-novelty": {
    levels: (value) =>
      integer(2, 1000)(value) === null || (Array.isArray(value) && value.length > 0 && value.every((entry) => integer(2, 1000)(entry) === null))
        ? null
        : "an integer from 2 to 1000 or a non-empty list of them",
    dayParts: integer(0, 1440),
    maxOrder: integer(1, 100),
    alertNovelty: (value) => (typeof value === "number" && value > 0 && value <= 1 ? null : "a number above 0, at most 1"),
    range: oneOf(RANGE_MODES),
    rangePadding: (value) => (typeof value === "number" && value >= 0 && value <= 10 ? null : "a number from 0 to 10"),
    cooldownRows: cooldown,
  },
  max: { members: () => null, cooldownRows: cooldown },
};

function describe(value: unknown): string {
  return value === undefined ? "nothing" : JSON.stringify(value);
}

/**
 * Checks a configuration (parsed JSON) and returns it as a spec; `path` prefixes option names in errors
 * (`config "members[1].k" must be a positive number (got -1)`).
 */
export function parseDetectorSpec(value: unknown, path = ""): DetectorSpec {
  const where = (option: string) => `config "${path}${option}"`;
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new TypeError(`${path === "" ? "config" : `config "${path.replace(/\.$/, "")}"`} must be a JSON object with a "type" (got ${describe(value)})`);
  }
  const spec = value as Record<string, unknown>;
  const type = spec.type;
  if (typeof type !== "string" || !(DETECTOR_TYPES as readonly string[]).includes(type)) {
    throw new RangeError(`${where("type")} must be one of ${DETECTOR_TYPES.map((name) => `"${name}"`).join(", ")} (got ${describe(type)})`);
  }
  const checks = CHECKS[type as DetectorSpec["type"]];
  for (const [option, optionValue] of Object.entries(spec)) {
    if (option === "type") continue;
    const check = checks[option];
    if (check === undefined) {
      throw new RangeError(`${where(option)} is not an option of a "${type}" detector (options: ${Object.keys(checks).join(", ")})`);
    }
    const expected = check(optionValue);
    if (expected !== null) throw new RangeError(`${where(option)} must be ${expected} (got ${describe(optionValue)})`);
  }
  if (type === "max") {
    if (!Array.isArray(spec.members) || spec.members.length === 0) {
      throw new RangeError(`${where("members")} must be a non-empty list of detector configurations (got ${describe(spec.members)})`);
    }
    return { ...(spec as unknown as MaxSpec), members: spec.members.map((member, index) => parseDetectorSpec(member, `${path}members[${index}].`)) };
  }
  if (type === "rolling-sigma") {
    const windowSize = (spec.windowSize as number | undefined) ?? ROLLING_SIGMA_STREAM_DEFAULTS.windowSize;
    if (spec.minSamples !== undefined && (spec.minSamples as number) > windowSize) {
      throw new RangeError(`${where("minSamples")} must be at most windowSize (${windowSize}) (got ${describe(spec.minSamples)})`);
    }
  }
  return spec as unknown as DetectorSpec;
}

function cooldownRowsFor(rows: CooldownRows | undefined, context: SeriesContext): number {
  if (rows === undefined) return 0;
  return rows === "auto" ? Math.floor(context.warmupRows / 5) : rows;
}

/** A fresh detector for one series. Throws when the spec needs something the context lacks (a configured range). */
export function createStreamDetector(spec: DetectorSpec, context: SeriesContext): StreamDetector {
  let detector: StreamDetector;
  switch (spec.type) {
    case "rolling-sigma":
      detector = new RollingSigmaStream({ ...ROLLING_SIGMA_STREAM_DEFAULTS, ...withoutType(spec) }, context);
      break;
    case "isolation-forest":
      detector = new IsolationForestStream({ ...ISOLATION_FOREST_STREAM_DEFAULTS, ...withoutType(spec) }, context);
      break;
    case "contextual-novelty":
      detector = new ContextualNovelty({ ...CONTEXTUAL_NOVELTY_DEFAULTS, ...withoutType(spec) }, context);
      break;
    case "max":
      detector = new MaxOfDetectors(spec.members.map((member) => createStreamDetector(member, context)));
      break;
  }
  const rows = cooldownRowsFor(spec.cooldownRows, context);
  return rows > 0 ? new WithCooldown(detector, rows) : detector;
}

function withoutType<T extends { type: string; cooldownRows?: CooldownRows }>(spec: T): Omit<T, "type" | "cooldownRows"> {
  const { type: _type, cooldownRows: _cooldown, ...options } = spec;
  return options;
}

/** Whether a spec (or one of its members) scales by a range, and in which modes. */
export function rangeModesOf(spec: DetectorSpec): RangeMode[] {
  if (spec.type === "max") return [...new Set(spec.members.flatMap(rangeModesOf))];
  if (spec.type === "rolling-sigma") return [spec.range ?? ROLLING_SIGMA_STREAM_DEFAULTS.range];
  if (spec.type === "contextual-novelty") return [spec.range ?? CONTEXTUAL_NOVELTY_DEFAULTS.range];
  return ["none"];
}
