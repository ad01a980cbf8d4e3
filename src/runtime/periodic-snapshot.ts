// Saves a node's state on a timer and on close, so a restart (even a crash) resumes from a recent snapshot.
// The timer's saves write the file off the event loop: with thousands of sensors a snapshot is megabytes (18 MB
// for 5000 sensors of 3 metrics in rolling-3-sigma, where writing it took about 100 ms), and a synchronous write
// held every message for that long each interval. Capturing the state and turning it into JSON stay synchronous:
// the snapshot must be one consistent moment of the detector.
import { loadJson, saveJsonTextAtomic, saveJsonTextInBackground } from "../core/json-file-store";

export class PeriodicSnapshot<T> {
  private timer: NodeJS.Timeout | undefined;
  private dirty = false;
  /** Counts captures: a background write replaces the file only if no capture came after its own. */
  private captures = 0;
  private writing: Promise<void> | null = null;

  constructor(
    private readonly path: string,
    private readonly capture: () => T,
    private readonly onError: (error: Error) => void,
    /** The state as JSON text; a detector can write its own faster than JSON.stringify (rolling-sigma's snapshotJson). */
    private readonly toJson: (state: T) => string = JSON.stringify,
  ) {}

  load(): T | undefined {
    return loadJson<T>(this.path);
  }

  /** Marks state as changed; the next tick writes it. */
  touch(): void {
    this.dirty = true;
  }

  start(intervalMs: number): void {
    this.timer = setInterval(() => {
      if (this.dirty && this.writing === null) this.saveInBackground();
    }, intervalMs);
    this.timer.unref();
  }

  /** Writes the state now, synchronously (after training a model, and on close). */
  save(): void {
    this.dirty = false;
    this.captures++;
    try {
      saveJsonTextAtomic(this.path, this.toJson(this.capture()));
    } catch (error) {
      this.onError(error as Error);
    }
  }

  /** Resolves once no background write is under way (for tests, and for callers that must see the file). */
  settled(): Promise<void> {
    return this.writing ?? Promise.resolve();
  }

  private saveInBackground(): void {
    this.dirty = false;
    const capture = ++this.captures;
    let text: string;
    try {
      text = this.toJson(this.capture());
    } catch (error) {
      this.onError(error as Error);
      return;
    }
    this.writing = saveJsonTextInBackground(this.path, text, () => capture === this.captures).then(
      () => {
        this.writing = null;
      },
      (error: Error) => {
        this.writing = null;
        // Not written: the next tick tries again, unless a newer capture already took its place.
        if (capture === this.captures) this.dirty = true;
        this.onError(error);
      },
    );
  }

  /**
   * Stops the timer and writes a last snapshot, synchronously, if anything changed or a background write is still
   * under way (a node started next, on redeploy, reads the file at once). That write then finds a newer capture and
   * leaves the file alone.
   */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.dirty || this.writing !== null) this.save();
  }
}
