// Isolation Forest (Liu, Ting & Zhou 2008) with scikit-learn's semantics, stored as flat typed arrays so scoring
// one point is a tight loop with no allocation. Pure TypeScript: no Node-RED, no dependencies.
//
// Two layouts of the same trees: node arrays (feature / threshold / left / right / path length per node, what
// toJSON saves) and, built from them for scoring, complete trees of the maximum depth in heap order (children of
// slot i at 2i+1 and 2i+2, a leaf above the last level repeated into every bottom slot under it). Scoring then walks
// exactly `depth` levels per tree with no data-dependent branch, four trees at a time.
//
// What "scikit-learn semantics" means here (sklearn/ensemble/_iforest.py + the random ExtraTree splitter):
// - each tree sees min(maxSamples, n) rows drawn without replacement (psi);
// - trees stop at depth ceil(log2(psi)), at a single row, or when every feature is constant in the node;
// - a split draws a random non-constant feature and a threshold uniform in [min, max) of that feature in the node
//   (a feature counts as constant when max <= min + 1e-7, sklearn's FEATURE_THRESHOLD); rows with value <= threshold
//   go left;
// - the path length of a leaf is its depth plus c(rows in the leaf), c(n) = 2H(n-1) - 2(n-1)/n, c(1) = 0, c(2) = 1;
// - score = 2^(-mean path length / c(psi)), in (0, 1], higher is more anomalous (sklearn's -score_samples).
// The random streams differ from numpy's, so single models differ; averaged over seeds the scores agree
// (see test/core/isolation-forest.test.ts for the measured parity).

export type Contamination = "auto" | number;

export interface IsolationForestOptions {
  /** Number of trees, 1 to 10000. Default 100. */
  nEstimators?: number;
  /** Rows drawn (without replacement) to grow each tree, 2 to 4096; capped at the training size. Default 256. */
  maxSamples?: number;
  /** Seed of the internal PRNG: the same seed and rows give the same model. Integer in [0, 2^32). Default 42. */
  seed?: number;
  /**
   * "auto": threshold 0.5 (the original paper's cut, sklearn's offset_ = -0.5).
   * A rate in (0, 0.5]: the threshold is the (1 - rate) quantile of the training scores, so about that fraction
   * of the training rows is flagged.
   */
  contamination?: Contamination;
}

/** Distribution of the scores of the training rows, for status texts and for choosing a threshold. */
export interface TrainingSummary {
  n: number;
  min: number;
  mean: number;
  max: number;
  p50: number;
  p99: number;
}

/** Serialised model (plain JSON); `IsolationForest.fromJSON(forest.toJSON())` scores exactly like `forest`. */
export interface IsolationForestJSON {
  format: typeof JSON_FORMAT;
  version: typeof JSON_VERSION;
  options: Required<IsolationForestOptions>;
  nFeatures: number;
  /** Rows per tree actually used: min(maxSamples, training rows). */
  sampleSize: number;
  threshold: number;
  trainingSummary: TrainingSummary;
  /** The trees, concatenated into parallel node arrays. */
  trees: {
    /** Index of each tree's root node. */
    roots: number[];
    /** Per node: split feature, or -1 for a leaf. */
    feature: number[];
    /** Per node: split threshold (0 for leaves). */
    threshold: number[];
    /** Per node: child indices (-1 for leaves). */
    left: number[];
    right: number[];
    /** Per node: depth + c(rows in leaf) for leaves, 0 for split nodes. */
    pathLength: number[];
  };
}

const JSON_FORMAT = "iot-anomaly/isolation-forest";
const JSON_VERSION = 1;

/** sklearn's FEATURE_THRESHOLD: a feature whose range in a node is at most this is treated as constant. */
const FEATURE_THRESHOLD = 1e-7;
const EULER_GAMMA = 0.5772156649015329;

const MAX_ESTIMATORS = 10_000;
/**
 * Trees over psi rows are ceil(log2 psi) deep and the scoring layout holds complete trees of that depth
 * (2^depth leaves each), so psi is capped at 4096 (12 levels, 80 KB per tree). Larger subsamples make deeper trees
 * without better detection: the paper's (and sklearn's) default is 256.
 */
const MAX_SAMPLES = 4096;

const DEFAULTS: Required<IsolationForestOptions> = { nEstimators: 100, maxSamples: 256, seed: 42, contamination: "auto" };

