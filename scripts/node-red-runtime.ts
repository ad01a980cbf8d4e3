// Starts a real Node-RED runtime in a child process with this package loaded from the working copy:
// used by `npm start`, the integration tests and the bench, so all three run the same way.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";

export const repositoryRoot = resolve(__dirname, "..");
const nodeRedEntry = require.resolve("node-red/red.js");
const defaultSettingsFile = join(repositoryRoot, "flows", "settings.js");

export interface StartOptions {
  userDir: string;
  /** Flows to write into the user directory before start; omit to keep what is there. */
  flows?: unknown[];
  port?: number;
  env?: Record<string, string>;
  /** Variables of this process' environment the runtime must not inherit (e.g. a password a test checks without). */
  unsetEnv?: string[];
  /** Default: flows/settings.js (this package from the working copy). The container stack's checks pass its own. */
  settingsFile?: string;
  /** Flow file name in the user directory, passed as Node-RED's positional argument (like the image's $FLOWS). */
  flowFile?: string;
  /** Default: the repository. */
  cwd?: string;
  /** Resolve once the log matches (default /Started flows/); null: as soon as the process is spawned. */
  readyPattern?: RegExp | null;
  /** Extra Node.js flags for the runtime, e.g. ["--cpu-prof"] when profiling a bench; default: $NODE_RED_NODE_ARGS. */
  nodeArgs?: string[];
  /** Echo the runtime's log to this process' stdout. */
  echo?: boolean;
  startTimeoutMs?: number;
}

export interface RunningNodeRed {
  url: string;
  port: number;
  child: ChildProcess;
  log(): string;
  /** Resolves when the log matches, rejects after the timeout or if the runtime exits. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Graceful stop (SIGINT: Node-RED closes every node, so sinks flush). */
  stop(): Promise<number | null>;
  /** Crash: SIGKILL, nothing is flushed. */
  kill(): Promise<number | null>;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
}

/**
 * A 64 MB young generation (V8's default is 16 MB): our events are short-lived objects, and with the default,
 * scavenges took a large share of the CPU; measured on the embedded flow in batch mode, 52k -> 67k events/s, and
 * the Kafka pipeline's p99 latency at 5k events/s was lower with it in each of 3 alternating pairs. The container
 * image sets the same flag through NODE_OPTIONS (docker/Dockerfile).
 */
export const YOUNG_GENERATION_FLAG = "--max-semi-space-size=64";

/** NODE_RED_NODE_ARGS replaces the default flags (an empty string runs with V8's defaults). */
function defaultNodeArgs(): string[] {
  return (process.env.NODE_RED_NODE_ARGS ?? YOUNG_GENERATION_FLAG).split(" ").filter((flag) => flag.length > 0);
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolvePort(typeof address === "object" && address ? address.port : 0));
    });
  });
}

export async function startNodeRed(options: StartOptions): Promise<RunningNodeRed> {
  mkdirSync(options.userDir, { recursive: true });
  if (options.flows) writeFileSync(join(options.userDir, "flows.json"), JSON.stringify(options.flows, null, 2));
  const port = options.port ?? (await freePort());
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), ...options.env };
  for (const name of options.unsetEnv ?? []) delete env[name];
  const nodeRedArgs = ["--userDir", options.userDir, "--settings", options.settingsFile ?? defaultSettingsFile, ...(options.flowFile ? [options.flowFile] : [])];
  const child = spawn(process.execPath, [...(options.nodeArgs ?? defaultNodeArgs()), nodeRedEntry, ...nodeRedArgs], {
    cwd: options.cwd ?? repositoryRoot,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const waiters = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    output += chunk.toString();
    if (options.echo) process.stdout.write(chunk);
    for (const check of waiters) check();
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const exited = new Promise<number | null>((resolveExit) => child.on("exit", (code, signal) => resolveExit(code ?? (signal ? 128 : null))));

  const waitForLog = (pattern: RegExp, timeoutMs = 30_000) =>
    new Promise<RegExpMatchArray>((resolveMatch, reject) => {
      const timer = setTimeout(() => finish(new Error(`Node-RED did not log ${pattern} within ${timeoutMs} ms. Log:\n${output.slice(-4000)}`)), timeoutMs);
      const check = () => {
        const match = output.match(pattern);
        if (match) finish(null, match);
      };
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

  const signal = (name: NodeJS.Signals) => async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(name);
    return exited;
  };

  const running: RunningNodeRed = {
    url: `http://127.0.0.1:${port}`,
    port,
    child,
    log: () => output,
    waitForLog,
    stop: signal("SIGINT"),
    kill: signal("SIGKILL"),
    exited,
  };
  const readyPattern = options.readyPattern === undefined ? /Started flows/ : options.readyPattern;
  if (readyPattern === null) return running;
  try {
    await waitForLog(readyPattern, options.startTimeoutMs ?? 60_000);
  } catch (error) {
    await running.kill();
    throw error;
  }
  return running;
}
