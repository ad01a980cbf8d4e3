// Pieces shared by producer.ts and consumer.ts: settings → connection, status bookkeeping, error classification,
// and a sleep that close()/stop() can cut short.
import { EventEmitter } from "events";
import { buildKafkaConnection, type KafkaConnection, type KafkaConnectionSettings } from "./connection-options";
import type { KafkaClientProblem, KafkaClientState, KafkaClientStatus } from "./types";

export function toConnection(settings: KafkaConnectionSettings | KafkaConnection): KafkaConnection {
  return "kafkaConfig" in settings ? settings : buildKafkaConnection(settings);
}

/** The client was closed while an operation waited for it. */
export class KafkaClientClosedError extends Error {
  constructor(what: string) {
    super(`${what}: the Kafka client was closed`);
    this.name = "KafkaClientClosedError";
  }
}

const CONNECTION_ERROR_NAMES = new Set([
  "KafkaJSConnectionError",
  "KafkaJSConnectionClosedError",
  "KafkaJSBrokerNotFound",
  "KafkaJSRequestTimeoutError",
  "KafkaJSNoBrokerAvailableError",
  "KafkaJSLockTimeout",
]);

/** The errors of an error and of its kafkajs `cause` chain (kafkajs wraps the real cause in NumberOfRetriesExceeded). */
function causeChain(error: unknown): Array<Error & { retriable?: boolean; cause?: unknown }> {
  const chain: Array<Error & { retriable?: boolean; cause?: unknown }> = [];
  let current = error as (Error & { retriable?: boolean; cause?: unknown }) | undefined;
  while (current && typeof current === "object" && chain.length < 10) {
    chain.push(current);
    current = current.cause as typeof current;
  }
  return chain;
}

/** True when retrying later can succeed (broker down, leader moving, timeout); false for e.g. bad credentials. */
export function isRetriableKafkaError(error: unknown): boolean {
  return causeChain(error).some((item) => item.retriable === true || CONNECTION_ERROR_NAMES.has(item.name));
}

/** True when the error means the brokers cannot be reached (for a "disconnected" status). */
export function isConnectionError(error: unknown): boolean {
  return causeChain(error).some((item) => CONNECTION_ERROR_NAMES.has(item.name) || /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND/.test(item.message ?? ""));
}

/** The innermost message, which is the useful one ("connect ECONNREFUSED 127.0.0.1:9092", not "retries exceeded"). */
export function rootMessage(error: unknown): string {
  const chain = causeChain(error);
  const last = chain[chain.length - 1];
  return last?.message ?? String(error);
}

/** Status and problem reporting for our client classes. Never emits Node's special "error" event. */
export class StatusEmitter extends EventEmitter {
  private currentStatus: KafkaClientStatus = { state: "disconnected" };

  get status(): KafkaClientStatus {
    return this.currentStatus;
  }

  protected setStatus(state: KafkaClientState, detail?: string, error?: Error): void {
    const previous = this.currentStatus;
    if (previous.state === state && previous.detail === detail && previous.error === error) return;
    this.currentStatus = { state, detail, error };
    this.safeEmit("status", this.currentStatus);
  }

  protected problem(context: string, error: unknown): void {
    const problem: KafkaClientProblem = { context, error: error instanceof Error ? error : new Error(String(error)) };
    this.safeEmit("problem", problem);
  }

  /** A listener that throws must not break the Kafka client (nor, through it, Node-RED). */
  protected safeEmit(event: string, value: unknown): void {
    try {
      this.emit(event, value);
    } catch (error) {
      if (event !== "problem") {
        try {
          this.emit("problem", { context: `"${event}" listener`, error });
        } catch {
          // nothing more we can do
        }
      }
    }
  }
}

/** setTimeout as a promise that `wake()` resolves early (on close/stop). */
export class Sleeper {
  private timers = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const entry = {
        timer: setTimeout(() => {
          this.timers.delete(entry);
          resolve();
        }, ms),
        resolve,
      };
      this.timers.add(entry);
    });
  }

  wakeAll(): void {
    for (const entry of this.timers) {
      clearTimeout(entry.timer);
      entry.resolve();
    }
    this.timers.clear();
  }
}

/** Waits for `promise` to settle, but no longer than `ms` (close paths must not hang on a dead broker). */
export async function settleWithin(promise: Promise<unknown> | null | undefined, ms: number): Promise<boolean> {
  if (!promise) return true;
  let timer: NodeJS.Timeout | undefined;
  const settled = await Promise.race([
    promise.then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    }),
  ]);
  clearTimeout(timer);
  return settled;
}