/**
 * Average path length of an unsuccessful search in a binary search tree of n items: the normaliser c(n) of the
 * paper. H(i) is approximated by ln(i) + Euler's constant, as scikit-learn does.
 */
export function averagePathLength(n: number): number {
  if (n <= 1) return 0;
  if (n === 2) return 1;
  return 2 * (Math.log(n - 1) + EULER_GAMMA) - (2 * (n - 1)) / n;
}

/** mulberry32: a small, fast 32-bit PRNG; good enough for sampling and thresholds, and fully reproducible. */
function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Linear-interpolated quantile of sorted values (numpy's default "linear" method). */
function quantileSorted(sorted: ArrayLike<number>, fraction: number): number {
  const position = (sorted.length - 1) * fraction;
  const lower = Math.floor(position);
  const upper = Math.min(sorted.length - 1, lower + 1);
  return sorted[lower] + (sorted[upper] - sorted[lower]) * (position - lower);
}

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value !== null && typeof value === "object") return "an object";
  return String(value);
}

// Validate options once, in named steps, with messages that name the option.
function validateOptions(options: IsolationForestOptions): Required<IsolationForestOptions> {
  if (options === null || typeof options !== "object") throw new TypeError(`IsolationForest options must be an object (got ${describe(options)})`);
  // Apply defaults
  const resolved: Required<IsolationForestOptions> = {
    nEstimators: options.nEstimators ?? DEFAULTS.nEstimators,
    maxSamples: options.maxSamples ?? DEFAULTS.maxSamples,
    seed: options.seed ?? DEFAULTS.seed,
    contamination: options.contamination ?? DEFAULTS.contamination,
  };
  // Validate arguments
  const { nEstimators, maxSamples, seed, contamination } = resolved;
  if (!Number.isInteger(nEstimators) || nEstimators < 1) {
    throw new RangeError(`"nEstimators" must be a positive integer (got ${describe(nEstimators)})`);
  }
  if (nEstimators > MAX_ESTIMATORS) throw new RangeError(`"nEstimators" must be at most ${MAX_ESTIMATORS} (got ${nEstimators})`);
  if (!Number.isInteger(maxSamples) || maxSamples < 2 || maxSamples > MAX_SAMPLES) {
    throw new RangeError(`"maxSamples" must be an integer between 2 and ${MAX_SAMPLES} (got ${describe(maxSamples)})`);
  }
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new RangeError(`"seed" must be an integer between 0 and 4294967295 (got ${describe(seed)})`);
  }
  if (contamination !== "auto" && (typeof contamination !== "number" || !(contamination > 0 && contamination <= 0.5))) {
    throw new RangeError(`"contamination" must be "auto" or a number in (0, 0.5] (got ${describe(contamination)})`);
  }
  return resolved;
}

/** Checks a matrix of rows and returns its width; errors name the row and column. */
function checkRows(rows: unknown, expectedWidth: number | undefined, purpose: string): number {
  if (!Array.isArray(rows)) throw new TypeError(`${purpose} needs an array of rows (got ${describe(rows)})`);
  if (rows.length === 0) throw new RangeError(`${purpose} needs at least one row (got an empty array)`);
  const first = rows[0] as unknown;
  if (!Array.isArray(first) && !ArrayBuffer.isView(first)) throw new TypeError(`row 0 must be an array of numbers (got ${describe(first)})`);
  const width = expectedWidth ?? (first as ArrayLike<number>).length;
  if (width === 0) throw new RangeError(`row 0 is empty: each row needs at least one feature`);
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r] as ArrayLike<number>;
    if (!Array.isArray(row) && !ArrayBuffer.isView(row)) throw new TypeError(`row ${r} must be an array of numbers (got ${describe(row)})`);
    if (row.length !== width) {
      throw new RangeError(`row ${r} has ${row.length} values but ${expectedWidth === undefined ? "row 0 has" : "the model expects"} ${width}: all rows need the same features`);
    }
    for (let c = 0; c < width; c++) {
      const value = row[c];
      if (typeof value !== "number" || !Number.isFinite(value)) {
        throw new RangeError(`row ${r}, column ${c} is not a finite number (got ${describe(value)})`);
      }
    }
  }
  return width;
}

/** Trees of one forest, concatenated: node arrays indexed by node id, roots[t] is tree t's first node. */
interface ForestArrays {
  roots: Int32Array;
  feature: Int32Array;
  threshold: Float64Array;
  left: Int32Array;
  right: Int32Array;
  pathLength: Float64Array;
}

