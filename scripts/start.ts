// `npm start`: Node-RED on http://127.0.0.1:1880 with this package and the embedded pipeline deployed,
// writing to data/anomalies.db. The user directory (data/) keeps flows, detector state and models between runs.
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { repositoryRoot, startNodeRed } from "./node-red-runtime";

const userDir = process.env.NODE_RED_USER_DIR ?? join(repositoryRoot, "data");
const flowFile = join(userDir, "flows.json");
const resetFlows = process.argv.includes("--reset-flows");

async function main(): Promise<void> {
  mkdirSync(userDir, { recursive: true });
  // Seed the flow once; later edits made in the editor are kept unless --reset-flows is given.
  if (resetFlows || !existsSync(flowFile)) {
    copyFileSync(join(repositoryRoot, "examples", "embedded-pipeline.json"), flowFile);
  }
  const port = Number(process.env.PORT ?? 1880);
  console.log(`[iot-anomaly] user directory: ${userDir}`);
  console.log(`[iot-anomaly] SQLite database: ${join(userDir, "anomalies.db")}`);
  const runtime = await startNodeRed({ userDir, port, echo: true });
  console.log(`[iot-anomaly] editor: ${runtime.url}/  (Ctrl+C stops Node-RED; pending rows are flushed)`);
  const shutdown = () => void runtime.stop().then((code) => process.exit(code ?? 0));
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);
  runtime.child.on("exit", (code) => process.exit(code ?? 0));
}

main().catch((error) => {
  console.error(`[iot-anomaly] could not start Node-RED: ${error.message}`);
  process.exit(1);
});
