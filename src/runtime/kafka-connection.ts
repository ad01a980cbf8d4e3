// One shared Kafka connection per kafka-broker config node: the validated settings, the kafka-in / kafka-out nodes
// registered with it (as Node-RED's mqtt-broker keeps its users), one producer shared by every user and created on
// first use, and the consumers of the kafka-in nodes. No RED here: the config node wires it to Node-RED.
import { settleWithin } from "../core/kafka/client-support";
import {
  buildKafkaConnection,
  formatLogRecord,
  KafkaEventConsumer,
  KafkaEventProducer,
  type ConsumerOptions,
  type KafkaClientStatus,
  type KafkaConnection,
  type KafkaConnectionSettings,
  type KafkaLogRecord,
  type KafkaLogSink,
} from "../core/kafka";

/** A node using the connection. `producerStatus` is set by users of the shared producer (kafka-out). */
export interface KafkaConnectionUser {
  readonly id: string;
  producerStatus?: (status: KafkaClientStatus) => void;
}

/** Where a client's kafkajs log lines and connection trouble go (usually the node that owns the client). */
export interface KafkaLogTarget {
  /** One formatted kafkajs log line ("[Connection] Connection error: ..."); for the Node-RED log, not the sidebar. */
  log: (line: string, level: KafkaLogRecord["level"]) => void;
  /**
   * kafkajs failed to reach a broker. kafkajs retries inside connect() for about a minute before our client reports
   * "disconnected"; this comes at the first failure, so a node can turn red at once.
   */
  connectionTrouble?: (message: string) => void;
}

const CONNECTION_TROUBLE = /Connection error|Failed to connect|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|Connection timeout|SASL|authentication/i;

/** A kafkajs log sink that formats lines for `target.log` and spots connection failures. */
export function logSinkFor(target: KafkaLogTarget): KafkaLogSink {
  return (record) => {
    target.log(formatLogRecord(record), record.level);
    if (record.level === "error" && target.connectionTrouble && (record.namespace === "Connection" || record.namespace === "BrokerPool")) {
      const error = record.fields.error;
      const text = `${record.message} ${typeof error === "string" ? error : ""}`;
      if (CONNECTION_TROUBLE.test(text)) target.connectionTrouble(connectionErrorText(record));
    }
  };
}

/** "connect ECONNREFUSED 127.0.0.1:1" out of "Connection error: connect ECONNREFUSED 127.0.0.1:1 (repeated …)". */
function connectionErrorText(record: KafkaLogRecord): string {
  const error = typeof record.fields.error === "string" ? record.fields.error : record.message;
  return error
    .replace(/^.*?(Connection error|Failed to connect[^:]*):\s*/i, "")
    .replace(/^Connection error:\s*/i, "")
    .replace(/\s*\(repeated \d+ more times\)$/, "");
}

/** Waits for `condition` (polled every 50 ms) at most `ms`; true if it held. */
async function waitFor(condition: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}

export class SharedKafkaConnection {
  /** Validated settings (built once: a bad setting throws KafkaConfigError naming it at construction). */
  readonly connection: KafkaConnection;
  private readonly users = new Map<string, KafkaConnectionUser>();
  private readonly consumers = new Set<KafkaEventConsumer>();
  private sharedProducer: KafkaEventProducer | null = null;
  private producerClosing: Promise<void> | null = null;
  private closing = false;

  /**
   * @param settings connection settings from the config node (credentials included)
   * @param producerLog where the shared producer's kafkajs lines go (the config node's log)
   * @param onProducerProblem the producer's own problem reports (connect failures, ...)
   */
  constructor(
    private readonly settings: KafkaConnectionSettings,
    private readonly producerLog: KafkaLogTarget,
    private readonly onProducerProblem: (context: string, error: Error) => void = () => {},
  ) {
    this.connection = buildKafkaConnection(settings);
  }

  get brokers(): string {
    return this.connection.brokers.join(",");
  }

  get userCount(): number {
    return this.users.size;
  }

  register(user: KafkaConnectionUser): void {
    this.users.set(user.id, user);
    if (user.producerStatus) {
      const producer = this.producer();
      user.producerStatus(producer.status);
    }
  }

  /** Removes a user; the last one leaving closes the shared producer (a new user later creates a new one). */
  async deregister(user: KafkaConnectionUser): Promise<void> {
    if (this.users.get(user.id) === user) this.users.delete(user.id);
    if (this.users.size === 0) await this.closeProducer();
  }

