// Status painting without a status call per message: state changes show at once, counters at most every 500 ms
// (status calls cost, and a busy node would otherwise repaint per message), the last one always shown.
import type { Node, NodeStatus } from "node-red";

export class ThrottledStatus {
  private timer: NodeJS.Timeout | undefined;
  private lastPaintAt = 0;
  private render: (() => NodeStatus | null) | null = null;
  private stopped = false;

  constructor(
    private readonly node: Node,
    private readonly intervalMs = 500,
  ) {}

  /** Paints `status` now and cancels a pending counter repaint. */
  now(status: NodeStatus): void {
    if (this.stopped) return;
    this.cancel();
    this.lastPaintAt = Date.now();
    this.node.status(status);
  }

  /** Paints what `render` returns (null: nothing) within `intervalMs`, coalescing calls in between. */
  soon(render: () => NodeStatus | null): void {
    if (this.stopped) return;
    this.render = render;
    if (this.timer !== undefined) return;
    const wait = this.lastPaintAt + this.intervalMs - Date.now();
    const paint = () => {
      this.timer = undefined;
      const status = this.render?.();
      this.render = null;
      if (status && !this.stopped) {
        this.lastPaintAt = Date.now();
        this.node.status(status);
      }
    };
    if (wait <= 0) paint();
    else {
      this.timer = setTimeout(paint, wait);
      this.timer.unref?.();
    }
  }

  private cancel(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.render = null;
  }

  /** No more painting (close). */
  stop(): void {
    this.cancel();
    this.stopped = true;
  }
}
