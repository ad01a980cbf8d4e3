// Lag per assigned partition from the broker's watermarks (src/core/kafka/partition-lag.ts): where the member reads
// from, before and after its first fetch, and what retention removed.
import assert from "node:assert/strict";
import { partitionLags, type PartitionLagInputs } from "../../src/core/kafka/partition-lag";

function lags(overrides: Partial<PartitionLagInputs>): Record<number, number> {
  const inputs: PartitionLagInputs = {
    topic: "iot.raw",
    partitions: [0],
    watermarks: new Map([[0, { low: 0, high: 100 }]]),
    position: () => null,
    committed: new Map(),
    fromBeginning: true,
    ...overrides,
  };
  return Object.fromEntries(partitionLags(inputs).map((lag) => [lag.partition, lag.lag]));
}

describe("core/kafka/partition-lag", () => {
  it("counts from the next offset this member hands out, ahead of the group's commit", () => {
    // 60 handed out, 40 of them committed: the 20 in flight are being processed, not waiting in Kafka.
    assert.deepEqual(lags({ position: () => 60, committed: new Map([[0, 40]]) }), { 0: 40 });
  });

  it("before the first fetch, counts from the group's commit", () => {
    assert.deepEqual(lags({ committed: new Map([[0, 75]]) }), { 0: 25 });
  });

  it("a new group counts from the log's start with fromBeginning, and from its end without", () => {
    const watermarks = new Map([[0, { low: 30, high: 100 }]]);
    assert.deepEqual(lags({ watermarks, fromBeginning: true }), { 0: 70 });
    assert.deepEqual(lags({ watermarks, fromBeginning: false }), { 0: 0 });
  });

  it("messages removed by retention are not lag: a commit before the log's start counts from the start", () => {
    assert.deepEqual(lags({ watermarks: new Map([[0, { low: 90, high: 100 }]]), committed: new Map([[0, 10]]) }), { 0: 10 });
  });

  it("reports every assigned partition, empty ones at 0, and only those with watermarks", () => {
    const watermarks = new Map([
      [0, { low: 0, high: 0 }],
      [1, { low: 0, high: 50 }],
      [2, { low: 0, high: 9 }],
    ]);
    assert.deepEqual(lags({ partitions: [0, 1, 3], watermarks, position: (partition) => (partition === 1 ? 50 : null) }), { 0: 0, 1: 0 });
  });

  it("never reports a negative lag (a position read just before the watermarks)", () => {
    assert.deepEqual(lags({ position: () => 104 }), { 0: 0 });
  });
});
