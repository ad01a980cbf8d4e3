// The life of one detector's Isolation Forest: warm-up, versions (kept in a ModelRegistry when there is one, and in
// a state snapshot), drift checks on the scored rows, retraining on drift, and the control operations train / load /
// rollback / reset. Every change returns lifecycle events for the caller to publish. No Node-RED in here.
//
// Ordering: everything is synchronous. A row is scored by the caller first and observed here afterwards, so a
// retrain triggered by row k changes the model for row k + 1 onwards; no row is scored twice or skipped.
// A drift found by a check is confirmed on fresh data before anything happens: the next `windowSize` rows are
// collected (still scored by the current model) and tested against the same reference. Two reasons. Retraining on
// the window that revealed the drift would learn a mixture (that window straddles the change), which the next,
// purely new window would flag again. And every check is a test at level alpha, so on stationary data one check in
// 1/alpha would retrain for nothing; requiring a second, independent window to agree makes that far rarer (measured
// in test/core/model-lifecycle.test.ts). The confirmed window is what the new version is trained on.
import { performance } from "node:perf_hooks";
import { DriftDetector, referenceSampleOf, type DriftCheck } from "./drift-detector";
import { IsolationForest, type IsolationForestJSON, type IsolationForestOptions } from "./isolation-forest";
import type { ModelRegistry, ModelVersion, NewModelVersion } from "./model-registry";

export type LifecycleEventName = "trained" | "drift" | "promoted" | "rolled-back" | "reset" | "loaded";

/** What the node publishes on its lifecycle output. */
export interface LifecycleEvent {
  event: LifecycleEventName;
  /** The version this event is about (the new one for trained / promoted / loaded / rolled-back); null after reset. */
  version: number | null;
  /** The version that was active before, or null. */
  previousVersion: number | null;
  /** Wall-clock time, ms since the Unix epoch. */
  at: number;
  details: Record<string, unknown>;
}

export type TrainingReason = "warm-up" | "train" | "drift" | "imported";

export interface LifecycleDriftOptions {
  /** Rows in the recent window: what is tested against the reference and what a drift retrain learns from. */
  windowSize: number;
  /** 0 = no check by count. */
  checkEveryEvents: number;
  /** Event-time ms between checks; 0 = no check by time. */
  checkEveryMs: number;
  alpha: number;
  retrainOnDrift: boolean;
}

export interface ModelLifecycleOptions {
  /** Whose models these are in the registry (the node id). */
  detectorId: string;
  features: string[];
  /** Warm-up rows before the first model. */
  trainingSize: number;
  forest: Required<IsolationForestOptions>;
  /** Caller's settings stored with every version (e.g. the threshold mode); informational. */
  parameters?: Record<string, unknown>;
  drift: LifecycleDriftOptions;
  /** Where versions live; null keeps them only in the state snapshot (load and rollback then fail). */
  registry?: ModelRegistry | null;
  /** Why the registry is missing, for the error of load / rollback. */
  registryProblem?: string;
  /** Keep at most this many versions in the registry (0 = all). */
  keepVersions?: number;
  /** Wall clock, ms; replaceable in tests. */
  now?: () => number;
}

/** The active model as the state snapshot keeps it (the fields before `reason` are the original snapshot format). */
export interface SavedModel {
  version: number;
  rows: number;
  trainedAt: string;
  forest: IsolationForestJSON;
  reason?: TrainingReason;
  from?: number | null;
  to?: number | null;
  trainingMs?: number | null;
  reference?: number[][] | null;
  [parameter: string]: unknown;
}

/** What survives a restart without the registry: the model, the highest version ever trained, warm-up progress. */
export interface LifecycleState {
  format: "iot-isolation-forest-node";
  features: string[];
  lastVersion: number;
  model: SavedModel | null;
  warmupRows: number[][];
  warmupFrom?: number | null;
  warmupTo?: number | null;
}

export interface RestoreOutcome {
  /** Where the active model came from: the registry, the state snapshot (registry absent), the snapshot imported
   * into an empty registry, or nowhere (warming up). */
  source: "registry" | "state" | "imported" | "none";
  version: number | null;
  rows: number | null;
  /** Why a stored model was not used. */
  ignored: string | null;
  /** A warm-up completed by restored rows trains at once; its events. */
  events: LifecycleEvent[];
}

/** off: no checks (or no model); waiting: no check yet for this version; stable: the last check passed;
 * confirming: a check found drift, a fresh window is being collected to confirm it; drift: confirmed, not retrained. */
export type DriftState = "off" | "waiting" | "stable" | "confirming" | "drift";

