// Rolling k-sigma as a stream detector: the package's RollingSigma judges each value against the mean and standard
// deviation of the previous `windowSize` values; the score z / (z + k) reaches the alert level 0.5 at |z| = k.
import { RollingSigma } from "../rolling-sigma";
import { type SeriesContext, type StreamDetector } from "./types";
import { RangeEstimate, type RangeMode } from "./value-range";

export interface RollingSigmaStreamOptions {
  windowSize: number;
  k: number;
  minSamples: number;
  /** Smallest standard deviation, in the value's units. */
  sigmaFloor: number;
  /**
   * Smallest standard deviation as a fraction of the value range (0: none). On a flat or slowly moving signal the
   * window's std collapses and any flicker becomes a huge z; a floor tied to the sensor's range keeps z in
   * proportion to what matters for that sensor.
   */
  sigmaFloorOfRange: number;
  range: RangeMode;
  /** Warm-up range estimate widened by this fraction of its width on each side. */
  rangePadding: number;
}

export class RollingSigmaStream implements StreamDetector {
  private readonly sigma: RollingSigma;
  private readonly range: RangeEstimate;

  constructor(private readonly options: RollingSigmaStreamOptions, context: SeriesContext) {
    this.sigma = new RollingSigma({
      windowSize: options.windowSize,
      k: options.k,
      minSamples: Math.min(options.minSamples, options.windowSize),
      sigmaFloor: options.sigmaFloor,
    });
    this.range = new RangeEstimate(options.range, context, options.rangePadding);
  }

  score(_timestampMs: number, value: number): number {
    this.range.observe(value);
    const result = this.sigma.check("series", "value", value);
    if (result.mean === null || result.std === null) return 0;
    const width = this.range.width;
    const floor = width === undefined ? this.options.sigmaFloor : Math.max(this.options.sigmaFloor, this.options.sigmaFloorOfRange * width);
    const z = Math.abs(value - result.mean) / Math.max(result.std, floor);
    // z / (z + k): ALERT_LEVEL (0.5) exactly at z = k, towards 1 as z grows.
    return z / (z + this.options.k);
  }
}
