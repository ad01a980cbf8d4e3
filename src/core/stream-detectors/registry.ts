// Named detector configurations, selectable as `--detector <name>`; a JSON config either names its own "type"
// (a whole configuration) or overrides options of the named one.
import { parseDetectorSpec, type DetectorSpec } from "./spec";

/** The best configuration that runs in a flow (causal, one row at a time); scores in the README's NAB table. */
const CONTEXTUAL: DetectorSpec = { type: "contextual-novelty", levels: [6, 8, 10, 12], maxOrder: 1, dayParts: 24, alertNovelty: 0.5, range: "configured", cooldownRows: "auto" };

export const NAMED_DETECTORS: Readonly<Record<string, DetectorSpec>> = Object.freeze({
  // The rolling-3-sigma node's defaults, no cool-down, no range.
  "rolling-3-sigma": { type: "rolling-sigma", windowSize: 100, k: 3 },
  // Tuned on NAB: longer window, std floored at 5% of the sensor's range, cool-down of a fifth of the warm-up.
  "rolling-3-sigma-range": { type: "rolling-sigma", windowSize: 200, k: 3, range: "configured", sigmaFloorOfRange: 0.05, cooldownRows: "auto" },
  // The isolation-forest node's defaults on a window of the last 8 values, learnt once at the end of the warm-up.
  "isolation-forest": { type: "isolation-forest", lags: 8 },
  // Refit every 500 rows on the latest warm-up-length of rows, with cool-down.
  "isolation-forest-retrain": { type: "isolation-forest", lags: 8, retrainEvery: 500, cooldownRows: "auto" },
  "sigma+forest": {
    type: "max",
    members: [
      { type: "rolling-sigma", windowSize: 200, k: 3, range: "configured", sigmaFloorOfRange: 0.05 },
      { type: "isolation-forest", lags: 8, alertScore: 0.65 },
    ],
    cooldownRows: "auto",
  },
  "contextual-novelty": CONTEXTUAL,
  // The same with the range estimated from the warm-up rows (padded 20%), for sensors without a configured range.
  "contextual-novelty-warmup": { ...CONTEXTUAL, range: "warmup", rangePadding: 0.2 },
  best: CONTEXTUAL,
});

export function detectorNames(): string[] {
  return Object.keys(NAMED_DETECTORS);
}

/**
 * The configuration for `--detector name` and/or `--config` JSON: a config with a "type" of its own is a whole
 * configuration; otherwise its options override the named configuration's. Errors name the detector or option.
 */
export function resolveDetectorSpec(name: string | undefined, config?: unknown): DetectorSpec {
  let base: DetectorSpec | undefined;
  if (name !== undefined) {
    base = NAMED_DETECTORS[name];
    if (base === undefined || !Object.prototype.hasOwnProperty.call(NAMED_DETECTORS, name)) {
      throw new RangeError(`unknown detector "${name}" (known: ${detectorNames().join(", ")})`);
    }
  }
  if (config === undefined) {
    if (base === undefined) throw new RangeError(`a detector is needed: a name (${detectorNames().join(", ")}) or a config with a "type"`);
    return parseDetectorSpec(base);
  }
  if (config === null || typeof config !== "object" || Array.isArray(config)) {
    throw new TypeError(`config must be a JSON object (got ${JSON.stringify(config)})`);
  }
  const own = (config as { type?: unknown }).type;
  if (base === undefined || (own !== undefined && own !== base.type)) return parseDetectorSpec(config);
  return parseDetectorSpec({ ...base, ...(config as object) });
}
