// Where the shared data (the NAB subset under nab/) lives: env IOT_ANOMALY_SHARED_DATA, else <repo>/../shared/data,
// else /work/shared/data. Under CI=true a test that needs it fails when it is missing; elsewhere it skips, saying why.
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";

const REPO = resolve(__dirname, "..", "..");

/** The shared data folder, or undefined when none of the candidates exists. */
export function sharedDataDir(): string | undefined {
  const candidates = [process.env.IOT_ANOMALY_SHARED_DATA, join(REPO, "..", "shared", "data"), "/work/shared/data"];
  return candidates.find((candidate): candidate is string => candidate !== undefined && candidate !== "" && existsSync(candidate));
}

/**
 * `relative` inside the shared data folder for a test that needs it: skips the test (outside CI) or throws (CI=true)
 * when it is missing.
 */
export function requireSharedData(context: Mocha.Context, relative: string): string {
  const root = sharedDataDir();
  const path = root === undefined ? undefined : join(root, relative);
  if (path !== undefined && existsSync(path)) return path;
  const reason = `shared data ${relative} not found (set IOT_ANOMALY_SHARED_DATA, or put it at ${join(REPO, "..", "shared", "data")})`;
  if (process.env.CI === "true") throw new Error(reason);
  process.stderr.write(`      skipped: ${reason}\n`);
  context.skip();
  throw new Error(reason); // not reached: skip() throws
}