/** Why a stored model does not fit the current settings, or null when it does. */
export function modelMismatch(features: readonly string[], forestOptions: unknown, wanted: { features: readonly string[]; forest: Required<IsolationForestOptions> }): string | null {
  if (features.join(",") !== wanted.features.join(",")) {
    return `it was trained on features "${features.join(", ")}" but the node now uses "${wanted.features.join(", ")}"`;
  }
  const saved = (forestOptions ?? {}) as Record<string, unknown>;
  for (const [option, value] of Object.entries(wanted.forest)) {
    if (saved[option] !== value) return `it was trained with ${option} ${JSON.stringify(saved[option])}, the node now uses ${JSON.stringify(value)}`;
  }
  return null;
}

interface ActiveModel {
  version: number;
  rows: number;
  createdAt: number;
  reason: TrainingReason;
  from: number | null;
  to: number | null;
  trainingMs: number | null;
  forest: IsolationForestJSON;
}

export class ModelLifecycle {
  readonly drift: DriftDetector;
  /** The model that scores, or null while warming up. */
  model: IsolationForest | null = null;
  /** Highest version ever trained by this detector (versions keep counting up after a reset). */
  lastVersion = 0;
  warmupRows: number[][] = [];
  /** The last drift check's p-value, or null before the first check of the active version. */
  lastPValue: number | null = null;

  private active: ActiveModel | null = null;
  private warmupFrom: number | null = null;
  private warmupTo: number | null = null;
  /** Drift confirmed and not yet resolved by a retrain or a passing check. */
  private driftSeen = false;
  /** The check that found drift, while the fresh window that must confirm it fills; null otherwise. */
  private suspicion: DriftCheck | null = null;
  private readonly registry: ModelRegistry | null;
  private readonly now: () => number;

  constructor(readonly options: ModelLifecycleOptions) {
    this.registry = options.registry ?? null;
    this.now = options.now ?? Date.now;
    this.drift = new DriftDetector({
      features: options.features,
      windowSize: options.drift.windowSize,
      checkEveryEvents: options.drift.checkEveryEvents,
      checkEveryMs: options.drift.checkEveryMs,
      alpha: options.drift.alpha,
    });
  }

  get version(): number | null {
    return this.active?.version ?? null;
  }

  get driftState(): DriftState {
    if (!this.drift.enabled || this.model === null) return "off";
    if (this.suspicion !== null) return "confirming";
    if (this.driftSeen) return "drift";
    return this.lastPValue === null ? "waiting" : "stable";
  }

  /** Fresh rows gathered to confirm a suspected drift (of windowSize), 0 when there is no suspicion. */
  get confirmProgress(): number {
    return this.suspicion !== null ? this.drift.windowCount : 0;
  }

  // ---- start -------------------------------------------------------------------------------------------------

  /** Brings back the active version: the registry's wins; the state snapshot serves when there is no registry. */
  restore(saved: LifecycleState | undefined): RestoreOutcome {
    const outcome: RestoreOutcome = { source: "none", version: null, rows: null, ignored: null, events: [] };
    const wanted = { features: this.options.features, forest: this.options.forest };
    const state = saved && saved.format === "iot-isolation-forest-node" ? saved : undefined;
    if (state && Number.isInteger(state.lastVersion)) this.lastVersion = state.lastVersion;
    // Warm-up rows only need the same features; a model also the same forest options.
    const stateMismatch = !state
      ? null
      : state.model
        ? modelMismatch(state.features ?? [], state.model.forest?.options, wanted)
        : modelMismatch(state.features ?? [], wanted.forest, wanted);

    if (this.registry) {
      this.lastVersion = Math.max(this.lastVersion, this.registry.maxVersion(this.options.detectorId));
      const active = this.registry.active(this.options.detectorId);
      if (active) {
        const reason = modelMismatch(active.features, active.model?.options, wanted);
        if (reason) {
          outcome.ignored = `version ${active.version} ${reason}`;
          return outcome;
        }
        this.activateStored(active);
        return { ...outcome, source: "registry", version: active.version, rows: active.trainingRows };
      }
      if (state?.model && this.registry.maxVersion(this.options.detectorId) === 0) {
        // A model saved before the registry existed: it becomes the registry's first version.
        if (stateMismatch) return { ...outcome, ignored: stateMismatch };
        this.importSaved(state.model);
        return { ...outcome, source: "imported", version: state.model.version, rows: state.model.rows };
      }
    } else if (state?.model) {
      if (stateMismatch) return { ...outcome, ignored: stateMismatch };
      this.activateSaved(state.model);
      return { ...outcome, source: "state", version: state.model.version, rows: state.model.rows };
    }
    // No model: resume the warm-up if its rows fit.
    if (state && !stateMismatch && Array.isArray(state.warmupRows)) {
      this.warmupRows = state.warmupRows.filter((row) => Array.isArray(row) && row.length === this.options.features.length && row.every(Number.isFinite));
      this.warmupFrom = state.warmupFrom ?? null;
      this.warmupTo = state.warmupTo ?? null;
      if (this.warmupRows.length >= this.options.trainingSize) {
        outcome.events = this.train(this.warmupRows.slice(0, this.options.trainingSize), "warm-up", this.warmupFrom, this.warmupTo);
        return { ...outcome, source: "none", version: this.version, rows: this.options.trainingSize };
      }
    } else if (stateMismatch && state?.model) {
      outcome.ignored = stateMismatch;
    }
    return outcome;
  }

