// One status vocabulary for every node of the package: green dot running, yellow ring warming up or idle,
// red ring error, always with a short text.
import type { NodeStatus } from "node-red";

export const running = (text: string): NodeStatus => ({ fill: "green", shape: "dot", text });
export const warming = (text: string): NodeStatus => ({ fill: "yellow", shape: "ring", text });
export const idle = (text: string): NodeStatus => ({ fill: "grey", shape: "ring", text });
export const failed = (text: string): NodeStatus => ({ fill: "red", shape: "ring", text });

/** Status texts must stay short on the canvas. */
export function shorten(text: string, limit = 48): string {
  return text.length > limit ? `${text.slice(0, limit - 1)}…` : text;
}

/** 12345 -> "12.3k", for counters in status texts. */
export function compactCount(count: number): string {
  if (count < 1000) return String(count);
  if (count < 1_000_000) return `${(count / 1000).toFixed(count < 10_000 ? 1 : 0)}k`;
  return `${(count / 1_000_000).toFixed(1)}M`;
}
