// A stream detector whose alerts pass through the package's AlertCooldown: after an alert, further alerts within
// `rows` rows are held back. NAB rewards only the first detection in a window, and a flow's operator only needs
// the first alert of a fault, so the repeats are noise in both.
import { AlertCooldown, type AlertCooldownSnapshot } from "../alert-cooldown";
import { ALERT_LEVEL, type StreamDetector } from "./types";

/** A stream detector whose state can be saved as JSON and taken over again (a node's state file). */
export interface RestorableStreamDetector extends StreamDetector {
  snapshot(): unknown;
  /** Throws, changing nothing, when the snapshot is malformed or does not fit the detector. */
  restore(snapshot: unknown): void;
}

export function isRestorable(detector: StreamDetector): detector is RestorableStreamDetector {
  const candidate = detector as Partial<RestorableStreamDetector>;
  return typeof candidate.snapshot === "function" && typeof candidate.restore === "function";
}

export interface WithCooldownSnapshot {
  cooldown: AlertCooldownSnapshot;
  inner: unknown;
}

export class WithCooldown implements StreamDetector {
  private readonly cooldown: AlertCooldown;

  constructor(private readonly inner: StreamDetector, rows: number) {
    this.cooldown = new AlertCooldown({ events: rows });
  }

  score(timestampMs: number, value: number): number {
    const score = this.inner.score(timestampMs, value);
    const alert = score >= ALERT_LEVEL;
    // The cool-down counts rows only (no time span), so the time passed does not matter: NAB files repeat times.
    if (this.cooldown.admit("series", alert, 0) || !alert) return score;
    // Held back: below the alert level, still ranked by strength for a benchmark's threshold sweep.
    return score * ALERT_LEVEL;
  }

  /** The cool-down and the inner detector's state; throws when the inner detector cannot be saved. */
  snapshot(): WithCooldownSnapshot {
    if (!isRestorable(this.inner)) throw new TypeError("the detector inside this cool-down cannot be saved");
    return { cooldown: this.cooldown.snapshot(), inner: this.inner.snapshot() };
  }

  restore(snapshot: WithCooldownSnapshot): void {
    if (!isRestorable(this.inner)) throw new TypeError("the detector inside this cool-down cannot be restored");
    if (snapshot === null || typeof snapshot !== "object") throw new TypeError("cool-down snapshot is malformed");
    // The cool-down checks its snapshot without changing anything when it throws; so does the inner detector. Both
    // are checked before either changes: a scratch cool-down takes the snapshot first.
    new AlertCooldown({ events: this.cooldown.events }).restore(snapshot.cooldown);
    this.inner.restore(snapshot.inner);
    this.cooldown.restore(snapshot.cooldown);
  }
}

/** Several detectors on the same series; the score is the highest of theirs, so any one of them can alert. */
export class MaxOfDetectors implements StreamDetector {
  constructor(private readonly members: readonly StreamDetector[]) {}

  score(timestampMs: number, value: number): number {
    let highest = 0;
    for (const member of this.members) highest = Math.max(highest, member.score(timestampMs, value));
    return highest;
  }
}
