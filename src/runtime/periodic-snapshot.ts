// Saves a node's state on a timer and on close, so a restart (even a crash) resumes from a recent snapshot.
import { loadJson, saveJsonAtomic } from "../core/json-file-store";

export class PeriodicSnapshot<T> {
  private timer: NodeJS.Timeout | undefined;
  private dirty = false;

  constructor(
    private readonly path: string,
    private readonly capture: () => T,
    private readonly onError: (error: Error) => void,
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
      if (this.dirty) this.save();
    }, intervalMs);
    this.timer.unref();
  }

  save(): void {
    this.dirty = false;
    try {
      saveJsonAtomic(this.path, this.capture());
    } catch (error) {
      this.onError(error as Error);
    }
  }

  /** Stops the timer and writes a last snapshot if anything changed. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.dirty) this.save();
  }
}
