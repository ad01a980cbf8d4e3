// Our Kafka connection settings (what a broker config node holds) validated once and turned into a kafkajs config.
// Errors name the field; kafkajs' own log lines can be routed to the node's log through `logSink`.
// First: replaces two slow steps of kafkajs before kafkajs loads (see the file).
import "./kafkajs-speedups";
import { logLevel as KafkaLogLevel, type KafkaConfig, type logCreator, type LogEntry, type RetryOptions, type SASLOptions } from "kafkajs";
import type { ConnectionOptions as TlsConnectionOptions } from "tls";

export type SaslMechanism = "plain" | "scram-sha-256" | "scram-sha-512";
export const SASL_MECHANISMS: readonly SaslMechanism[] = ["plain", "scram-sha-256", "scram-sha-512"];

export interface KafkaTlsSettings {
  /** PEM text of the CA that signed the broker certificates; omit to use Node's bundled public CAs. */
  ca?: string | Buffer;
  /** PEM client certificate and key, for brokers that require mutual TLS. Give both or neither. */
  cert?: string | Buffer;
  key?: string | Buffer;
  passphrase?: string;
  /** Default true. False accepts any certificate: only for a test broker with a self-signed certificate. */
  rejectUnauthorized?: boolean;
  /** SNI / certificate host name, when the broker is reached by an address that is not in its certificate. */
  servername?: string;
}

export interface KafkaSaslSettings {
  mechanism: SaslMechanism;
  username: string;
  password: string;
}

/** Exponential backoff between retries of one request (and of our own reconnect loops). */
export interface KafkaRetrySettings {
  /** First wait, in ms (default 300). */
  initialRetryTimeMs?: number;
  /** Longest wait between two tries, in ms (default 30000). */
  maxRetryTimeMs?: number;
  /** Growth of the wait per try (default 2). */
  multiplier?: number;
  /** Randomisation of each wait, 0..1 (default 0.2), so many clients do not retry in step. */
  factor?: number;
  /** Tries per request before kafkajs gives up and reports the error (default 8: about a minute in all). */
  retries?: number;
}

export type KafkaLogLevelName = "nothing" | "error" | "warn" | "info" | "debug";

export interface KafkaLogRecord {
  level: Exclude<KafkaLogLevelName, "nothing">;
  /** kafkajs component, e.g. "Connection", "Consumer", "Producer". */
  namespace: string;
  message: string;
  /** kafkajs' structured fields (broker, groupId, error, ...) without message/timestamp. */
  fields: Record<string, unknown>;
}

export type KafkaLogSink = (record: KafkaLogRecord) => void;

export interface KafkaConnectionSettings {
  /** "host:port,host:port" (commas or spaces between entries). */
  brokers: string;
  clientId?: string;
  /** Enable TLS: `true` for the default trust store, or settings. */
  tls?: boolean | KafkaTlsSettings;
  sasl?: KafkaSaslSettings;
  /** TCP connect timeout in ms (default 3000). */
  connectionTimeoutMs?: number;
  /** Time a broker has to answer one request, in ms (default 30000). */
  requestTimeoutMs?: number;
  retry?: KafkaRetrySettings;
  /** Where kafkajs' log lines go; without one they are dropped (kafkajs would print JSON to stdout). */
  logSink?: KafkaLogSink;
  /** Lowest level passed to `logSink` (default "warn"). */
  logLevel?: KafkaLogLevelName;
  /** Identical log lines within this many ms are collapsed into one "(repeated N times)" line (default 10000). */
  logRepeatWindowMs?: number;
}

/** A connection setting that cannot work. `field` names the setting as the user sees it. */
export class KafkaConfigError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(message);
    this.name = "KafkaConfigError";
    this.field = field;
  }
}

export const DEFAULT_RETRY: Required<KafkaRetrySettings> = {
  initialRetryTimeMs: 300,
  maxRetryTimeMs: 30_000,
  multiplier: 2,
  factor: 0.2,
  retries: 8,
};

const HOST_PATTERN = /^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/;

