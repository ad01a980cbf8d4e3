// The shipped example flows keep the promise the README makes for Kafka: every event kafka-in hands out comes back
// to it, as an acknowledgement from the end of the flow or as a failure through a Catch node, so nothing is lost
// without a trace and a failure does not hold its partition until a restart.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { repositoryRoot } from "../../scripts/node-red-runtime";

interface FlowNode {
  id: string;
  type: string;
  z?: string;
  wires?: string[][];
  scope?: string[] | null;
  ackMode?: string;
  [property: string]: unknown;
}

const examplesDir = join(repositoryRoot, "examples");
const examples = readdirSync(examplesDir).filter((name) => name.endsWith(".json"));

/** Nodes reachable from `start`'s first output, not crossing back into `start`. */
function downstreamOf(start: FlowNode, byId: Map<string, FlowNode>): FlowNode[] {
  const seen = new Set<string>();
  const queue = [...(start.wires?.[0] ?? [])];
  while (queue.length > 0) {
    const id = queue.shift()!;
    if (id === start.id || seen.has(id)) continue;
    seen.add(id);
    for (const output of byId.get(id)?.wires ?? []) queue.push(...output);
  }
  return [...seen].map((id) => byId.get(id)!).filter(Boolean);
}

describe("shipped example flows: what kafka-in hands out comes back", () => {
  for (const file of examples) {
    const flow = JSON.parse(readFileSync(join(examplesDir, file), "utf8")) as FlowNode[];
    const byId = new Map(flow.map((node) => [node.id, node]));
    const consumers = flow.filter((node) => node.type === "iot-kafka-in" && (node.ackMode ?? "input") === "input");
    if (consumers.length === 0) continue;

    it(`${file}: each kafka-in gets acknowledgements and, through a Catch node, the failures of every node after it`, () => {
      for (const consumer of consumers) {
        const downstream = downstreamOf(consumer, byId);
        assert.ok(downstream.length > 0, `${consumer.id}: nothing after kafka-in`);
        const acknowledging = downstream.filter((node) => node.wires?.some((output) => output.includes(consumer.id)));
        assert.ok(acknowledging.length > 0, `${consumer.id}: no node wires its output back into kafka-in`);
        const catches = flow.filter((node) => node.type === "catch" && node.z === consumer.z && node.wires?.some((output) => output.includes(consumer.id)));
        assert.ok(catches.length > 0, `${consumer.id}: no Catch node wired into kafka-in`);
        for (const node of downstream) {
          const caught = catches.some((catcher) => !catcher.scope || catcher.scope.includes(node.id));
          assert.ok(caught, `${consumer.id}: a failure of ${node.type} ${node.id} reaches no Catch node wired back into kafka-in`);
        }
      }
    });
  }
});
