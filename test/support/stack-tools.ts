// External programs the container stack's checks run (Debian's docker-compose, prometheus, promtool): found on PATH,
// or the test fails under CI=true and skips elsewhere, naming the Debian package that provides it.
import { spawnSync } from "node:child_process";

export function commandPath(command: string): string | undefined {
  const found = spawnSync("sh", ["-c", `command -v ${command}`], { encoding: "utf8" });
  const path = found.stdout.trim();
  return found.status === 0 && path !== "" ? path : undefined;
}

/** The command's path, or: CI=true -> throws; otherwise skips the test with the reason. */
export function requireCommand(context: Mocha.Context, command: string, debianPackage: string): string {
  const path = commandPath(command);
  if (path) return path;
  const reason = `${command} is not installed (apt-get install -y ${debianPackage}; .ci/run installs it)`;
  if (process.env.CI === "true") throw new Error(reason);
  process.stderr.write(`      skipped: ${reason}\n`);
  context.skip();
  throw new Error(reason); // not reached: skip() throws
}

export interface CommandResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function runCommand(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): CommandResult {
  const result = spawnSync(command, args, { cwd: options.cwd, env: options.env ?? process.env, encoding: "utf8", timeout: options.timeoutMs ?? 60_000 });
  if (result.error) throw new Error(`could not run ${command}: ${result.error.message}`);
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}