/** Complete trees in heap order, `depth` levels each, for branch-free scoring (see the top of the file). */
interface ScoringLayout {
  depth: number;
  /** Split slots per tree: 2^depth - 1. */
  inner: number;
  /** Bottom slots per tree: 2^depth. */
  leaves: number;
  feature: Int32Array;
  threshold: Float64Array;
  pathLength: Float64Array;
}

/** Depth of the deepest leaf over all trees. */
function forestDepth(trees: ForestArrays): number {
  let deepest = 0;
  const walk = (node: number, depth: number): void => {
    if (trees.feature[node] < 0) deepest = Math.max(deepest, depth);
    else {
      walk(trees.left[node], depth + 1);
      walk(trees.right[node], depth + 1);
    }
  };
  for (const root of trees.roots) walk(root, 0);
  return deepest;
}

function buildScoringLayout(trees: ForestArrays): ScoringLayout {
  const depth = forestDepth(trees);
  const inner = (1 << depth) - 1;
  const leaves = 1 << depth;
  const treeCount = trees.roots.length;
  // Slots under a leaf keep feature 0 / threshold 0: whichever way they go, they reach a copy of the leaf.
  const layout: ScoringLayout = {
    depth,
    inner,
    leaves,
    feature: new Int32Array(treeCount * inner),
    threshold: new Float64Array(treeCount * inner),
    pathLength: new Float64Array(treeCount * leaves),
  };
  const place = (tree: number, node: number, slot: number, level: number): void => {
    if (trees.feature[node] >= 0) {
      layout.feature[tree * inner + slot] = trees.feature[node];
      layout.threshold[tree * inner + slot] = trees.threshold[node];
      place(tree, trees.left[node], 2 * slot + 1, level + 1);
      place(tree, trees.right[node], 2 * slot + 2, level + 1);
      return;
    }
    // The bottom slots under `slot` are a contiguous run: its leftmost descendant at the last level onwards.
    const span = 1 << (depth - level);
    const first = (slot + 1) * span - 1 - inner;
    layout.pathLength.fill(trees.pathLength[node], tree * leaves + first, tree * leaves + first + span);
  };
  for (let tree = 0; tree < treeCount; tree++) place(tree, trees.roots[tree], 0, 0);
  return layout;
}

export class IsolationForest {
  readonly options: Readonly<Required<IsolationForestOptions>>;
  /** Score above which a point is an anomaly: 0.5 for "auto", learnt by fit() for a contamination rate (NaN before). */
  threshold: number;
  /** Scores of the training rows; null before fit. */
  trainingSummary: TrainingSummary | null = null;

  private trees: ForestArrays | null = null;
  private layout: ScoringLayout | null = null;
  private nFeatures = 0;
  private sampleSize = 0;
  /** nEstimators * c(psi): mean path length normaliser, times the tree count so scoring divides once. */
  private normaliser = 1;

  constructor(options: IsolationForestOptions = {}) {
    this.options = Object.freeze(validateOptions(options));
    this.threshold = this.options.contamination === "auto" ? 0.5 : NaN;
  }

  get fitted(): boolean {
    return this.trees !== null;
  }

  /** Number of features the model was trained on (0 before fit). */
  get featureCount(): number {
    return this.nFeatures;
  }