  // ---- the event path ----------------------------------------------------------------------------------------

  /** One warm-up row (a copy the caller gives away); trains the first model when the warm-up is complete. */
  addWarmup(row: number[], timestamp: number): LifecycleEvent[] {
    this.warmupRows.push(row);
    if (this.warmupFrom === null || timestamp < this.warmupFrom) this.warmupFrom = timestamp;
    if (this.warmupTo === null || timestamp > this.warmupTo) this.warmupTo = timestamp;
    if (this.warmupRows.length < this.options.trainingSize) return [];
    return this.train(this.warmupRows, "warm-up", this.warmupFrom, this.warmupTo);
  }

  /**
   * A row the active model has just scored (`width` values at `offset`): feeds the drift window and runs a due
   * check. A check that finds drift only makes it a suspicion: the next `windowSize` rows (still scored by the
   * current model) are collected and tested again, and only a confirmed drift is announced and, if enabled, retrained
   * on (on exactly those fresh rows). A failed retrain keeps the current model, comes back as `error`, and is tried
   * again after another window.
   */
  observe(values: ArrayLike<number>, offset: number, timestamp: number): { events: LifecycleEvent[]; error: Error | null } {
    const none = { events: [] as LifecycleEvent[], error: null };
    if (this.model === null) return none;
    // The window is kept even with checks off: "train" without rows learns from it.
    const check = this.drift.add(values, offset, timestamp, this.drift.enabled && this.suspicion === null);
    if (!this.drift.enabled) return none;
    if (!this.drift.hasReference) {
      // A model saved before drift checks existed has no reference: the first full window after it becomes one.
      if (this.drift.windowFull) {
        this.drift.setReference(this.drift.windowRows().rows);
        this.drift.clearWindow();
      }
      return none;
    }
    if (this.suspicion !== null) return this.drift.windowFull ? this.confirm(this.suspicion) : none;
    if (check === null) return none;
    this.lastPValue = check.pValue;
    if (!check.drift) {
      this.driftSeen = false;
      return none;
    }
    // While a confirmed drift persists (retraining off), later checks do not start new suspicions.
    if (!this.driftSeen) {
      this.suspicion = check;
      this.drift.clearWindow();
    }
    return none;
  }

  /** The fresh window after a suspicion is full: test it, announce a confirmed drift, retrain if enabled. */
  private confirm(suspicion: DriftCheck): { events: LifecycleEvent[]; error: Error | null } {
    const check = this.drift.check();
    this.lastPValue = check.pValue;
    const events: LifecycleEvent[] = [];
    if (!check.drift) {
      this.suspicion = null;
      return { events, error: null };
    }
    const { retrainOnDrift } = this.options.drift;
    // One announcement per episode: a retry after a failed retrain does not announce the same drift again.
    if (!this.driftSeen) events.push(this.event("drift", this.version, null, { ...driftDetails(check, retrainOnDrift), suspectedPValue: suspicion.pValue }));
    this.driftSeen = true;
    if (!retrainOnDrift) {
      this.suspicion = null;
      return { events, error: null };
    }
    const { rows, from, to } = this.drift.windowRows();
    try {
      events.push(...this.train(rows, "drift", from, to));
      return { events, error: null };
    } catch (error) {
      // Keep the suspicion: the next full window is confirmed and trained on again.
      this.drift.clearWindow();
      return { events, error: error as Error };
    }
  }

  // ---- control operations ------------------------------------------------------------------------------------

