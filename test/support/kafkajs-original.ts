// kafkajs' own code for a module the package replaces (src/core/kafka/kafkajs-speedups.ts): the file compiled
// afresh, as the module kafkajs itself loads may be the replacement. Its own requires resolve as usual. For tests
// that compare a replacement with kafkajs, and for the bench figure of kafkajs' own encoder.
import { readFileSync } from "node:fs";
import Module from "node:module";
import path from "node:path";

interface CompilableModule {
  _compile(source: string, filename: string): void;
}

export function kafkajsOriginal<T>(request: string): T {
  const filename = require.resolve(request);
  const loaded = new Module(filename, module);
  loaded.filename = filename;
  loaded.paths = (Module as unknown as { _nodeModulePaths(directory: string): string[] })._nodeModulePaths(path.dirname(filename));
  (loaded as unknown as CompilableModule)._compile(readFileSync(filename, "utf8"), filename);
  return loaded.exports as T;
}