  /** Grows the forest on `rows` (n rows of the same width, finite numbers) and sets `threshold`. */
  fit(rows: ArrayLike<number>[]): this {
    const width = checkRows(rows, undefined, "fit");
    const rowCount = rows.length;
    if (rowCount < 2) throw new RangeError(`fit needs at least 2 rows (got ${rowCount})`);
    const { nEstimators, maxSamples, seed } = this.options;
    const sampleSize = Math.min(maxSamples, rowCount);
    const maxDepth = Math.ceil(Math.log2(Math.max(sampleSize, 2)));
    const random = createRandom(seed);

    // Row-major copy of the data: one contiguous block is faster to scan than an array of arrays.
    const data = new Float64Array(rowCount * width);
    for (let r = 0; r < rowCount; r++) {
      const row = rows[r];
      for (let c = 0; c < width; c++) data[r * width + c] = row[c];
    }

    // A tree over psi rows has at most psi leaves, hence at most 2 psi - 1 nodes.
    const capacity = nEstimators * (2 * sampleSize - 1);
    const arrays: ForestArrays = {
      roots: new Int32Array(nEstimators),
      feature: new Int32Array(capacity),
      threshold: new Float64Array(capacity),
      left: new Int32Array(capacity),
      right: new Int32Array(capacity),
      pathLength: new Float64Array(capacity),
    };
    const permutation = new Int32Array(rowCount);
    for (let r = 0; r < rowCount; r++) permutation[r] = r;
    const sample = new Int32Array(sampleSize);
    const candidates = new Int32Array(width * (maxDepth + 1));
    let nodeCount = 0;

    const grow = (start: number, end: number, depth: number, candidateStart: number, candidateCount: number): number => {
      const node = nodeCount++;
      const size = end - start;
      let splitFeature = -1;
      let low = 0;
      let high = 0;
      if (size > 1 && depth < maxDepth) {
        // Copy the parent's non-constant features so this node can drop the ones that are constant here;
        // constant features stay constant in the children, so they are never drawn again (as sklearn's splitter).
        const own = candidateStart + candidateCount;
        candidates.copyWithin(own, candidateStart, candidateStart + candidateCount);
        let remaining = candidateCount;
        while (remaining > 0) {
          const pick = Math.floor(random() * remaining);
          const feature = candidates[own + pick];
          low = Infinity;
          high = -Infinity;
          for (let i = start; i < end; i++) {
            const value = data[sample[i] * width + feature];
            if (value < low) low = value;
            if (value > high) high = value;
          }
          if (high > low + FEATURE_THRESHOLD) {
            splitFeature = feature;
            break;
          }
          candidates[own + pick] = candidates[own + remaining - 1];
          remaining--;
        }
        candidateStart = own;
        candidateCount = remaining;
      }
      if (splitFeature < 0) {
        arrays.feature[node] = -1;
        arrays.left[node] = -1;
        arrays.right[node] = -1;
        arrays.pathLength[node] = depth + averagePathLength(size);
        return node;
      }
      let threshold = low + random() * (high - low);
      if (threshold >= high) threshold = low; // rounding can reach max; sklearn falls back to min the same way
      // Partition sample[start:end) in place: values <= threshold first.
      let middle = start;
      for (let i = start; i < end; i++) {
        const index = sample[i];
        if (data[index * width + splitFeature] <= threshold) {
          sample[i] = sample[middle];
          sample[middle++] = index;
        }
      }
      arrays.feature[node] = splitFeature;
      arrays.threshold[node] = threshold;
      arrays.left[node] = grow(start, middle, depth + 1, candidateStart, candidateCount);
      arrays.right[node] = grow(middle, end, depth + 1, candidateStart, candidateCount);
      return node;
    };

    for (let tree = 0; tree < nEstimators; tree++) {
      // Partial Fisher-Yates over a persistent permutation: psi distinct rows per tree, no per-tree allocation.
      for (let i = 0; i < sampleSize; i++) {
        const j = i + Math.floor(random() * (rowCount - i));
        const swap = permutation[i];
        permutation[i] = permutation[j];
        permutation[j] = swap;
        sample[i] = permutation[i];
      }
      for (let c = 0; c < width; c++) candidates[c] = c;
      arrays.roots[tree] = grow(0, sampleSize, 0, 0, width);
    }

    this.setTrees({
      roots: arrays.roots,
      feature: arrays.feature.slice(0, nodeCount),
      threshold: arrays.threshold.slice(0, nodeCount),
      left: arrays.left.slice(0, nodeCount),
      right: arrays.right.slice(0, nodeCount),
      pathLength: arrays.pathLength.slice(0, nodeCount),
    });
    this.nFeatures = width;
    this.sampleSize = sampleSize;
    this.normaliser = nEstimators * averagePathLength(sampleSize);

    const scores = new Float64Array(rowCount);
    this.scoreFlat(data, rowCount, scores);
    this.summariseTraining(scores);
    return this;
  }

  /** Anomaly scores of `rows`, in (0, 1], higher is more anomalous. */
  score(rows: ArrayLike<number>[]): number[] {
    this.requireFitted();
    checkRows(rows, this.nFeatures, "score");
    const result = new Array<number>(rows.length);
    for (let r = 0; r < rows.length; r++) result[r] = this.scoreOne(rows[r]);
    return result;
  }

  /**
   * Score of one row, without allocation. For speed the values are not checked: pass finite numbers, one per
   * feature in training order (a NaN compares false at every split and always goes right).
   */
  scoreOne(row: ArrayLike<number>): number {
    this.requireLayout();
    if (row.length < this.nFeatures) throw new RangeError(`row has ${row.length} values but the model expects ${this.nFeatures}`);
    return this.scoreAt(row, 0);
  }

