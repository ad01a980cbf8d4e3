// A real, small file system (tmpfs) that a test can fill to the last block, to see what SQLite and the sink do when
// the disk is full and when space comes back. Mounting needs the right to (root, as on the project's machine and in
// CI). Where it is refused, a test that needs it skips with the reason, except under CI=true, where it fails: a test
// of a real part never skips there.
import { execFileSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface SmallDisk {
  /** The mounted directory. */
  readonly dir: string;
  /** Takes every free block with a filler file. */
  fill(): void;
  /** Deletes the filler: the space is free again. */
  free(): void;
  unmount(): void;
}

/** Mounts a tmpfs of `sizeKiB`; throws when the system refuses (no permission, no tmpfs). */
export function mountSmallDisk(sizeKiB: number): SmallDisk {
  const dir = mkdtempSync(join(tmpdir(), "small-disk-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${sizeKiB}k`, "tmpfs", dir], { stdio: "pipe" });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`could not mount a ${sizeKiB} KiB tmpfs at ${dir} (needs root): ${stderr || (error as Error).message}`);
  }
  const filler = join(dir, "filler");
  return {
    dir,
    fill() {
      const fd = openSync(filler, "a");
      try {
        // Large chunks first, then smaller ones, until not even 512 bytes fit.
        for (const size of [65_536, 4096, 512]) {
          const chunk = Buffer.alloc(size, 0x2e);
          for (;;) {
            try {
              writeSync(fd, chunk);
            } catch (error) {
              if ((error as NodeJS.ErrnoException).code === "ENOSPC") break;
              throw error;
            }
          }
        }
      } finally {
        closeSync(fd);
      }
    },
    free() {
      rmSync(filler, { force: true });
    },
    unmount() {
      execFileSync("umount", [dir], { stdio: "pipe" });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A small disk for a mocha test: skipped with the reason where mounting is refused, failed under CI=true. */
export function smallDiskForTest(context: Mocha.Context, sizeKiB: number): SmallDisk {
  try {
    return mountSmallDisk(sizeKiB);
  } catch (error) {
    if (process.env.CI === "true") throw error;
    console.log(`      skipped: ${(error as Error).message}`);
    context.skip();
  }
}
