// Message-level glue shared by the nodes: read a payload holding one event or a batch, put results back in the
// same shape, and report invalid events so a Catch node sees them without stopping the flow.
import type { Node, NodeMessage } from "node-red";
import { readPayloadEvents, summariseErrors, type EventValidationError, type SensorEvent } from "../core/event";
import { failed, shorten } from "./status";

export interface EventMessage {
  events: SensorEvent[];
  batch: boolean;
  /** One error summarising every invalid event of the message, or null. */
  error: EventValidationError | null;
}

export function readEventMessage(msg: NodeMessage): EventMessage {
  const { events, errors, batch } = readPayloadEvents(msg.payload);
  return { events, batch, error: summariseErrors(errors) };
}

/** The message carrying `events` in the shape it arrived in (array for a batch), or null when none are left. */
export function withEvents<T extends NodeMessage>(msg: T, events: SensorEvent[], batch: boolean): T | null {
  if (events.length === 0) return null;
  msg.payload = batch ? events : events[0];
  return msg;
}

/** A copy of `msg` carrying `events`, for a second output that must not share the first output's payload. */
export function copyWithEvents<T extends NodeMessage>(msg: T, events: SensorEvent[], batch: boolean): T | null {
  if (events.length === 0) return null;
  return { ...msg, payload: batch ? events : events[0] };
}

/** Red status naming the problem, and the error handed to done() so Catch nodes see it. */
export function reportInvalidInput(node: Node, error: Error, done: (err?: Error) => void): void {
  node.status(failed(shorten(error.message)));
  done(error);
}
