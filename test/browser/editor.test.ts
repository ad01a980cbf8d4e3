// The package in the real Node-RED editor (headless system Chromium): the palette offers our nodes under
// "IoT anomaly", invalid settings are explained, a node dragged onto the canvas is edited through its dialog and
// relabelled, every node's dialog is translated, and the shipped example imported from Import > Examples deploys and
// runs: status texts on every node and anomalies in the debug sidebar.
import assert from "node:assert/strict";
import { join } from "node:path";
import { artifacts, canvasNode, EditorSession, statusText, waitUntil } from "../support/editor-session";

// Node-RED escapes the category name into element ids: "IoT anomaly" -> "IoT_anomaly".
const category = "#red-ui-palette-IoT_anomaly";
const paletteLabels: Record<string, string> = {
  "iot-sensor-sim": "sensor-sim",
  "iot-rolling-3-sigma": "rolling-3-sigma",
  "iot-isolation-forest": "isolation-forest",
  "iot-contextual-novelty": "contextual-novelty",
  "iot-sqlite-sink": "sqlite-sink",
  "iot-kafka-in": "kafka-in",
  "iot-kafka-out": "kafka-out",
};

describe("browser: the package in the Node-RED editor", function () {
  this.timeout(120_000);
  let editor: EditorSession | undefined;
  let page: EditorSession["page"];

  before(async function () {
    this.timeout(90_000);
    editor = await EditorSession.open("editor");
    page = editor.page;
  });

  afterEach(async function () {
    await editor?.screenshotIfFailed(this.currentTest, "");
  });

  after(async () => {
    await editor?.close();
  });

  it("shows every node of the package under its category with its short label", async () => {
    const nodes = page.locator(`${category} .red-ui-palette-node`);
    await nodes.first().waitFor();
    const header = page.locator("#red-ui-palette-header-IoT_anomaly");
    assert.equal((await header.textContent())?.trim(), "IoT anomaly");

    const types = await nodes.evaluateAll((elements) => elements.map((element) => element.getAttribute("data-palette-type")));
    assert.deepEqual([...types].sort(), Object.keys(paletteLabels).sort());
    for (const [type, label] of Object.entries(paletteLabels)) {
      const node = page.locator(`${category} .red-ui-palette-node[data-palette-type="${type}"]`);
      await node.scrollIntoViewIfNeeded();
      assert.ok(await node.isVisible(), `${type} is visible in the palette`);
      // Node-RED wraps palette labels at spaces and hyphens and shows "rolling - 3 - sigma": compare without spaces.
      const visible = (await node.locator(".red-ui-palette-label").innerText()).replace(/\s+/g, "");
      assert.equal(visible, label, `palette label of ${type}`);
      // Icons load from the package (a missing icon falls back to Node-RED's default arrow).
      assert.equal(await node.locator(".red-ui-palette-icon-container").getAttribute("data-palette-icon"), `icons/node-red-contrib-iot-anomaly/${label}.svg`);
    }
    await page.screenshot({ path: join(artifacts, "palette.png") });
  });

  it("explains invalid settings with messages Node-RED shows: validators take (value, opt), texts come from the catalog", async () => {
    // Node-RED reads a string from a validator as "invalid, because ..." only when the validator declares two
    // parameters; a one-parameter validator returning a message makes every value count as valid.
    const types = [...Object.keys(paletteLabels), "iot-kafka-broker"];
    const findings = await page.evaluate((nodeTypes) => {
      const RED = (window as unknown as { RED: { nodes: { getType(type: string): { _: unknown; defaults: Record<string, { validate?: (...args: unknown[]) => unknown }> } } } }).RED;
      const badValues = ["not valid !", "-1", "1.5", "999999999999999999", "a,,b", ""];
      const found: Array<{ setting: string; parameters: number; message: string }> = [];
      for (const type of nodeTypes) {
        const definition = RED.nodes.getType(type);
        for (const [property, spec] of Object.entries(definition.defaults)) {
          if (typeof spec.validate !== "function") continue;
          for (const value of badValues) {
            let result: unknown;
            try {
              result = spec.validate.call({ type, _: definition._ }, value, {});
            } catch (error) {
              result = `threw ${String(error)}`;
            }
            if (typeof result === "string") {
              found.push({ setting: `${type}.${property}`, parameters: spec.validate.length, message: result });
              break;
            }
          }
        }
      }
      return found;
    }, types);
    assert.ok(findings.length >= 10, `validators with messages found: ${findings.map((item) => item.setting).join(", ")}`);
    for (const { setting, parameters, message } of findings) {
      assert.equal(parameters, 2, `${setting}: its validator returns a message but takes ${parameters} parameter(s)`);
      assert.doesNotMatch(message, /^(threw|iot-[\w-]+\.)/, `${setting}: message "${message}"`);
    }
  });

  it("drags rolling-3-sigma onto the canvas and relabels it after the window is edited", async () => {
    await editor!.dragFromPalette("iot-rolling-3-sigma", 300, 200);

    // Defaults: k 3, window 100, both directions, no metrics -> "3σ w=100".
    const before = canvasNode(page, /^3σ w=100$/);
    await before.waitFor();
    await before.locator("rect.red-ui-flow-node").dblclick();
    const windowSize = page.locator("#node-input-windowSize");
    await windowSize.waitFor({ state: "visible" });
    assert.equal(await windowSize.inputValue(), "100");
    await windowSize.fill("50");
    await page.locator("#node-dialog-ok").click();
    await windowSize.waitFor({ state: "detached" });

    await canvasNode(page, /^3σ w=50$/).waitFor();
    assert.equal(await canvasNode(page, /^3σ w=100$/).count(), 0, "the old label is gone");
  });

  it("opens each node fresh from the palette with every text of its dialog translated", async () => {
    const invalidFields: string[] = [];
    for (const [index, type] of Object.keys(paletteLabels).entries()) {
      await editor!.dragFromPalette(type, 150 + 170 * (index % 4), 420 + 90 * Math.floor(index / 4));
      // Enter edits the selected node: the one just dropped.
      await page.keyboard.press("Enter");
      const cancel = page.locator("#node-dialog-cancel");
      await cancel.waitFor({ state: "visible" });
      const tray = page.locator(".red-ui-tray", { has: cancel });
      // A key missing from the catalog shows as nothing at all: every data-i18n target must have text.
      const untranslated = await tray.evaluate((element) => {
        const missing: string[] = [];
        for (const item of Array.from(element.querySelectorAll("[data-i18n]"))) {
          for (const spec of (item.getAttribute("data-i18n") ?? "").split(";")) {
            const match = /^\[(\w+)\](.*)$/.exec(spec);
            const target = match ? match[1] : "text";
            const shown = target === "text" || target === "html" ? item.textContent : item.getAttribute(target);
            if (!shown?.trim()) missing.push(match ? match[2] : spec);
          }
        }
        return missing;
      });
      assert.deepEqual(untranslated, [], `${type}: texts missing from the catalog`);
      for (const id of await tray.locator(".input-error:visible").evaluateAll((elements) => elements.map((element) => element.id))) invalidFields.push(`${type} ${id}`);
      await cancel.click();
      await cancel.waitFor({ state: "detached" });
      await page.keyboard.press("Delete");
    }
    // Marked only where a fresh node cannot guess and the runtime would refuse to start: the forest's features, the
    // Kafka nodes' broker and the topics a kafka-in reads.
    assert.deepEqual(invalidFields, [
      "iot-isolation-forest node-input-features",
      "iot-kafka-in node-input-broker",
      "iot-kafka-in node-input-topics",
      "iot-kafka-out node-input-broker",
    ]);
  });

  it("imports the embedded-pipeline example from Import > Examples and deploys it", async () => {
    await editor!.importExample("embedded-pipeline");

    // The example brings its own tab; Node-RED adds it beside "Flow 1" without switching to it.
    const tab = page.locator("#red-ui-workspace-tabs .red-ui-tab", { hasText: "Embedded anomaly pipeline" });
    await tab.click();
    await page.locator("#red-ui-workspace-tabs .red-ui-tab.active", { hasText: "Embedded anomaly pipeline" }).waitFor();
    await canvasNode(page, /^sim .* 5×20\/s$/).waitFor();

    await editor!.deploy();
  });

  it("shows each node's status and anomalies in the debug sidebar", async () => {
    await page.locator("#red-ui-tab-debug-link-button").click();
    // [node label on the canvas, its status text once running]
    const statuses: Array<[RegExp, RegExp]> = [
      [/^sim .* 5×20\/s$/, /^\d+ ev\/s · [\d.]+k? sent$/],
      [/^3σ w=100$/, /^\d+ sensors · [\d.]+k? events · [\d.]+k? anomalies$/],
      [/^sqlite anomalies\.db$/, /^[\d.]+k? stored · [\d.]+k? anomalies$/],
      // Trains on the first 1000 events (10 s at the example's 100 ev/s), then scores.
      [/^iForest 3 features top 1%$/, /^v\d+ · [\d.]+k? scored · [\d.]+k? anomalies$/],
    ];
    await Promise.all(
      statuses.map(([label, pattern]) =>
        waitUntil(() => statusText(canvasNode(page, label)), (text) => pattern.test(text), `status of node ${label} matching ${pattern}`, 40_000),
      ),
    );

    const messages = page.locator("#red-ui-sidebar-content .red-ui-debug-msg");
    await messages.first().waitFor({ timeout: 40_000 });
    const first = messages.first();
    assert.match(await first.locator(".red-ui-debug-msg-name").innerText(), /3σ anomalies|forest anomalies/, "from the example's debug nodes");
    // The payload is the flagged event (the example sends one event per message).
    const shown = await first.innerText();
    assert.match(shown, /eventId: "station-\d+:/);
    assert.match(shown, /sensorId: "station-\d+"/);

    // Park the pointer on an empty spot of the canvas and let the sidebar button's tooltip fade out.
    await page.mouse.move(700, 700);
    await waitUntil(() => page.locator(".red-ui-popover:visible").count(), (count) => count === 0, "tooltips hidden");
    await page.screenshot({ path: join(artifacts, "deployed-pipeline.png") });
    assert.deepEqual(editor!.pageErrors, [], "no uncaught errors in the editor");
  });
});
