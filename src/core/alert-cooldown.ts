// Alert cool-down: after a key (a sensor, a sensor-metric) raises an alert, further alerts for it are suppressed
// for a number of events and/or a span of time, so one long fault reads as one alert instead of hundreds. Only the
// first detection inside a fault is useful to an operator (and is all NAB's scorer rewards), while the repeats
// bury it. The cool-down restarts at each alert that is let through, not at suppressed ones, so a fault longer than
// the cool-down is re-announced once per cool-down period.

export interface AlertCooldownOptions {
  /** Events of the same key after an alert during which further alerts are suppressed. 0: no event cool-down. */
  events?: number;
  /** Milliseconds (of event time) after an alert during which further alerts are suppressed. 0: none. */
  milliseconds?: number;
}

export interface AlertCooldownSnapshot {
  version: 1;
  /** [key, events seen since its last alert, event time of its last alert in ms]. */
  keys: Array<[key: string, eventsSinceAlert: number, lastAlertMs: number]>;
}

interface KeyState {
  eventsSinceAlert: number;
  lastAlertMs: number;
}

function checkSpan(name: string, value: unknown): number {
  if (value === undefined) return 0;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new RangeError(`"${name}" must be a number of ${name} of at least 0 (got ${JSON.stringify(value)})`);
  }
  return value;
}

export class AlertCooldown {
  readonly events: number;
  readonly milliseconds: number;
  private readonly keys = new Map<string, KeyState>();

  constructor(options: AlertCooldownOptions = {}) {
    this.events = Math.floor(checkSpan("events", options.events));
    this.milliseconds = checkSpan("milliseconds", options.milliseconds);
  }

  /** True when neither span is set: every flagged event is an alert. */
  get disabled(): boolean {
    return this.events === 0 && this.milliseconds === 0;
  }

  /**
   * Call once per judged event of `key`, in order. Returns whether the event is an alert: it was flagged and the key
   * is not cooling down from an earlier alert.
   */
  admit(key: string, flagged: boolean, timestampMs: number): boolean {
    if (this.disabled) return flagged;
    if (timestampMs - timestampMs !== 0) {
      throw new RangeError(`alert cool-down "timestampMs" must be a finite number of milliseconds (got ${String(timestampMs)})`);
    }
    let state = this.keys.get(key);
    if (state === undefined) {
      if (!flagged) return false; // nothing to remember for a key that never alerted
      state = { eventsSinceAlert: Number.POSITIVE_INFINITY, lastAlertMs: Number.NEGATIVE_INFINITY };
      this.keys.set(key, state);
    } else {
      state.eventsSinceAlert++;
    }
    const cooling = this.cooling(state, timestampMs);
    if (!flagged) {
      // A key whose cool-down is over behaves exactly like one never seen: forget it, so memory and snapshots hold
      // only the keys still cooling down.
      if (!cooling) this.keys.delete(key);
      return false;
    }
    if (cooling) return false;
    state.eventsSinceAlert = 0;
    state.lastAlertMs = timestampMs;
    return true;
  }

  /** Keys currently remembered (cooling down, or not yet seen unflagged since their cool-down ended). */
  get size(): number {
    return this.keys.size;
  }

  /** Forget every key (after a reset of the detector it belongs to). */
  clear(): void {
    this.keys.clear();
  }

  snapshot(): AlertCooldownSnapshot {
    const keys: AlertCooldownSnapshot["keys"] = [];
    for (const [key, state] of this.keys) {
      // JSON has no Infinity: a key that never alerted is not stored in the first place.
      keys.push([key, Math.min(state.eventsSinceAlert, Number.MAX_SAFE_INTEGER), state.lastAlertMs]);
    }
    return { version: 1, keys };
  }

  /** Replaces every key with those of a snapshot; throws (changing nothing) when the snapshot is malformed. */
  restore(snapshot: AlertCooldownSnapshot): void {
    if (snapshot?.version !== 1 || !Array.isArray(snapshot.keys)) {
      throw new TypeError("alert cool-down snapshot is not a version 1 snapshot");
    }
    const keys = new Map<string, KeyState>();
    for (const entry of snapshot.keys) {
      const [key, eventsSinceAlert, lastAlertMs] = Array.isArray(entry) ? entry : [];
      if (typeof key !== "string" || typeof eventsSinceAlert !== "number" || !(eventsSinceAlert >= 0) ||
        typeof lastAlertMs !== "number" || !Number.isFinite(lastAlertMs)) {
        throw new TypeError(`alert cool-down snapshot has a malformed key entry (${JSON.stringify(entry)})`);
      }
      keys.set(key, { eventsSinceAlert, lastAlertMs });
    }
    this.keys.clear();
    for (const [key, state] of keys) this.keys.set(key, state);
  }

  private cooling(state: KeyState, timestampMs: number): boolean {
    if (state.eventsSinceAlert <= this.events) return true;
    // Only when a time span is set: with events alone, a late event (timestamp before the last alert) must not
    // count as cooling down by a 0 ms span.
    return this.milliseconds > 0 && timestampMs - state.lastAlertMs < this.milliseconds;
  }
}
