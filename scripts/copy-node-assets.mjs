// Copies each node's editor files (<type>.html, locales/, icons/) next to its
// built .js in dist/nodes/<type>/, because Node-RED loads them from the folder
// that holds the runtime file.
import { cpSync, existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const sourceRoot = "nodes";
const targetRoot = join("dist", "nodes");

for (const nodeFolder of readdirSync(sourceRoot)) {
  const source = join(sourceRoot, nodeFolder);
  if (!statSync(source).isDirectory()) continue;
  for (const entry of readdirSync(source)) {
    if (entry.endsWith(".ts")) continue;
    const from = join(source, entry);
    const to = join(targetRoot, nodeFolder, entry);
    if (existsSync(from)) cpSync(from, to, { recursive: true });
  }
}
