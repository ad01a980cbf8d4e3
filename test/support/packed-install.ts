// Packs the built package with `npm pack` and installs the tarball into a fresh Node-RED user directory the way
// the palette manager installs an uploaded tarball, so tests see what a user gets from npm, not the working copy.
// The install compiles better-sqlite3 (1–2 minutes), so it runs once per test process and is shared.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repositoryRoot } from "../../scripts/node-red-runtime";

export const packageName = "node-red-contrib-iot-anomaly";

/** Environment for startNodeRed: load the package installed in the user directory, not the working copy. */
export const installedPackageEnv: Readonly<Record<string, string>> = { IOT_ANOMALY_FROM_WORKING_COPY: "false" };

export interface InstalledPackage {
  /** Node-RED user directory with the package in node_modules and listed in package.json. */
  userDir: string;
  /** The packed .tgz (kept until the process exits: the user directory's package.json points at it). */
  tarball: string;
  tarballBytes: number;
  /** Wall time of the `npm install` step alone. */
  installMs: number;
}

// The palette manager's own arguments (@node-red/registry lib/installer.js, node-red 4.1): it runs
// `npm install <args> -- <module or tarball>` with the user directory as working directory.
const paletteInstallArgs = ["--no-audit", "--no-update-notifier", "--no-fund", "--save", "--save-prefix=~", "--omit=dev", "--engine-strict"];

// What Node-RED writes to a new user directory (@node-red/runtime storage/localfilesystem).
const nodeRedProjectPackage = { name: "node-red-project", description: "A Node-RED Project", version: "0.0.1", private: true };

interface CommandResult {
  stdout: string;
  stderr: string;
}

/** npm with the variables that `npm test` exports about this repository removed, so the nested npm only sees its
 * own working directory (its configuration files, e.g. nodedir for offline builds, are still read). */
function npmEnvironment(): NodeJS.ProcessEnv {
  const environment: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^npm_(package_|lifecycle_|command$|config_local_prefix$)/i.test(key)) continue;
    environment[key] = value;
  }
  return environment;
}

function runNpm(args: string[], cwd: string, timeoutMs: number): Promise<CommandResult> {
  return new Promise((resolveRun, reject) => {
    const child = spawn("npm", args, { cwd, env: npmEnvironment(), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`could not run npm ${args[0]}: ${error.message}`));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolveRun({ stdout, stderr });
      const why = signal ? `was killed (${signal}${signal === "SIGKILL" ? `, over ${timeoutMs / 1000} s` : ""})` : `exited with ${code}`;
      reject(new Error(`\`npm ${args.join(" ")}\` in ${cwd} ${why}. npm's stderr:\n${stderr.slice(-6000) || "(empty)"}`));
    });
  });
}

async function packAndInstall(): Promise<InstalledPackage> {
  const builtNode = join(repositoryRoot, "dist", "nodes", "sensor-sim", "sensor-sim.js");
  if (!existsSync(builtNode)) throw new Error(`${builtNode} is missing: run \`npm run build\` first (\`npm test\` does).`);

  const packDir = mkdtempSync(join(tmpdir(), "iot-anomaly-pack-"));
  const userDir = mkdtempSync(join(tmpdir(), "iot-anomaly-userdir-"));
  // Both stay for other tests of this process; a process is one mocha run.
  process.once("exit", () => {
    rmSync(userDir, { recursive: true, force: true });
    rmSync(packDir, { recursive: true, force: true });
  });

  const packed = await runNpm(["pack", "--json", "--pack-destination", packDir], repositoryRoot, 120_000);
  const [report] = JSON.parse(packed.stdout) as Array<{ filename: string }>;
  const tarball = join(packDir, report.filename);
  const tarballBytes = statSync(tarball).size;

  writeFileSync(join(userDir, "package.json"), JSON.stringify(nodeRedProjectPackage, null, 4));
  const started = Date.now();
  await runNpm(["install", ...paletteInstallArgs, "--", tarball], userDir, 600_000);
  const installMs = Date.now() - started;

  const installed = join(userDir, "node_modules", packageName, "package.json");
  if (!existsSync(installed)) throw new Error(`npm install finished but ${installed} does not exist`);
  return { userDir, tarball, tarballBytes, installMs };
}

let installation: Promise<InstalledPackage> | undefined;

/** The packed package installed into a Node-RED user directory; packed and installed on the first call of the
 * process, later calls share it (a failure too: the error carries npm's stderr). Tests that start Node-RED in it
 * keep their flows apart with flowFileEnv. */
export function installedUserDir(): Promise<InstalledPackage> {
  installation ??= packAndInstall();
  return installation;
}

/** Writes `flows` as this test's own flow file in the shared user directory and returns the environment that makes
 * Node-RED use it (pass to startNodeRed without its `flows` option, which would write the shared flows.json). */
export function flowFileEnv(userDir: string, name: string, flows: unknown[]): Record<string, string> {
  const flowFile = `flows-${name}.json`;
  writeFileSync(join(userDir, flowFile), JSON.stringify(flows, null, 2));
  return { ...installedPackageEnv, NODE_RED_FLOW_FILE: flowFile };
}
