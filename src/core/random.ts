// Seeded pseudo-random numbers for the simulator: the same seed gives the same stream on every machine and
// Node version, which Math.random() cannot promise. sfc32 (Chris Doty-Humphrey's "small fast chaotic" generator,
// 128-bit state, passes PractRand) seeded through splitmix32, plus the distributions the presets need.

/** One step of splitmix32: spreads a seed over 32 bits so neighbouring seeds give unrelated streams. */
function splitmix32(state: number): number {
  let z = (state + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

const TWO_POW_32 = 4294967296;

/** Serialisable generator state, e.g. to resume a stream. */
export interface RandomState {
  words: [number, number, number, number];
  spareNormal: number | null;
}

export class Random {
  private a = 0;
  private b = 0;
  private c = 0;
  private d = 0;
  // Marsaglia's polar method yields normals in pairs; the second is kept for the next call.
  private spare = 0;
  private hasSpare = false;

  /** Any finite number is a seed; integers up to 2^53 and fractional seeds are folded in fully. */
  constructor(seed: number) {
    if (typeof seed !== "number" || !Number.isFinite(seed)) {
      throw new RangeError(`random seed must be a finite number (got ${String(seed)})`);
    }
    const low = seed >>> 0;
    const high = Math.floor(seed / TWO_POW_32) >>> 0;
    const fraction = Math.floor((seed - Math.floor(seed)) * TWO_POW_32) >>> 0;
    let state = low ^ Math.imul(high, 0x27d4eb2d) ^ Math.imul(fraction, 0x165667b1);
    this.a = state = splitmix32(state);
    this.b = state = splitmix32(state);
    this.c = state = splitmix32(state);
    this.d = splitmix32(state) | 1;
    // The first outputs of sfc32 still correlate with the seed; discard them (the reference does the same).
    for (let i = 0; i < 15; i++) this.nextUint32();
  }

  /** Uniform 32-bit unsigned integer. */
  nextUint32(): number {
    this.d = (this.d + 1) | 0;
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (((this.c << 21) | (this.c >>> 11)) + t) | 0;
    return t >>> 0;
  }

  /** Uniform on [0, 1) with 32 bits of resolution (enough for simulation, and twice as fast as 53). */
  uniform(): number {
    return this.nextUint32() / TWO_POW_32;
  }

  /** Uniform on [low, high). */
  between(low: number, high: number): number {
    return low + (high - low) * this.uniform();
  }

  /** Integer on [0, n). */
  integer(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** +1 or -1 with equal probability. */
  sign(): number {
    return this.nextUint32() & 1 ? 1 : -1;
  }

  /** Standard normal N(0, 1), Marsaglia polar method with the second value cached. */
  standardNormal(): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return this.spare;
    }
    let u: number;
    let v: number;
    let s: number;
    do {
      u = this.uniform() * 2 - 1;
      v = this.uniform() * 2 - 1;
      s = u * u + v * v;
    } while (s >= 1 || s === 0);
    const factor = Math.sqrt((-2 * Math.log(s)) / s);
    this.spare = v * factor;
    this.hasSpare = true;
    return u * factor;
  }

  normal(mean: number, sd: number): number {
    return mean + sd * this.standardNormal();
  }

  /** Gamma(shape, 1). Marsaglia & Tsang (2000); shapes below 1 use the boost Gamma(a+1)·U^(1/a). */
  gamma(shape: number): number {
    if (!(shape > 0)) throw new RangeError(`gamma shape must be > 0 (got ${shape})`);
    if (shape < 1) {
      const boosted = this.gammaWith(shape + 2 / 3, 1 / Math.sqrt(9 * (shape + 2 / 3)));
      return boosted * Math.pow(this.uniform() || Number.MIN_VALUE, 1 / shape);
    }
    const d = shape - 1 / 3;
    return this.gammaWith(d, 1 / Math.sqrt(9 * d));
  }

  /**
   * Marsaglia–Tsang core with its constants precomputed (d = shape − 1/3, c = 1/√(9d), shape ≥ 1), so a hot loop
   * drawing the same distribution again and again does not recompute a square root per draw.
   */
  gammaWith(d: number, c: number): number {
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.standardNormal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = this.uniform();
      const x2 = x * x;
      // Squeeze test first: it accepts about 98% of draws without a logarithm.
      if (u < 1 - 0.0331 * x2 * x2) return d * v;
      if (u > 0 && Math.log(u) < 0.5 * x2 + d * (1 - v + Math.log(v))) return d * v;
    }
  }

  /** Beta(alpha, beta) as X/(X+Y) with X ~ Gamma(alpha), Y ~ Gamma(beta). */
  beta(alpha: number, beta: number): number {
    const x = this.gamma(alpha);
    const y = this.gamma(beta);
    return x / (x + y);
  }

  getState(): RandomState {
    return { words: [this.a, this.b, this.c, this.d], spareNormal: this.hasSpare ? this.spare : null };
  }

  setState(state: RandomState): void {
    [this.a, this.b, this.c, this.d] = state.words.map((word) => word | 0) as [number, number, number, number];
    this.hasSpare = state.spareNormal !== null;
    this.spare = state.spareNormal ?? 0;
  }
}

/** Precomputed sampler for Beta(alpha, beta), for drawing the same distribution in a hot loop. */
export class BetaSampler {
  private readonly alphaD: number;
  private readonly alphaC: number;
  private readonly betaD: number;
  private readonly betaC: number;
  private readonly alphaBoost: number;
  private readonly betaBoost: number;

  constructor(readonly alpha: number, readonly beta: number) {
    if (!(alpha > 0) || !(beta > 0)) throw new RangeError(`beta parameters must be > 0 (got ${alpha}, ${beta})`);
    // Shapes below 1 are drawn as Gamma(shape + 1)·U^(1/shape).
    const alphaShape = alpha < 1 ? alpha + 1 : alpha;
    const betaShape = beta < 1 ? beta + 1 : beta;
    this.alphaD = alphaShape - 1 / 3;
    this.alphaC = 1 / Math.sqrt(9 * this.alphaD);
    this.betaD = betaShape - 1 / 3;
    this.betaC = 1 / Math.sqrt(9 * this.betaD);
    this.alphaBoost = alpha < 1 ? 1 / alpha : 0;
    this.betaBoost = beta < 1 ? 1 / beta : 0;
  }

  sample(random: Random): number {
    let x = random.gammaWith(this.alphaD, this.alphaC);
    if (this.alphaBoost) x *= Math.pow(random.uniform() || Number.MIN_VALUE, this.alphaBoost);
    let y = random.gammaWith(this.betaD, this.betaC);
    if (this.betaBoost) y *= Math.pow(random.uniform() || Number.MIN_VALUE, this.betaBoost);
    return x / (x + y);
  }

  get mean(): number {
    return this.alpha / (this.alpha + this.beta);
  }

  get variance(): number {
    const sum = this.alpha + this.beta;
    return (this.alpha * this.beta) / (sum * sum * (sum + 1));
  }
}
