// Node-RED glue for the kafka-broker config node: settings + credentials -> one SharedKafkaConnection that the
// kafka-in / kafka-out nodes register with (one producer shared by all of them, one consumer per kafka-in).
import type { Node, NodeAPI, NodeDef } from "node-red";
import { KafkaConfigError, type KafkaConnectionSettings, type SaslMechanism } from "../../src/core/kafka";
import { createRepeatLimiter, SharedKafkaConnection, type KafkaBrokerConfigNode } from "../../src/runtime/kafka-connection";

interface KafkaBrokerNodeDef extends NodeDef {
  /** "host:port,host:port", or exactly "${KAFKA_BROKERS}" (Node-RED substitutes it from the environment). */
  brokers?: string;
  clientId?: string;
  tls?: boolean | string;
  tlsRejectUnauthorized?: boolean | string;
  saslMechanism?: "none" | SaslMechanism;
}

/** Secrets: kept in Node-RED's credentials store, never in the flow JSON. */
interface KafkaBrokerCredentials {
  username?: string;
  password?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
}

type KafkaBrokerNode = Node<KafkaBrokerCredentials> & KafkaBrokerConfigNode;

/** Checkbox values arrive as booleans from the editor, as text from hand-written flows. */
function flag(value: boolean | string | undefined, fallback: boolean): boolean {
  if (value === undefined || value === null || value === "") return fallback;
  return value === true || value === "true";
}

/**
 * PEM text pasted into a one-line field loses its line breaks; TLS needs them. Re-wraps each plain base64 block at
 * 64 characters (blocks with headers, e.g. an encrypted key's "Proc-Type:", are left alone).
 */
function normalisePem(text: string | undefined): string | undefined {
  if (!text || text.trim() === "") return undefined;
  return text.replace(/(-----BEGIN [A-Z0-9 ]+-----)([\s\S]*?)(-----END [A-Z0-9 ]+-----)/g, (block, begin: string, body: string, end: string) => {
    if (!/^[A-Za-z0-9+/=\s]*$/.test(body)) return block;
    const base64 = body.replace(/\s+/g, "");
    return `${begin}\n${(base64.match(/.{1,64}/g) ?? []).join("\n")}\n${end}`;
  });
}

/** The node's properties and credentials as core connection settings (validated by the core, which names the field). */
function brokerSettings(config: KafkaBrokerNodeDef, credentials: KafkaBrokerCredentials = {}): KafkaConnectionSettings {
  const brokers = typeof config.brokers === "string" ? config.brokers.trim() : (config.brokers as unknown as string);
  // Node-RED leaves a property that is exactly ${VAR} as it is when VAR is not set.
  const unsetVariable = typeof brokers === "string" ? /^\$\{([^}]+)\}$/.exec(brokers) : null;
  if (unsetVariable) {
    throw new KafkaConfigError("brokers", `"brokers" is ${brokers}, but the environment variable ${unsetVariable[1]} is not set: set it to host:port[,host:port] before starting Node-RED`);
  }
  const settings: KafkaConnectionSettings = {
    brokers,
    clientId: config.clientId || "node-red-iot-anomaly",
  };
  if (flag(config.tls, false)) {
    settings.tls = {
      ca: normalisePem(credentials.tlsCa),
      cert: normalisePem(credentials.tlsCert),
      key: normalisePem(credentials.tlsKey),
      rejectUnauthorized: flag(config.tlsRejectUnauthorized, true),
    };
  }
  const mechanism = config.saslMechanism || "none";
  if (mechanism !== "none") {
    settings.sasl = { mechanism, username: credentials.username ?? "", password: credentials.password ?? "" };
  }
  return settings;
}

export = function register(RED: NodeAPI) {
  function KafkaBrokerNode(this: KafkaBrokerNode, config: KafkaBrokerNodeDef) {
    RED.nodes.createNode(this, config);
    const node = this;
    node.kafka = null;
    node.configError = null;
    const shouldWarn = createRepeatLimiter();

    try {
      node.kafka = new SharedKafkaConnection(
        brokerSettings(config, node.credentials ?? {}),
        {
          log: (line, level) => (level === "error" || level === "warn" ? node.log(line) : node.debug(line)),
        },
        (context, error) => {
          const text = RED._("iot-kafka-broker.errors.producer", { context, error: error.message });
          if (shouldWarn(text)) node.warn(text);
        },
      );
    } catch (error) {
      // The users show it on their status (red ring) and log it, naming the field, when they register.
      node.configError = error as Error;
      node.error((error as Error).message);
    }

    node.on("close", (_removed: boolean, done: () => void) => {
      const kafka = node.kafka;
      if (!kafka) return done();
      kafka.close().then(
        () => done(),
        (error: Error) => {
          node.warn(error.message);
          done();
        },
      );
    });
  }

  RED.nodes.registerType<KafkaBrokerNode, KafkaBrokerNodeDef, unknown, KafkaBrokerCredentials>("iot-kafka-broker", KafkaBrokerNode, {
    credentials: {
      username: { type: "text" },
      password: { type: "password" },
      tlsCa: { type: "text" },
      tlsCert: { type: "text" },
      tlsKey: { type: "password" },
    },
  });
};
