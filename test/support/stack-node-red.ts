// Node-RED started the way the container image starts it: the image's settings file (docker/node-red/settings.js,
// editor login from the environment) and the flow file as a positional argument, in a user directory where the
// packed package is installed (test/support/packed-install.ts), with the NODE_OPTIONS the image sets. Used by the
// container stack's checks.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { repositoryRoot, startNodeRed, type RunningNodeRed } from "../../scripts/node-red-runtime";

export const containerSettingsFile = join(repositoryRoot, "docker", "node-red", "settings.js");

export type ContainerNodeRed = RunningNodeRed;

/** The NODE_OPTIONS of the image's ENV instruction (docker/Dockerfile), or "" when it sets none. */
export function imageNodeOptions(): string {
  const dockerfile = readFileSync(join(repositoryRoot, "docker", "Dockerfile"), "utf8");
  return /^\s*NODE_OPTIONS=(\S+)/m.exec(dockerfile)?.[1] ?? "";
}

export interface ContainerStartOptions {
  userDir: string;
  /** Flow file name inside userDir, passed like the image's $FLOWS. */
  flowFile: string;
  /** Added to this process' environment (NODE_RED_ADMIN_PASSWORD_HASH, …); an empty value removes the variable. */
  env: Record<string, string>;
  /** Wait for this log line before resolving; null resolves as soon as the process is spawned. */
  readyPattern?: RegExp | null;
  startTimeoutMs?: number;
}

export function startContainerNodeRed(options: ContainerStartOptions): Promise<ContainerNodeRed> {
  // The caller's environment must not hand a password to a test that checks what happens without one.
  const unsetEnv = Object.keys(options.env).filter((name) => options.env[name] === "");
  return startNodeRed({
    userDir: options.userDir,
    settingsFile: containerSettingsFile,
    flowFile: options.flowFile,
    cwd: options.userDir,
    env: { NODE_OPTIONS: imageNodeOptions(), ...options.env, NODE_RED_HOST: "127.0.0.1" },
    unsetEnv,
    nodeArgs: [],
    readyPattern: options.readyPattern,
    startTimeoutMs: options.startTimeoutMs,
  });
}