/** Splits and checks "host:port,host:port"; an IPv6 address is written "[::1]:9092". */
export function parseBrokers(text: unknown, field = "brokers"): string[] {
  if (typeof text !== "string" || text.trim() === "") {
    throw new KafkaConfigError(field, `"${field}" is empty: give at least one broker as host:port, e.g. "127.0.0.1:9092"`);
  }
  const entries = text.split(/[\s,]+/).filter((entry) => entry !== "");
  const brokers: string[] = [];
  for (const entry of entries) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(entry)) {
      throw new KafkaConfigError(field, `"${field}": write host:port without a scheme (got "${entry}")`);
    }
    const match = /^(\[[0-9A-Fa-f:.]+\]|[^:\[\]]+):(\d+)$/.exec(entry);
    if (!match) {
      throw new KafkaConfigError(field, `"${field}": "${entry}" is not host:port (e.g. "kafka-1:9092")`);
    }
    const [, host, portText] = match;
    const port = Number(portText);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new KafkaConfigError(field, `"${field}": port of "${entry}" must be 1..65535`);
    }
    if (!host.startsWith("[") && !HOST_PATTERN.test(host)) {
      throw new KafkaConfigError(field, `"${field}": "${host}" is not a valid host name in "${entry}"`);
    }
    if (!brokers.includes(entry)) brokers.push(entry);
  }
  return brokers;
}

function checkPositiveInteger(value: unknown, field: string, fallback: number, max = 2 ** 31 - 1): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > max) {
    throw new KafkaConfigError(field, `"${field}" must be a whole number from 1 to ${max} (got ${JSON.stringify(value)})`);
  }
  return value;
}

function buildRetry(settings: KafkaRetrySettings | undefined): RetryOptions {
  const retry = { ...DEFAULT_RETRY, ...stripUndefined(settings ?? {}) };
  checkPositiveInteger(retry.initialRetryTimeMs, "retry.initialRetryTimeMs", DEFAULT_RETRY.initialRetryTimeMs);
  checkPositiveInteger(retry.maxRetryTimeMs, "retry.maxRetryTimeMs", DEFAULT_RETRY.maxRetryTimeMs);
  if (retry.maxRetryTimeMs < retry.initialRetryTimeMs) {
    throw new KafkaConfigError("retry.maxRetryTimeMs", `"retry.maxRetryTimeMs" (${retry.maxRetryTimeMs}) must not be less than "retry.initialRetryTimeMs" (${retry.initialRetryTimeMs})`);
  }
  if (typeof retry.multiplier !== "number" || !(retry.multiplier >= 1 && retry.multiplier <= 10)) {
    throw new KafkaConfigError("retry.multiplier", `"retry.multiplier" must be a number from 1 to 10 (got ${JSON.stringify(retry.multiplier)})`);
  }
  if (typeof retry.factor !== "number" || !(retry.factor >= 0 && retry.factor <= 1)) {
    throw new KafkaConfigError("retry.factor", `"retry.factor" must be a number from 0 to 1 (got ${JSON.stringify(retry.factor)})`);
  }
  if (typeof retry.retries !== "number" || !Number.isInteger(retry.retries) || retry.retries < 0 || retry.retries > 100) {
    throw new KafkaConfigError("retry.retries", `"retry.retries" must be a whole number from 0 to 100 (got ${JSON.stringify(retry.retries)})`);
  }
  return {
    initialRetryTime: retry.initialRetryTimeMs,
    maxRetryTime: retry.maxRetryTimeMs,
    multiplier: retry.multiplier,
    factor: retry.factor,
    retries: retry.retries,
  };
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  const result: Partial<T> = {};
  for (const key of Object.keys(value) as (keyof T)[]) if (value[key] !== undefined) result[key] = value[key];
  return result;
}

function isPemLike(value: unknown): value is string | Buffer {
  return (typeof value === "string" && value.trim() !== "") || Buffer.isBuffer(value);
}