  /**
   * Trains, stores and activates a new version on `rows` (from / to: their event-time range, null if unknown).
   * Throws (and changes nothing) when the rows are bad or the registry refuses the write.
   */
  train(rows: number[][], reason: TrainingReason, from: number | null = null, to: number | null = null): LifecycleEvent[] {
    const width = this.options.features.length;
    const wrong = rows.findIndex((row) => !row || row.length !== width);
    if (wrong >= 0) throw new RangeError(`row ${wrong} has ${rows[wrong]?.length ?? 0} values but the model has ${width} features (${this.options.features.join(", ")})`);
    const started = performance.now();
    const forest = new IsolationForest(this.options.forest).fit(rows);
    const trainingMs = Math.round((performance.now() - started) * 100) / 100;
    const version = this.nextVersion();
    const previous = this.version;
    const createdAt = this.now();
    const json = forest.toJSON();
    const referenceSample = referenceSampleOf(rows, this.options.features.length, this.drift.options.referenceSize).map((column) => Array.from(column));
    if (this.registry) {
      const record: NewModelVersion = {
        version,
        createdAt,
        reason,
        parameters: { ...this.options.forest, ...this.options.parameters, trainingSize: this.options.trainingSize },
        features: [...this.options.features],
        trainingRows: rows.length,
        trainingFrom: from,
        trainingTo: to,
        trainingMs,
        trainingSummary: forest.trainingSummary,
        threshold: forest.threshold,
        referenceSample,
        model: json,
      };
      this.registry.add(this.options.detectorId, record, true, createdAt);
      const keep = this.options.keepVersions ?? 0;
      if (keep > 0) this.registry.prune(this.options.detectorId, keep);
    }
    this.lastVersion = version;
    this.activate(forest, { version, rows: rows.length, createdAt, reason, from, to, trainingMs, forest: json }, referenceSample);
    if (reason === "warm-up") {
      this.warmupRows = [];
      this.warmupFrom = this.warmupTo = null;
    }
    const details = { reason, rows: rows.length, from, to, trainingMs, threshold: forest.threshold, trainingSummary: forest.trainingSummary };
    return [this.event("trained", version, previous, details), this.event("promoted", version, previous, { reason })];
  }

  /** Rows for "train now" without data: the warm-up gathered so far, or the recent window once a model exists. */
  fallbackTrainingRows(): { rows: number[][]; from: number | null; to: number | null } {
    if (this.model === null) return { rows: this.warmupRows, from: this.warmupFrom, to: this.warmupTo };
    return this.drift.windowRows();
  }

  /** Makes a stored version the active one. */
  load(version: number): LifecycleEvent[] {
    const registry = this.requireRegistry("load");
    if (!Number.isInteger(version) || version < 1) throw new Error(`load: "payload.version" must be a positive integer (got ${JSON.stringify(version)})`);
    const stored = registry.get(this.options.detectorId, version);
    if (!stored) {
      const versions = registry.list(this.options.detectorId).map((info) => info.version);
      throw new Error(`load: there is no model version ${version} for this node (stored: ${versions.length ? versions.join(", ") : "none"})`);
    }
    const reason = modelMismatch(stored.features, stored.model?.options, { features: this.options.features, forest: this.options.forest });
    if (reason) throw new Error(`load: version ${version} does not fit this node: ${reason}`);
    const forest = IsolationForest.fromJSON(stored.model); // before promoting: a damaged record changes nothing
    const previous = this.version;
    registry.promote(this.options.detectorId, version, this.now());
    this.activateStored(stored, forest);
    return [this.event("loaded", version, previous, { reason: stored.reason, rows: stored.trainingRows, createdAt: stored.createdAt })];
  }

  /** Goes back to the version that was active before the current one. */
  rollback(): LifecycleEvent[] {
    const registry = this.requireRegistry("rollback");
    const previous = this.version;
    const { to } = registry.rollback(this.options.detectorId);
    const reason = modelMismatch(to.features, to.model?.options, { features: this.options.features, forest: this.options.forest });
    if (reason) {
      // Undo: the registry must not say a model is active that this node cannot use.
      if (previous !== null) registry.promote(this.options.detectorId, previous, this.now());
      else registry.deactivate(this.options.detectorId);
      throw new Error(`rollback: version ${to.version} does not fit this node: ${reason}`);
    }
    this.activateStored(to);
    return [this.event("rolled-back", to.version, previous, { reason: to.reason, rows: to.trainingRows, createdAt: to.createdAt })];
  }

  /** Drops the active model and starts a new warm-up; versions keep counting up. */
  reset(): LifecycleEvent[] {
    this.registry?.deactivate(this.options.detectorId);
    const previous = this.version;
    this.model = null;
    this.active = null;
    this.warmupRows = [];
    this.warmupFrom = this.warmupTo = null;
    this.drift.clearReference();
    this.resetDrift();
    return [this.event("reset", null, previous, {})];
  }

