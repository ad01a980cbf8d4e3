// Consumer lag per assigned partition from the broker's watermarks. The lag measured after each fetched batch stops
// moving exactly when it matters (delivery waiting for acks, a stalled sink: nothing is fetched) and never exists
// for a partition that has had no data; this is refreshed on a timer instead.
import type { PartitionLag } from "./types";

export interface Watermarks {
  /** First offset still in the log. */
  low: number;
  /** Offset the next produced message gets. */
  high: number;
}

export interface PartitionLagInputs {
  topic: string;
  /** Partitions of `topic` assigned to this member. */
  partitions: readonly number[];
  watermarks: ReadonlyMap<number, Watermarks>;
  /** Next offset this member hands out, or null when it has not fetched from the partition yet. */
  position: (partition: number) => number | null;
  /** The group's committed offsets (next offset to read); a partition without a commit is absent. */
  committed: ReadonlyMap<number, number>;
  /** Where a partition without a committed offset starts (the consumer's fromBeginning). */
  fromBeginning: boolean;
}

/**
 * Messages between where this member reads each partition and its end. Before the first fetch the member starts at
 * the group's commit, or with none at the log's start (fromBeginning) or its end. A position before the log's start
 * (retention removed those messages) counts from the start: those messages cannot be read any more.
 */
export function partitionLags(inputs: PartitionLagInputs): PartitionLag[] {
  const lags: PartitionLag[] = [];
  for (const partition of inputs.partitions) {
    const marks = inputs.watermarks.get(partition);
    if (marks === undefined) continue;
    const start = inputs.position(partition) ?? inputs.committed.get(partition) ?? (inputs.fromBeginning ? marks.low : marks.high);
    lags.push({ topic: inputs.topic, partition, lag: Math.max(0, marks.high - Math.max(start, marks.low)) });
  }
  return lags;
}