function buildTls(tls: boolean | KafkaTlsSettings | undefined): boolean | TlsConnectionOptions | undefined {
  if (tls === undefined || tls === false) return undefined;
  if (tls === true) return true;
  if (typeof tls !== "object" || tls === null) throw new KafkaConfigError("tls", `"tls" must be true, false or an object of TLS settings`);
  const options: TlsConnectionOptions = {};
  if (tls.ca !== undefined && tls.ca !== "") {
    if (!isPemLike(tls.ca)) throw new KafkaConfigError("tls.ca", `"tls.ca" must be PEM text`);
    if (typeof tls.ca === "string" && !tls.ca.includes("-----BEGIN")) {
      throw new KafkaConfigError("tls.ca", `"tls.ca" does not look like a PEM certificate (no "-----BEGIN" line); paste the file's content, not its path`);
    }
    options.ca = [tls.ca];
  }
  const hasCert = tls.cert !== undefined && tls.cert !== "";
  const hasKey = tls.key !== undefined && tls.key !== "";
  if (hasCert !== hasKey) {
    throw new KafkaConfigError(hasCert ? "tls.key" : "tls.cert", `client TLS needs both "tls.cert" and "tls.key" (only "${hasCert ? "tls.cert" : "tls.key"}" is set)`);
  }
  if (hasCert) {
    if (!isPemLike(tls.cert)) throw new KafkaConfigError("tls.cert", `"tls.cert" must be PEM text`);
    if (!isPemLike(tls.key)) throw new KafkaConfigError("tls.key", `"tls.key" must be PEM text`);
    options.cert = tls.cert;
    options.key = tls.key;
    if (tls.passphrase) options.passphrase = tls.passphrase;
  }
  if (tls.rejectUnauthorized !== undefined) {
    if (typeof tls.rejectUnauthorized !== "boolean") throw new KafkaConfigError("tls.rejectUnauthorized", `"tls.rejectUnauthorized" must be true or false`);
    options.rejectUnauthorized = tls.rejectUnauthorized;
  }
  if (tls.servername) options.servername = tls.servername;
  return options;
}

function buildSasl(sasl: KafkaSaslSettings | undefined): SASLOptions | undefined {
  if (sasl === undefined || sasl === null) return undefined;
  const mechanism = typeof sasl.mechanism === "string" ? sasl.mechanism.toLowerCase() : sasl.mechanism;
  if (!SASL_MECHANISMS.includes(mechanism as SaslMechanism)) {
    throw new KafkaConfigError("sasl.mechanism", `"sasl.mechanism" must be one of ${SASL_MECHANISMS.join(", ")} (got ${JSON.stringify(sasl.mechanism)})`);
  }
  if (typeof sasl.username !== "string" || sasl.username === "") {
    throw new KafkaConfigError("sasl.username", `"sasl.username" is empty: SASL ${mechanism} needs a user name`);
  }
  if (typeof sasl.password !== "string" || sasl.password === "") {
    throw new KafkaConfigError("sasl.password", `"sasl.password" is empty: SASL ${mechanism} needs a password`);
  }
  return { mechanism: mechanism as SaslMechanism, username: sasl.username, password: sasl.password } as SASLOptions;
}

const LEVEL_NAMES: Record<number, KafkaLogRecord["level"]> = {
  [KafkaLogLevel.ERROR]: "error",
  [KafkaLogLevel.WARN]: "warn",
  [KafkaLogLevel.INFO]: "info",
  [KafkaLogLevel.DEBUG]: "debug",
};

const LEVEL_VALUES: Record<KafkaLogLevelName, KafkaLogLevel> = {
  nothing: KafkaLogLevel.NOTHING,
  error: KafkaLogLevel.ERROR,
  warn: KafkaLogLevel.WARN,
  info: KafkaLogLevel.INFO,
  debug: KafkaLogLevel.DEBUG,
};

/**
 * A kafkajs logCreator that hands each line to `sink`. While a broker is down kafkajs logs the same connection
 * error on every retry; identical lines within `repeatWindowMs` are collapsed so a Node-RED log is not flooded.
 */
export function createLogCreator(sink: KafkaLogSink, repeatWindowMs = 10_000, now: () => number = Date.now): logCreator {
  const lastSeen = new Map<string, { at: number; suppressed: number }>();
  return () => (entry: LogEntry) => {
    const level = LEVEL_NAMES[entry.level];
    if (!level) return;
    const { message, timestamp: _timestamp, logger: _logger, ...fields } = entry.log as LogEntry["log"] & { logger?: unknown };
    const key = `${level}|${entry.namespace}|${message}|${fields.broker ?? ""}|${describeLogError(fields.error)}`;
    const time = now();
    const previous = lastSeen.get(key);
    if (previous && time - previous.at < repeatWindowMs) {
      previous.suppressed++;
      return;
    }
    const text = previous && previous.suppressed > 0 ? `${message} (repeated ${previous.suppressed} more times)` : message;
    lastSeen.set(key, { at: time, suppressed: 0 });
    if (lastSeen.size > 500) lastSeen.delete(lastSeen.keys().next().value as string);
    try {
      sink({ level, namespace: entry.namespace, message: text, fields });
    } catch {
      // A failing log sink must never break the Kafka client.
    }
  };
}

function describeLogError(error: unknown): string {
  if (error === undefined || error === null) return "";
  return typeof error === "string" ? error : (error as Error).message ?? String(error);
}