  /** The shared producer, created and connecting on first use. */
  producer(): KafkaEventProducer {
    if (this.sharedProducer) return this.sharedProducer;
    const producerLog = this.producerLog;
    const producer = new KafkaEventProducer(
      buildKafkaConnection({
        ...this.settings,
        logSink: logSinkFor({
          log: producerLog.log,
          connectionTrouble: (message) => {
            if (this.sharedProducer !== producer || producer.status.state === "connected") return;
            this.broadcastProducerStatus({ state: "disconnected", detail: "retrying", error: new Error(message) });
          },
        }),
      }),
    );
    producer.on("status", (status) => {
      if (this.sharedProducer === producer) this.broadcastProducerStatus(status);
    });
    producer.on("problem", ({ context, error }) => this.onProducerProblem(context, error));
    this.sharedProducer = producer;
    void producer.connect();
    return producer;
  }

  private broadcastProducerStatus(status: KafkaClientStatus): void {
    for (const user of this.users.values()) {
      try {
        user.producerStatus?.(status);
      } catch {
        // a user's status painter must not break the others
      }
    }
  }

  /** A consumer for a kafka-in node, logging to `log`. The node starts and stops it, then calls `releaseConsumer`. */
  createConsumer(options: ConsumerOptions, log: KafkaLogTarget): KafkaEventConsumer {
    const consumer = new KafkaEventConsumer(buildKafkaConnection({ ...this.settings, logSink: logSinkFor(log) }), options);
    this.consumers.add(consumer);
    return consumer;
  }

  releaseConsumer(consumer: KafkaEventConsumer): void {
    this.consumers.delete(consumer);
  }

  private closeProducer(): Promise<void> {
    const producer = this.sharedProducer;
    if (!producer) return this.producerClosing ?? Promise.resolve();
    this.sharedProducer = null;
    // close() itself is bounded (2 s for a pending connect, 5 s for the disconnect).
    this.producerClosing = producer.close().catch(() => {});
    return this.producerClosing;
  }

  /**
   * The config node closes (redeploy, shutdown): its users close at the same time and deregister, which closes the
   * producer once the last has finished its sends. Bounded so Node-RED's 15 s close timeout is never reached.
   */
  async close(waitForUsersMs = 6000): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await waitFor(() => this.users.size === 0, waitForUsersMs);
    this.users.clear();
    const leftovers = [...this.consumers].map((consumer) => settleWithin(consumer.stop({ drainTimeoutMs: 0 }), 6000));
    this.consumers.clear();
    await Promise.all([this.closeProducer(), ...leftovers]);
  }
}

/**
 * A kafka-broker config node as its users see it (`RED.nodes.getNode(config.broker)`): the shared connection, or
 * why there is none (a setting that cannot work, named in the error).
 */
export interface KafkaBrokerConfigNode {
  readonly type: string;
  readonly name?: string;
  kafka: SharedKafkaConnection | null;
  configError: Error | null;
}

/** The shared connection of the broker config node `brokerId`, or an Error naming what is wrong ("broker"). */
export function lookUpBroker(getNode: (id: string) => unknown, brokerId: string | undefined): SharedKafkaConnection | Error {
  if (!brokerId) return new Error(`"broker" is not set: choose or add a kafka-broker configuration`);
  const broker = getNode(brokerId) as KafkaBrokerConfigNode | null;
  if (!broker || broker.type !== "iot-kafka-broker") {
    return new Error(`"broker": the kafka-broker configuration ${brokerId} is missing or disabled`);
  }
  if (!broker.kafka) {
    const reason = broker.configError?.message ?? "it did not start";
    return new Error(`kafka-broker${broker.name ? ` "${broker.name}"` : ""}: ${reason}`);
  }
  return broker.kafka;
}

/** True the first time a text is seen and then at most once per `intervalMs`: keeps a dead broker from flooding the sidebar. */
export function createRepeatLimiter(intervalMs = 60_000, now: () => number = Date.now): (text: string) => boolean {
  const lastShown = new Map<string, number>();
  return (text) => {
    const time = now();
    const last = lastShown.get(text);
    if (last !== undefined && time - last < intervalMs) return false;
    lastShown.set(text, time);
    if (lastShown.size > 200) lastShown.delete(lastShown.keys().next().value as string);
    return true;
  };
}

/** A numeric node property: blank -> fallback; number-like text -> number; anything else passed on for the check to quote. */
export function numberSetting(value: unknown, fallback: number): number {
  if (value === undefined || value === null || String(value).trim() === "") return fallback;
  const number = Number(value);
  return (Number.isFinite(number) ? number : value) as number;
}
