// One Node-RED runtime with this package and the editor open in headless Chromium, for the browser tests; plus the
// few editor steps they share (import an example, deploy, read a node's status).
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Locator, Page } from "playwright-core";
import { repositoryRoot, startNodeRed, type RunningNodeRed } from "../../scripts/node-red-runtime";
import { launchChromium } from "./browser";

/** Screenshots land here (kept by CI when a test fails). */
export const artifacts = join(repositoryRoot, "test-artifacts");

/** Polls `read` until `accept` holds; fails with the last value seen (the UI updates asynchronously). */
export async function waitUntil<T>(read: () => Promise<T>, accept: (value: T) => boolean, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!accept(value)) {
    if (Date.now() > deadline) throw new Error(`${what} not seen within ${timeoutMs} ms; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    value = await read();
  }
  return value;
}

/** The canvas node (an SVG group) whose label matches. */
export function canvasNode(page: Page, label: string | RegExp): Locator {
  return page
    .locator("#red-ui-workspace-chart g.red-ui-flow-node-group")
    .filter({ has: page.locator(".red-ui-flow-node-label", { hasText: label }) });
}

export async function statusText(node: Locator): Promise<string> {
  // allTextContents does not wait: the status element appears only once the runtime reports a status.
  return (await node.locator(".red-ui-flow-node-status-label").allTextContents()).join(" ").trim();
}

export class EditorSession {
  /** Uncaught errors of the editor page; a test ends by requiring none. */
  readonly pageErrors: string[] = [];

  private constructor(
    readonly page: Page,
    readonly runtime: RunningNodeRed,
    private readonly browser: Browser,
    private readonly userDir: string,
  ) {
    page.on("pageerror", (error) => this.pageErrors.push(error.message));
  }

  /** Starts Chromium first (a missing one fails at once, saying how to install it), then the runtime with `env`. */
  static async open(label: string, env: Record<string, string> = {}): Promise<EditorSession> {
    mkdirSync(artifacts, { recursive: true });
    const browser = await launchChromium();
    const userDir = mkdtempSync(join(tmpdir(), `iot-anomaly-${label}-`));
    try {
      const runtime = await startNodeRed({ userDir, flows: [], env: { IOT_ANOMALY_STATE_DIR: join(userDir, "state"), ...env } });
      const page = await browser.newPage({ viewport: { width: 1680, height: 1000 } });
      page.setDefaultTimeout(30_000);
      const session = new EditorSession(page, runtime, browser, userDir);
      await page.goto(runtime.url);
      await page.locator("#red-ui-palette-IoT_anomaly .red-ui-palette-node").first().waitFor();
      return session;
    } catch (error) {
      await browser.close().catch(() => undefined);
      rmSync(userDir, { recursive: true, force: true });
      throw error;
    }
  }

  /** For afterEach: a screenshot of the page when the test failed, named after it. */
  async screenshotIfFailed(test: Mocha.Test | undefined, prefix: string): Promise<void> {
    if (test?.state !== "failed") return;
    const name = test.title.replace(/[^a-z0-9]+/gi, "-").slice(0, 60);
    await this.page.screenshot({ path: join(artifacts, `failed-${prefix}${name}.png`) }).catch(() => undefined);
  }

  /** Drags a node type from the palette onto the canvas, dropping it at (x, y) of the canvas; Node-RED selects it. */
  async dragFromPalette(type: string, x: number, y: number): Promise<void> {
    const page = this.page;
    const source = page.locator(`#red-ui-palette-IoT_anomaly .red-ui-palette-node[data-palette-type="${type}"]`);
    await source.scrollIntoViewIfNeeded();
    const from = (await source.boundingBox())!;
    const chart = (await page.locator("#red-ui-workspace-chart").boundingBox())!;
    // jQuery UI's draggable starts after a few pixels of movement, then follows mousemove events to the drop.
    await page.mouse.move(from.x + from.width / 2, from.y + from.height / 2);
    await page.mouse.down();
    await page.mouse.move(from.x + from.width / 2 + 20, from.y + from.height / 2, { steps: 5 });
    await page.mouse.move(chart.x + x, chart.y + y, { steps: 20 });
    await page.mouse.up();
  }

  /** Import > Examples > node-red-contrib-iot-anomaly > `name`, as a user does. */
  async importExample(name: string): Promise<void> {
    const page = this.page;
    await page.locator("#red-ui-header-button-sidemenu").click();
    await page.locator("#menu-item-import").click();
    await page.locator("#red-ui-clipboard-dialog-import-tabs li", { hasText: "Examples" }).click();
    const examples = page.locator("#red-ui-clipboard-dialog-import-tab-examples");
    await examples.locator(".red-ui-treeList-label", { hasText: "node-red-contrib-iot-anomaly" }).click();
    await examples.locator(".red-ui-treeList-label", { hasText: new RegExp(`^${name}$`) }).click();
    const importButton = page.locator("#red-ui-clipboard-dialog-ok");
    await waitUntil(() => importButton.isEnabled(), Boolean, "Import button enabled");
    await importButton.click();
    await importButton.waitFor({ state: "hidden" });
  }

  /**
   * Clicks Deploy. Node-RED asks for confirmation when a node is not properly configured: the examples must be
   * valid, so that dialog is a failure quoting its text.
   */
  async deploy(): Promise<void> {
    const page = this.page;
    await page.locator("#red-ui-header-button-deploy").click();
    const deployed = page.locator(".red-ui-notification", { hasText: "Successfully deployed" });
    const confirm = page.locator("#red-ui-deploy-dialog-confirm-deploy-deploy");
    await deployed.or(confirm).first().waitFor();
    if (await confirm.isVisible()) {
      const text = await page.locator(".red-ui-notification").last().innerText();
      await confirm.click();
      assert.fail(`Deploy asked for confirmation: ${text}`);
    }
    await waitUntil(() => page.locator("#red-ui-header-button-deploy").getAttribute("class"), (c) => /\bdisabled\b/.test(c ?? ""), "Deploy button disabled after deploy");
  }

  async close(): Promise<void> {
    await this.browser.close().catch(() => undefined);
    await this.runtime.stop();
    rmSync(this.userDir, { recursive: true, force: true });
  }
}