/** Formats a log record as one line for node.log / node.warn: `[Connection] Connection error (broker 127.0.0.1:9092): ...`. */
export function formatLogRecord(record: KafkaLogRecord): string {
  const details: string[] = [];
  if (record.fields.broker) details.push(`broker ${String(record.fields.broker)}`);
  if (record.fields.groupId) details.push(`group ${String(record.fields.groupId)}`);
  if (record.fields.topic) details.push(`topic ${String(record.fields.topic)}`);
  const error = describeLogError(record.fields.error);
  return `[${record.namespace}] ${record.message}${details.length ? ` (${details.join(", ")})` : ""}${error && !record.message.includes(error) ? `: ${error}` : ""}`;
}

/** Validated settings plus the kafkajs config built from them. */
export interface KafkaConnection {
  brokers: string[];
  clientId: string;
  retry: Required<KafkaRetrySettings>;
  kafkaConfig: KafkaConfig;
}

/** Checks every connection setting (throws KafkaConfigError naming the field) and builds the kafkajs config. */
export function buildKafkaConnection(settings: KafkaConnectionSettings): KafkaConnection {
  if (settings === null || typeof settings !== "object") throw new KafkaConfigError("brokers", "Kafka connection settings are missing");
  const brokers = parseBrokers(settings.brokers);
  const clientId = settings.clientId === undefined || settings.clientId === "" ? "node-red-iot-anomaly" : settings.clientId;
  if (typeof clientId !== "string" || !/^[A-Za-z0-9._-]{1,249}$/.test(clientId)) {
    throw new KafkaConfigError("clientId", `"clientId" may use letters, digits, ".", "_" and "-" only (got ${JSON.stringify(settings.clientId)})`);
  }
  const connectionTimeout = checkPositiveInteger(settings.connectionTimeoutMs, "connectionTimeoutMs", 3000, 600_000);
  const requestTimeout = checkPositiveInteger(settings.requestTimeoutMs, "requestTimeoutMs", 30_000, 600_000);
  const retry = buildRetry(settings.retry);
  const ssl = buildTls(settings.tls);
  const sasl = buildSasl(settings.sasl);
  const levelName = settings.logLevel ?? "warn";
  if (!(levelName in LEVEL_VALUES)) {
    throw new KafkaConfigError("logLevel", `"logLevel" must be one of ${Object.keys(LEVEL_VALUES).join(", ")} (got ${JSON.stringify(settings.logLevel)})`);
  }
  const sink = settings.logSink;
  const kafkaConfig: KafkaConfig = {
    brokers,
    clientId,
    connectionTimeout,
    requestTimeout,
    retry,
    logLevel: sink ? LEVEL_VALUES[levelName] : KafkaLogLevel.NOTHING,
    logCreator: sink ? createLogCreator(sink, settings.logRepeatWindowMs ?? 10_000) : () => () => {},
  };
  if (ssl !== undefined) kafkaConfig.ssl = ssl;
  if (sasl !== undefined) kafkaConfig.sasl = sasl;
  return {
    brokers,
    clientId,
    retry: {
      initialRetryTimeMs: retry.initialRetryTime!,
      maxRetryTimeMs: retry.maxRetryTime!,
      multiplier: retry.multiplier!,
      factor: retry.factor!,
      retries: retry.retries!,
    },
    kafkaConfig,
  };
}

/** The wait before reconnect try `attempt` (0-based) of our own loops, with the same backoff as kafkajs. */
export function backoffDelay(retry: Required<KafkaRetrySettings>, attempt: number, random: () => number = Math.random): number {
  const base = Math.min(retry.maxRetryTimeMs, retry.initialRetryTimeMs * Math.pow(retry.multiplier, Math.max(0, attempt)));
  const jitter = base * retry.factor * (random() * 2 - 1);
  return Math.max(0, Math.round(Math.min(retry.maxRetryTimeMs, base + jitter)));
}

/** Kafka's rule for topic names: 1..249 of letters, digits, ".", "_" and "-", and not "." or "..". */
export function checkTopicName(topic: unknown, field = "topic"): string {
  if (typeof topic !== "string" || topic === "") throw new KafkaConfigError(field, `"${field}" is empty: give a Kafka topic name`);
  if (topic.length > 249 || !/^[A-Za-z0-9._-]+$/.test(topic) || topic === "." || topic === "..") {
    throw new KafkaConfigError(field, `"${field}" may use letters, digits, ".", "_" and "-" only, at most 249 characters (got ${JSON.stringify(topic.slice(0, 60))})`);
  }
  return topic;
}