  /**
   * Scores `rowCount` rows stored row-major in `values` (rowCount * featureCount numbers) into `out`: one call per
   * batch, no allocation, exactly the scores `scoreOne` gives. Values are not checked.
   */
  scoreFlat(values: ArrayLike<number>, rowCount: number, out: Float64Array | number[]): void {
    this.requireLayout();
    const width = this.nFeatures;
    if (values.length < rowCount * width) throw new RangeError(`scoreFlat needs ${rowCount * width} values for ${rowCount} rows (got ${values.length})`);
    if (out.length < rowCount) throw new RangeError(`scoreFlat output holds ${out.length} scores, ${rowCount} needed`);
    for (let row = 0; row < rowCount; row++) out[row] = this.scoreAt(values, row * width);
  }

  /**
   * Score of the row starting at `offset` in `values`; the layout must exist. Walks four trees at once: their
   * chains of dependent loads are independent, so the CPU overlaps them instead of waiting on one (measured about
   * 3x faster than one tree at a time).
   */
  private scoreAt(values: ArrayLike<number>, offset: number): number {
    const { depth, inner, leaves, feature, threshold, pathLength } = this.layout as ScoringLayout;
    const treeCount = this.options.nEstimators;
    let total = 0;
    let tree = 0;
    for (; tree + 4 <= treeCount; tree += 4) {
      const base0 = tree * inner;
      const base1 = base0 + inner;
      const base2 = base1 + inner;
      const base3 = base2 + inner;
      let slot0 = 0;
      let slot1 = 0;
      let slot2 = 0;
      let slot3 = 0;
      for (let level = 0; level < depth; level++) {
        // Left child 2i+1 when value <= threshold, else right 2i+2; the comparison becomes 0/1 without a branch.
        slot0 = 2 * slot0 + 2 - +(values[offset + feature[base0 + slot0]] <= threshold[base0 + slot0]);
        slot1 = 2 * slot1 + 2 - +(values[offset + feature[base1 + slot1]] <= threshold[base1 + slot1]);
        slot2 = 2 * slot2 + 2 - +(values[offset + feature[base2 + slot2]] <= threshold[base2 + slot2]);
        slot3 = 2 * slot3 + 2 - +(values[offset + feature[base3 + slot3]] <= threshold[base3 + slot3]);
      }
      const leafBase = tree * leaves - inner;
      total += pathLength[leafBase + slot0] + pathLength[leafBase + leaves + slot1] + pathLength[leafBase + 2 * leaves + slot2] + pathLength[leafBase + 3 * leaves + slot3];
    }
    for (; tree < treeCount; tree++) {
      const base = tree * inner;
      let slot = 0;
      for (let level = 0; level < depth; level++) slot = 2 * slot + 2 - +(values[offset + feature[base + slot]] <= threshold[base + slot]);
      total += pathLength[tree * leaves - inner + slot];
    }
    return Math.pow(2, -total / this.normaliser);
  }

  /** True when `score` is above the threshold (sklearn predicts -1 exactly then). */
  isAnomaly(score: number): boolean {
    return score > this.threshold;
  }

  toJSON(): IsolationForestJSON {
    const trees = this.requireFitted();
    return {
      format: JSON_FORMAT,
      version: JSON_VERSION,
      options: { ...this.options },
      nFeatures: this.nFeatures,
      sampleSize: this.sampleSize,
      threshold: this.threshold,
      trainingSummary: { ...(this.trainingSummary as TrainingSummary) },
      trees: {
        roots: Array.from(trees.roots),
        feature: Array.from(trees.feature),
        threshold: Array.from(trees.threshold),
        left: Array.from(trees.left),
        right: Array.from(trees.right),
        pathLength: Array.from(trees.pathLength),
      },
    };
  }

