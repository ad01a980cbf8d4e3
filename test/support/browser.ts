// Launches the system Chromium (Debian's /usr/bin/chromium, or CHROMIUM_PATH) headless through playwright-core for
// the editor tests. No browser is ever downloaded: a missing executable is an error that says how to install one.
import { accessSync, constants } from "node:fs";
import { chromium, type Browser } from "playwright-core";

export const defaultChromiumPath = "/usr/bin/chromium";

export function chromiumPath(): string {
  return process.env.CHROMIUM_PATH || defaultChromiumPath;
}

export async function launchChromium(): Promise<Browser> {
  const executablePath = chromiumPath();
  try {
    accessSync(executablePath, constants.X_OK);
  } catch {
    // Fails the test (never skips, CI or not): the editor test is part of the suite.
    throw new Error(
      `Chromium not found at ${executablePath}. Install it with \`apt-get install chromium\` (Debian/Ubuntu) ` +
        `or point CHROMIUM_PATH at a Chromium/Chrome executable. The editor tests never download a browser.`,
    );
  }
  return chromium.launch({
    executablePath,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}
