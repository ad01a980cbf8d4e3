// Build: every runtime .ts file is transpiled one-to-one (no bundling) so that
// dist/nodes/<type>/<type>.js imports dist/src/core/*.js by the same relative
// paths as in the sources; scripts/copy-node-assets.mjs then puts each node's
// .html, locales/ and icons/ beside its .js, where Node-RED looks for them.
import { defineConfig } from "tsup";

export default defineConfig({
  entry: ["src/**/*.ts", "nodes/**/*.ts"],
  outDir: "dist",
  format: ["cjs"],
  target: "node20",
  platform: "node",
  bundle: false,
  clean: true,
  sourcemap: false,
  // Keep src/ and nodes/ under dist/ whatever entries exist, so relative imports stay valid.
  esbuildOptions(options) {
    options.outbase = ".";
  },
  dts: { entry: { "src/core/index": "src/core/index.ts" } },
});
