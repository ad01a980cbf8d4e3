// A real Prometheus server (Debian's `prometheus`) for the stack's checks: started on a free loopback port with the
// stack's own scrape configuration pointed at a local Node-RED, and queried through its HTTP API.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../scripts/node-red-runtime";

export interface PrometheusTarget {
  scrapePool: string;
  scrapeUrl: string;
  health: "up" | "down" | "unknown";
  lastError: string;
  lastScrape: string;
}

export interface QueryResult {
  metric: Record<string, string>;
  value: [number, string];
}

export interface RunningPrometheus {
  url: string;
  log(): string;
  targets(): Promise<PrometheusTarget[]>;
  /** Every metric name Prometheus holds a series of. */
  metricNames(): Promise<string[]>;
  /** Metadata (type, help) of the metric families the targets exposed, series or not. */
  metadata(): Promise<Record<string, Array<{ type: string; help: string }>>>;
  instantQuery(expr: string): Promise<QueryResult[]>;
  stop(): Promise<void>;
}

async function api<T>(baseUrl: string, path: string): Promise<T> {
  const response = await fetch(`${baseUrl}${path}`);
  const body = (await response.json()) as { status: string; data: T; error?: string; errorType?: string };
  if (body.status !== "success") throw new Error(`Prometheus ${path}: ${body.errorType ?? response.status} ${body.error ?? ""}`);
  return body.data;
}

/** Starts `prometheus` (path given) with `config` (YAML text); resolves once its API answers. */
export async function startPrometheus(binary: string, config: string): Promise<RunningPrometheus> {
  const directory = mkdtempSync(join(tmpdir(), "iot-anomaly-prometheus-"));
  const configFile = join(directory, "prometheus.yml");
  writeFileSync(configFile, config);
  const port = await freePort();
  const child: ChildProcess = spawn(
    binary,
    [`--config.file=${configFile}`, `--web.listen-address=127.0.0.1:${port}`, `--storage.tsdb.path=${join(directory, "data")}`, "--log.level=warn"],
    { cwd: directory, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolveExit) => child.on("exit", () => resolveExit()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
    rmSync(directory, { recursive: true, force: true });
  };

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}:\n${output.slice(-3000)}`);
    try {
      if ((await fetch(`${url}/-/ready`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus did not become ready within 30 s:\n${output.slice(-3000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }

  return {
    url,
    log: () => output,
    targets: async () => (await api<{ activeTargets: PrometheusTarget[] }>(url, "/api/v1/targets")).activeTargets,
    metricNames: () => api<string[]>(url, "/api/v1/label/__name__/values"),
    metadata: () => api<Record<string, Array<{ type: string; help: string }>>>(url, "/api/v1/metadata"),
    instantQuery: async (expr: string) => (await api<{ result: QueryResult[] }>(url, `/api/v1/query?query=${encodeURIComponent(expr)}`)).result,
    stop,
  };
}
