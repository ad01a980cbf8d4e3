// Node-RED started the way the container image starts it: the image's settings file (docker/node-red/settings.js,
// editor login from the environment) and the flow file as a positional argument, in a user directory where the
// packed package is installed (test/support/packed-install.ts). Used by the container stack's checks.
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { freePort, repositoryRoot } from "../../scripts/node-red-runtime";

export const containerSettingsFile = join(repositoryRoot, "docker", "node-red", "settings.js");
const nodeRedEntry = require.resolve("node-red/red.js");

export interface ContainerNodeRed {
  url: string;
  port: number;
  child: ChildProcess;
  log(): string;
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (SIGINT: nodes close, the sink flushes). */
  stop(): Promise<number | null>;
  /** Resolves when the process has exited, with its code. */
  exited: Promise<number | null>;
}

export interface ContainerStartOptions {
  userDir: string;
  /** Flow file name inside userDir, passed like the image's $FLOWS. */
  flowFile: string;
  /** Added to this process' environment (NODE_RED_ADMIN_PASSWORD_HASH, …). */
  env: Record<string, string>;
  /** Wait for this log line before resolving; null resolves as soon as the process is spawned. */
  readyPattern?: RegExp | null;
  startTimeoutMs?: number;
}

export async function startContainerNodeRed(options: ContainerStartOptions): Promise<ContainerNodeRed> {
  const port = await freePort();
  const environment: NodeJS.ProcessEnv = { ...process.env, ...options.env, PORT: String(port), NODE_RED_HOST: "127.0.0.1" };
  // The caller's environment must not hand a password to a test that checks what happens without one.
  for (const [key, value] of Object.entries(options.env)) if (value === "") delete environment[key];
  const child = spawn(process.execPath, [nodeRedEntry, "--userDir", options.userDir, "--settings", containerSettingsFile, options.flowFile], {
    cwd: options.userDir,
    env: environment,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const waiters = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    output += chunk.toString();
    for (const check of waiters) check();
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const exited = new Promise<number | null>((resolveExit) => child.on("exit", (code, signal) => resolveExit(code ?? (signal ? 128 : null))));

  const waitForLog = (pattern: RegExp, timeoutMs = 30_000) =>
    new Promise<RegExpMatchArray>((resolveMatch, reject) => {
      const check = () => {
        const match = output.match(pattern);
        if (match) finish(null, match);
      };
      const timer = setTimeout(() => finish(new Error(`Node-RED did not log ${pattern} within ${timeoutMs} ms. Log:\n${output.slice(-4000)}`)), timeoutMs);
      const finish = (error: Error | null, match?: RegExpMatchArray) => {
        clearTimeout(timer);
        waiters.delete(check);
        if (error) reject(error);
        else resolveMatch(match!);
      };
      waiters.add(check);
      void exited.then((code) => finish(new Error(`Node-RED exited (${code}) before logging ${pattern}. Log:\n${output.slice(-4000)}`)));
      check();
    });

  const running: ContainerNodeRed = {
    url: `http://127.0.0.1:${port}`,
    port,
    child,
    log: () => output,
    waitForLog,
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGINT");
      return exited;
    },
  };
  const readyPattern = options.readyPattern === undefined ? /Started flows/ : options.readyPattern;
  if (readyPattern) {
    try {
      await waitForLog(readyPattern, options.startTimeoutMs ?? 60_000);
    } catch (error) {
      child.kill("SIGKILL");
      throw error;
    }
  }
  return running;
}
