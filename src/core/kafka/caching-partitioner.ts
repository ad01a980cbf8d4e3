// kafkajs' default (Java-compatible murmur2) partitioner with a cache per key: a sensor's key maps to the same
// partition until the topic's partition count changes, so the hash (and the per-message array kafkajs' partitioner
// builds of available partitions) is computed once per sensor instead of once per event. Messages without a string
// key, or with an explicit partition, go to kafkajs' partitioner unchanged.
import "./kafkajs-speedups";
import { Partitioners, type ICustomPartitioner } from "kafkajs";

type PartitionerArgs = Parameters<ReturnType<ICustomPartitioner>>[0];

/** Keys remembered per topic; beyond this the cache starts over (a bound for keys that are not sensor ids). */
const MAX_CACHED_KEYS = 100_000;

export const CachingDefaultPartitioner: ICustomPartitioner = () => {
  const partition = Partitioners.DefaultPartitioner();
  const topics = new Map<string, { partitionCount: number; byKey: Map<string, number> }>();
  return (args: PartitionerArgs) => {
    const { topic, partitionMetadata, message } = args;
    if ((message.partition !== undefined && message.partition !== null) || typeof message.key !== "string") return partition(args);
    let cache = topics.get(topic);
    if (cache === undefined || cache.partitionCount !== partitionMetadata.length || cache.byKey.size >= MAX_CACHED_KEYS) {
      cache = { partitionCount: partitionMetadata.length, byKey: new Map() };
      topics.set(topic, cache);
    }
    let chosen = cache.byKey.get(message.key);
    if (chosen === undefined) {
      chosen = partition(args);
      cache.byKey.set(message.key, chosen);
    }
    return chosen;
  };
};
