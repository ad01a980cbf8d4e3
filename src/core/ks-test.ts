// Two-sample Kolmogorov–Smirnov test: the statistic D (largest gap between the two empirical CDFs, ties handled)
// and its asymptotic p-value from the Kolmogorov distribution with Stephens' effective-n correction.
//
// Why asymptotic and not exact: the drift check compares hundreds to thousands of readings per side, where the exact
// distribution costs O(n1·n2) and the corrected asymptotic one is within about 2% of it (n1 = 40, n2 = 30 already
// gives 0.854 against scipy's exact 0.842). Why the correction: the plain limit sqrt(ne)·D is conservative for small
// samples; (sqrt(ne) + 0.12 + 0.11 / sqrt(ne))·D (Stephens 1970, as in Numerical Recipes' kstwo) fixes most of that.

export interface KsResult {
  /** sup |F1(x) - F2(x)|, in [0, 1]. */
  statistic: number;
  /** Probability of a D at least this large when both samples come from one continuous distribution. */
  pValue: number;
  /** Sizes of the two samples. */
  n1: number;
  n2: number;
}

/**
 * Q_KS(λ) = P(K > λ) for the Kolmogorov distribution K = sup |Brownian bridge|. Two series, each used where it
 * converges in a few terms: 2 Σ (-1)^(k-1) exp(-2k²λ²) for large λ, and the Jacobi theta form
 * 1 - sqrt(2π)/λ Σ exp(-(2k-1)²π²/(8λ²)) for small λ, where the first one would need many terms and cancel badly.
 */
export function kolmogorovSurvival(lambda: number): number {
  if (Number.isNaN(lambda)) return NaN;
  if (lambda <= 0) return 1;
  if (lambda < 1.18) {
    // Below ~0.2 the sum underflows towards 0 and Q is 1 to double precision.
    const factor = -(Math.PI * Math.PI) / (8 * lambda * lambda);
    let sum = 0;
    for (let k = 1; k <= 20; k++) {
      const odd = 2 * k - 1;
      const term = Math.exp(factor * odd * odd);
      sum += term;
      if (term < 1e-17 * sum) break;
    }
    return Math.min(1, Math.max(0, 1 - (Math.sqrt(2 * Math.PI) / lambda) * sum));
  }
  let sum = 0;
  let sign = 1;
  for (let k = 1; k <= 100; k++) {
    const term = Math.exp(-2 * k * k * lambda * lambda);
    sum += sign * term;
    if (term < 1e-17 * Math.abs(sum) || term === 0) break;
    sign = -sign;
  }
  return Math.min(1, Math.max(0, 2 * sum));
}

/** D for two samples that are already sorted ascending (typed arrays, no copy). NaN values are not allowed. */
export function ksStatisticSorted(first: ArrayLike<number>, second: ArrayLike<number>): number {
  const n1 = first.length;
  const n2 = second.length;
  if (n1 === 0 || n2 === 0) throw new RangeError(`the KS test needs two non-empty samples (got ${n1} and ${n2} values)`);
  let i = 0;
  let j = 0;
  let largest = 0;
  // Walk both samples in value order; equal values on either side move both CDFs together before comparing,
  // so ties never create a gap that the CDFs do not have.
  while (i < n1 && j < n2) {
    const value = first[i] <= second[j] ? first[i] : second[j];
    while (i < n1 && first[i] === value) i++;
    while (j < n2 && second[j] === value) j++;
    const gap = Math.abs(i / n1 - j / n2);
    if (gap > largest) largest = gap;
  }
  // Once one sample is used up its CDF is 1 and the other's only climbs towards it: the gap can only shrink.
  return largest;
}

/** Asymptotic two-sided p-value of statistic D for sample sizes n1 and n2 (Stephens' correction). */
export function ksPValue(statistic: number, n1: number, n2: number): number {
  const effective = Math.sqrt((n1 * n2) / (n1 + n2));
  return kolmogorovSurvival((effective + 0.12 + 0.11 / effective) * statistic);
}

function sortedCopy(values: ArrayLike<number>, name: string): Float64Array {
  const copy = Float64Array.from(values as ArrayLike<number>);
  for (let i = 0; i < copy.length; i++) {
    if (!Number.isFinite(copy[i])) throw new RangeError(`${name} sample: value ${i} is not a finite number (got ${String(copy[i])})`);
  }
  return copy.sort();
}

/** Two-sample KS test of arbitrary (unsorted, finite) samples. */
export function ksTwoSample(first: ArrayLike<number>, second: ArrayLike<number>): KsResult {
  const a = sortedCopy(first, "first");
  const b = sortedCopy(second, "second");
  const statistic = ksStatisticSorted(a, b);
  return { statistic, pValue: ksPValue(statistic, a.length, b.length), n1: a.length, n2: b.length };
}

/** The same test when both samples are sorted already (the drift detector keeps its reference sorted). */
export function ksTwoSampleSorted(first: ArrayLike<number>, second: ArrayLike<number>): KsResult {
  const statistic = ksStatisticSorted(first, second);
  return { statistic, pValue: ksPValue(statistic, first.length, second.length), n1: first.length, n2: second.length };
}
