// Waiting helpers for node tests with node-red-node-test-helper: collect what a helper node receives, wait for a
// node's next matching status, and bound every wait with a message saying what did not arrive.
import type { EventEmitter } from "node:events";
import type { Node, NodeMessage, NodeStatus } from "node-red";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Message = Record<string, any>;

/** Messages a helper node receives, in order; `next()` waits for the next one. */
export function inbox(node: Node) {
  const received: Message[] = [];
  const waiting: Array<(msg: Message) => void> = [];
  node.on("input", (msg: NodeMessage) => {
    const waiter = waiting.shift();
    if (waiter) waiter(msg as Message);
    else received.push(msg as Message);
  });
  return {
    get queued() {
      return received.length;
    },
    next(what = "a message", ms = 20_000): Promise<Message> {
      const first = received.shift();
      if (first) return Promise.resolve(first);
      let waiter!: (msg: Message) => void;
      const arrival = new Promise<Message>((resolve) => waiting.push((waiter = resolve)));
      // A wait that times out must not swallow the message that comes later.
      return within(arrival, ms, what).finally(() => {
        const index = waiting.indexOf(waiter);
        if (index >= 0) waiting.splice(index, 1);
      });
    },
    async take(count: number, what: string, ms = 20_000): Promise<Message[]> {
      const messages: Message[] = [];
      for (let index = 0; index < count; index++) messages.push(await this.next(`${what} (${index} of ${count} so far)`, ms));
      return messages;
    },
  };
}

/** The next status of `node` that matches. */
export function nextStatus(node: Node, predicate: (status: NodeStatus) => boolean, what: string, ms = 20_000): Promise<NodeStatus> {
  const events = node as unknown as EventEmitter;
  return within(
    new Promise((resolve) => {
      const listener = (call: { args: [NodeStatus] }) => {
        if (!predicate(call.args[0])) return;
        events.removeListener("call:status", listener);
        resolve(call.args[0]);
      };
      events.on("call:status", listener);
    }),
    ms,
    what,
  );
}

export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls until `read` gives a value `accept` takes (commits are coalesced on a ~1 s interval). */
