// Durable JSON snapshots for detector state and trained models: written to a temp file and renamed,
// so a crash mid-write leaves the previous snapshot intact instead of a truncated file.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { mkdir, unlink, writeFile } from "node:fs/promises";
import { dirname } from "node:path";

/** Replaces `path` with JSON text (from JSON.stringify, or a detector's own faster writer), atomically. */
export function saveJsonTextAtomic(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, text);
  renameSync(temporary, path);
}

/**
 * Writes `text` (already JSON) to a temp file of its own off the event loop, then asks `shouldReplace()` on the
 * event loop whether it is still the newest state: if so the temp file replaces `path` there and then (a rename, so
 * nothing else can write `path` in between), else it is removed. Resolves with whether `path` was replaced.
 */
export async function saveJsonTextInBackground(path: string, text: string, shouldReplace: () => boolean): Promise<boolean> {
  await mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.background.tmp`;
  await writeFile(temporary, text);
  if (!shouldReplace()) {
    await unlink(temporary).catch(() => {});
    return false;
  }
  renameSync(temporary, path);
  return true;
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
