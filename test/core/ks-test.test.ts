import assert from "node:assert/strict";
import { kolmogorovSurvival, ksPValue, ksStatisticSorted, ksTwoSample } from "../../src/core/ks-test";
import { gaussian } from "../support/seeded-noise";

const close = (actual: number, expected: number, tolerance: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual} is not within ${tolerance} of ${expected}`);

describe("two-sample Kolmogorov–Smirnov test (core)", () => {
  it("Q_KS(λ) matches scipy.special.kolmogorov on both sides of the series switch", () => {
    // Values printed by scipy 1.17 (scipy.special.kolmogorov).
    const reference: Array<[number, number]> = [
      [0.3, 0.9999906941986655],
      [0.5, 0.9639452436648751],
      [0.8, 0.5441424115741981],
      [1.0, 0.26999967167735456],
      [1.18, 0.1234538094297657],
      [1.2, 0.11224966667072497],
      [1.36, 0.049485876755377876],
      [1.5, 0.022217962616525127],
      [2.0, 0.0006709252557796953],
      [3.0, 3.045995948942526e-8],
    ];
    for (const [lambda, expected] of reference) close(kolmogorovSurvival(lambda), expected, expected * 1e-9 + 1e-15, `Q(${lambda})`);
    assert.equal(kolmogorovSurvival(0), 1);
    assert.equal(kolmogorovSurvival(0.05), 1);
    assert.ok(kolmogorovSurvival(10) >= 0 && kolmogorovSurvival(10) < 1e-80);
  });

  it("D of small hand cases, ties included, as scipy.stats.ks_2samp gives it", () => {
    const d = (a: number[], b: number[]) => ksStatisticSorted(a, b);
    assert.equal(d([1, 2, 3], [4, 5, 6]), 1);
    assert.equal(d([1, 2, 3, 4], [3, 4, 5, 6]), 0.5);
    // At 2 both CDFs jump together (0.75 vs 0.6); the gap 0.4 is at 3, not a spurious 0.75 between the ties.
    assert.equal(d([1, 2, 2, 3], [2, 2, 2, 5, 6]), 0.4);
    assert.equal(d([0.1, 0.4, 0.7], [0.2, 0.5, 0.8, 0.9]), 0.5);
    assert.equal(d([5, 5, 5], [5, 5]), 0, "identical constant samples have no gap");
  });

  it("the corrected asymptotic p-value is close to scipy's exact one at n1 = 40, n2 = 30", () => {
    const first = Array.from({ length: 40 }, (_, i) => i);
    const second = Array.from({ length: 30 }, (_, j) => j * 1.1 + 5);
    const result = ksTwoSample(first, second);
    close(result.statistic, 0.14166666666666666, 1e-12, "D");
    // scipy.special.kolmogorov((sqrt(ne) + 0.12 + 0.11/sqrt(ne)) * D) = 0.85444500; scipy's exact p = 0.84227.
    close(result.pValue, 0.8544450024968806, 1e-9, "p (Stephens)");
    close(result.pValue, 0.8422717112609579, 0.02, "p against the exact distribution");
  });

  it("a 0.1 shift of 1000 evenly spaced values: D = 0.101 and p ≈ 6.6e-5", () => {
    const first = Array.from({ length: 1000 }, (_, i) => i / 1000);
    const second = first.map((value) => value + 0.1);
    const result = ksTwoSample(second, first);
    close(result.statistic, 0.101, 1e-9, "D");
    close(result.pValue, 6.624515348151763e-5, 1e-12, "p");
  });

  it("identical samples give p = 1; two draws of one distribution a large p; a mean shift p ≈ 0", () => {
    const noise = gaussian(12); // one seeded case; the next test checks the false-alarm rate over 400 seeds
    const sample = Array.from({ length: 500 }, noise);
    assert.deepEqual(ksTwoSample(sample, [...sample].reverse()), { statistic: 0, pValue: 1, n1: 500, n2: 500 });
    const other = Array.from({ length: 700 }, noise);
    assert.ok(ksTwoSample(sample, other).pValue > 0.05, "same distribution, fresh draws");
    const shifted = other.map((value) => value + 0.5);
    assert.ok(ksTwoSample(sample, shifted).pValue < 1e-10, "half a standard deviation over hundreds of readings");
  });

  it("p-values are uniform-ish under the null: about 5% below 0.05 over 400 seeded pairs", () => {
    let below = 0;
    for (let seed = 1; seed <= 400; seed++) {
      const noise = gaussian(seed);
      const a = Array.from({ length: 200 }, noise);
      const b = Array.from({ length: 200 }, noise);
      if (ksTwoSample(a, b).pValue < 0.05) below++;
    }
    // Binomial(400, 0.05): mean 20, sd 4.4; the asymptotic test is slightly conservative.
    assert.ok(below >= 6 && below <= 34, `${below} of 400 below 0.05`);
  });

  it("rejects empty samples and non-finite values, naming the sample", () => {
    assert.throws(() => ksTwoSample([], [1]), /two non-empty samples \(got 0 and 1 values\)/);
    assert.throws(() => ksTwoSample([1, Number.NaN], [1]), /first sample: value 1 is not a finite number \(got NaN\)/);
    assert.throws(() => ksTwoSample([1], [Infinity]), /second sample: value 0/);
    assert.equal(ksPValue(0, 10, 10), 1);
  });
});
