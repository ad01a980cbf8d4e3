// Where nodes keep state that must survive a restart (detector windows, trained models).
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NodeAPI } from "node-red";

/**
 * IOT_ANOMALY_STATE_DIR wins (tests, containers); otherwise a folder in the Node-RED user directory,
 * next to flows and context, so it is backed up and mounted with them.
 */
export function stateDirectory(RED: NodeAPI): string {
  const fromEnvironment = process.env.IOT_ANOMALY_STATE_DIR;
  if (fromEnvironment) return fromEnvironment;
  const userDir = (RED.settings as unknown as { userDir?: string }).userDir;
  return join(userDir ?? tmpdir(), "iot-anomaly-state");
}

/** State file of one node; node ids are stable across restarts and redeploys. */
export function stateFile(RED: NodeAPI, nodeId: string, suffix: string): string {
  return join(stateDirectory(RED), `${nodeId.replace(/[^A-Za-z0-9_.-]/g, "_")}.${suffix}.json`);
}
