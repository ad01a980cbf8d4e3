// Durable JSON snapshots for detector state and trained models: written to a temp file and renamed,
// so a crash mid-write leaves the previous snapshot intact instead of a truncated file.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

export function saveJsonAtomic(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, JSON.stringify(value));
  renameSync(temporary, path);
}

/** The stored value, or undefined when there is no snapshot yet. A corrupt file throws with its path. */
export function loadJson<T>(path: string): T | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new Error(`state file ${path} is not valid JSON (${(error as Error).message})`);
  }
}
