// The Kafka core the kafka-in / kafka-out nodes use: connection settings, (de)serialisation, offset tracking,
// and the producer / consumer behind our own interface (types.ts).
export * from "./connection-options";
export * from "./serialisation";
export * from "./offset-tracker";
export * from "./redelivery";
export * from "./types";
export { KafkaClientClosedError, isRetriableKafkaError, isConnectionError } from "./client-support";
export * from "./producer";
export * from "./consumer";