  /** The snapshot the caller saves as JSON (the format the node has always written, plus optional fields). */
  toState(): LifecycleState {
    const active = this.active;
    return {
      format: "iot-isolation-forest-node",
      features: this.options.features,
      lastVersion: this.lastVersion,
      model: active
        ? {
            version: active.version,
            rows: active.rows,
            trainedAt: new Date(active.createdAt).toISOString(),
            ...this.options.parameters,
            contamination: this.options.forest.contamination,
            forest: active.forest,
            reason: active.reason,
            from: active.from,
            to: active.to,
            trainingMs: active.trainingMs,
            reference: this.drift.referenceSample(),
          }
        : null,
      warmupRows: this.warmupRows,
      warmupFrom: this.warmupFrom,
      warmupTo: this.warmupTo,
    };
  }

  // ---- internals ---------------------------------------------------------------------------------------------

  private nextVersion(): number {
    const stored = this.registry ? this.registry.maxVersion(this.options.detectorId) : 0;
    return Math.max(this.lastVersion, stored) + 1;
  }

  private requireRegistry(operation: string): ModelRegistry {
    if (this.registry) return this.registry;
    throw new Error(`${operation}: needs the models database, which is not open${this.options.registryProblem ? ` (${this.options.registryProblem})` : ""}`);
  }

  private activate(forest: IsolationForest, active: ActiveModel, reference: number[][] | null | undefined): void {
    this.model = forest;
    this.active = active;
    if (reference) {
      try {
        this.drift.setReferenceSample(reference);
      } catch {
        this.drift.clearReference(); // a damaged sample: the next full window becomes the reference
      }
    } else {
      this.drift.clearReference();
    }
    this.resetDrift();
  }

  private activateStored(stored: ModelVersion, forest = IsolationForest.fromJSON(stored.model)): void {
    const reason = (["warm-up", "train", "drift", "imported"] as const).find((known) => known === stored.reason) ?? "train";
    this.activate(
      forest,
      { version: stored.version, rows: stored.trainingRows, createdAt: stored.createdAt, reason, from: stored.trainingFrom, to: stored.trainingTo, trainingMs: stored.trainingMs, forest: stored.model },
      stored.referenceSample,
    );
  }

  private activateSaved(saved: SavedModel): void {
    const createdAt = Date.parse(saved.trainedAt);
    this.activate(
      IsolationForest.fromJSON(saved.forest),
      {
        version: saved.version,
        rows: saved.rows,
        createdAt: Number.isFinite(createdAt) ? createdAt : this.now(),
        reason: saved.reason ?? "warm-up",
        from: saved.from ?? null,
        to: saved.to ?? null,
        trainingMs: saved.trainingMs ?? null,
        forest: saved.forest,
      },
      saved.reference,
    );
  }

  private importSaved(saved: SavedModel): void {
    this.activateSaved(saved);
    const forest = this.model as IsolationForest;
    const active = this.active as ActiveModel;
    (this.registry as ModelRegistry).add(
      this.options.detectorId,
      {
        version: active.version,
        createdAt: active.createdAt,
        reason: "imported",
        parameters: { ...this.options.forest, ...this.options.parameters, trainingSize: this.options.trainingSize },
        features: [...this.options.features],
        trainingRows: active.rows,
        trainingFrom: active.from,
        trainingTo: active.to,
        trainingMs: active.trainingMs,
        trainingSummary: forest.trainingSummary,
        threshold: forest.threshold,
        referenceSample: this.drift.referenceSample(),
        model: active.forest,
      },
      true,
      this.now(),
    );
    this.lastVersion = Math.max(this.lastVersion, active.version);
  }

  private resetDrift(): void {
    this.drift.clearWindow();
    this.drift.lastCheck = null;
    this.lastPValue = null;
    this.driftSeen = false;
    this.suspicion = null;
  }

  private event(event: LifecycleEventName, version: number | null, previousVersion: number | null, details: Record<string, unknown>): LifecycleEvent {
    return { event, version, previousVersion, at: this.now(), details };
  }
}

function driftDetails(check: DriftCheck, retrain: boolean): Record<string, unknown> {
  return {
    pValue: check.pValue,
    feature: check.feature,
    alpha: check.alpha,
    threshold: check.threshold,
    features: check.features,
    window: check.window,
    referenceSize: check.referenceSize,
    retrain,
  };
}
