// A stream detector whose alerts pass through the package's AlertCooldown: after an alert, further alerts within
// `rows` rows are held back. NAB rewards only the first detection in a window, and a flow's operator only needs
// the first alert of a fault, so the repeats are noise in both.
import { AlertCooldown } from "../alert-cooldown";
import { ALERT_LEVEL, type StreamDetector } from "./types";

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