  /** Rebuilds a model saved with `toJSON()`; checks the structure so a damaged file fails here, not while scoring. */
  static fromJSON(json: IsolationForestJSON): IsolationForest {
    const fail = (problem: string): never => {
      throw new Error(`not a saved IsolationForest model: ${problem}`);
    };
    if (json === null || typeof json !== "object") fail(`expected an object (got ${describe(json)})`);
    if (json.format !== JSON_FORMAT) fail(`"format" is ${describe(json.format)}, expected "${JSON_FORMAT}"`);
    if (json.version !== JSON_VERSION) fail(`"version" ${describe(json.version)} is not supported (this build reads ${JSON_VERSION})`);
    const forest = new IsolationForest(json.options);
    const { nFeatures, sampleSize } = json;
    if (!Number.isInteger(nFeatures) || nFeatures < 1) fail(`"nFeatures" must be a positive integer (got ${describe(nFeatures)})`);
    if (!Number.isInteger(sampleSize) || sampleSize < 2) fail(`"sampleSize" must be an integer of at least 2 (got ${describe(sampleSize)})`);
    if (typeof json.threshold !== "number") fail(`"threshold" must be a number (got ${describe(json.threshold)})`);
    const saved = json.trees as Record<string, unknown> | undefined;
    if (saved === null || typeof saved !== "object") fail(`"trees" must be an object (got ${describe(saved)})`);
    const numbers = (name: keyof IsolationForestJSON["trees"], length?: number): number[] => {
      const value = (saved as Record<string, unknown>)[name];
      if (!Array.isArray(value) || (length !== undefined && value.length !== length)) {
        fail(`"trees.${name}" must be an array${length === undefined ? "" : ` of ${length} numbers`} (got ${describe(value)})`);
      }
      for (const item of value as unknown[]) if (typeof item !== "number" || !Number.isFinite(item)) fail(`"trees.${name}" holds ${describe(item)}`);
      return value as number[];
    };
    const roots = numbers("roots", forest.options.nEstimators);
    const nodeCount = numbers("feature").length;
    const trees: ForestArrays = {
      roots: Int32Array.from(roots),
      feature: Int32Array.from(numbers("feature")),
      threshold: Float64Array.from(numbers("threshold", nodeCount)),
      left: Int32Array.from(numbers("left", nodeCount)),
      right: Int32Array.from(numbers("right", nodeCount)),
      pathLength: Float64Array.from(numbers("pathLength", nodeCount)),
    };
    for (const root of trees.roots) if (root < 0 || root >= nodeCount) fail(`root ${root} is outside the ${nodeCount} nodes`);
    // Children always come after their parent (preorder), which also rules out cycles while scoring.
    for (let node = 0; node < nodeCount; node++) {
      const split = trees.feature[node];
      if (split < 0) continue;
      if (split >= nFeatures) fail(`node ${node} splits on feature ${split} but the model has ${nFeatures}`);
      for (const child of [trees.left[node], trees.right[node]]) {
        if (child <= node || child >= nodeCount) fail(`node ${node} has child ${child} outside the tree`);
      }
    }
    const depth = forestDepth(trees);
    const maxDepth = Math.ceil(Math.log2(sampleSize));
    if (depth > maxDepth) fail(`a tree is ${depth} levels deep, more than ceil(log2(sampleSize)) = ${maxDepth}`);
    forest.setTrees(trees);
    forest.nFeatures = nFeatures;
    forest.sampleSize = sampleSize;
    forest.normaliser = forest.options.nEstimators * averagePathLength(sampleSize);
    forest.threshold = json.threshold;
    forest.trainingSummary = json.trainingSummary ? { ...json.trainingSummary } : null;
    return forest;
  }

  private setTrees(trees: ForestArrays): void {
    this.trees = trees;
    this.layout = buildScoringLayout(trees);
  }

  private requireLayout(): ScoringLayout {
    if (this.layout === null) throw new Error("IsolationForest is not trained yet: call fit(rows) first");
    return this.layout;
  }

  private requireFitted(): ForestArrays {
    if (this.trees === null) throw new Error("IsolationForest is not trained yet: call fit(rows) first");
    return this.trees;
  }

  private summariseTraining(scores: Float64Array): void {
    const sorted = scores.slice().sort();
    let sum = 0;
    for (let i = 0; i < sorted.length; i++) sum += sorted[i];
    this.trainingSummary = {
      n: sorted.length,
      min: sorted[0],
      mean: sum / sorted.length,
      max: sorted[sorted.length - 1],
      p50: quantileSorted(sorted, 0.5),
      p99: quantileSorted(sorted, 0.99),
    };
    const { contamination } = this.options;
    // sklearn: offset_ = percentile(score_samples(X), 100 * contamination) on negated scores, i.e. the
    // (1 - contamination) quantile of ours, linear interpolation.
    this.threshold = contamination === "auto" ? 0.5 : quantileSorted(sorted, 1 - contamination);
  }
}
