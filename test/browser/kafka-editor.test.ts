// The Kafka nodes in the real Node-RED editor (headless system Chromium) against the real broker: the medallion
// example imported from Import > Examples keeps its packed-records setting and shows it in words, the edit dialog
// marks a topic Kafka would refuse, the help sidebar documents the setting, the shared broker's dialog shows TLS and
// SASL settings when chosen, and the deployed tabs turn their statuses green all the way to SQLite.
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { artifacts, canvasNode, EditorSession, statusText, waitUntil } from "../support/editor-session";
import { kafkaBrokers } from "../support/kafka-broker";

async function showTab(page: Page, label: string): Promise<void> {
  // Through the editor's API: a click on a tab scrolled half out of view can land as a double click, which opens the
  // tab's edit dialog instead.
  await page.evaluate((prefix) => {
    const RED = (window as unknown as { RED: { nodes: { eachWorkspace(visit: (ws: { id: string; label: string }) => void): void }; workspaces: { show(id: string): void } } }).RED;
    let id = "";
    RED.nodes.eachWorkspace((ws) => {
      if (ws.label.startsWith(prefix)) id = ws.id;
    });
    RED.workspaces.show(id);
  }, label);
  await page.locator("#red-ui-workspace-tabs .red-ui-tab.active", { hasText: label }).waitFor();
}

describe("browser: the Kafka nodes in the Node-RED editor (real broker)", function () {
  this.timeout(180_000);
  let editor: EditorSession | undefined;
  let page: Page;

  before(async function () {
    this.timeout(120_000);
    // The example's broker node reads ${KAFKA_BROKERS}, as on a user's machine or in the container.
    editor = await EditorSession.open("kafka-editor", { KAFKA_BROKERS: await kafkaBrokers() });
    page = editor.page;
  });

  afterEach(async function () {
    await editor?.screenshotIfFailed(this.currentTest, "kafka-");
  });

  after(async () => {
    await editor?.close();
  });

  it("imports the medallion example; kafka-out shows packed records in words and refuses a bad topic name", async () => {
    await editor!.importExample("medallion");

    await showTab(page, "Silver:");
    const scored = canvasNode(page, /^kafka-out iot\.scored$/);
    await scored.locator("rect.red-ui-flow-node").dblclick();
    const records = page.locator("#node-input-records");
    await records.waitFor({ state: "visible" });
    assert.equal(await records.inputValue(), "packed", "the example packs iot.scored");
    // The option's text comes from the locale file: a missing key would show as "iot-kafka-out.label.…".
    assert.equal((await records.locator("option:checked").innerText()).trim(), "packed: events of a partition in one record");
    assert.equal((await page.locator('label[for="node-input-records"]').innerText()).trim(), "Records");
    assert.match(await page.locator("#node-input-broker option:checked").innerText(), /KAFKA_BROKERS/, "the shared broker node");

    const topic = page.locator("#node-input-topic");
    assert.equal(await topic.inputValue(), "iot.scored");
    // Node-RED validates a dialog field on keyup and change, not on the input event fill() fires.
    await topic.fill("bad topic!");
    await topic.press("End");
    await waitUntil(() => topic.getAttribute("class"), (c) => /\binput-error\b/.test(c ?? ""), "the topic field marked invalid");
    // Hovering the field shows why, in words from the node's catalog.
    await topic.hover();
    await page.locator(".red-ui-popover:visible", { hasText: "a Kafka topic name" }).waitFor();
    await topic.fill("iot.scored");
    await topic.press("End");
    await waitUntil(() => topic.getAttribute("class"), (c) => !/\binput-error\b/.test(c ?? ""), "the topic field valid again");
    await page.locator("#node-dialog-cancel").click();
    await records.waitFor({ state: "detached" });

    // The help sidebar explains the setting for the selected node.
    await scored.locator("rect.red-ui-flow-node").click();
    await page.locator("#red-ui-tab-help-link-button").click();
    const help = page.locator(".red-ui-help");
    await waitUntil(async () => (await help.allInnerTexts()).join("\n"), (text) => /Records/.test(text) && /packed/i.test(text), "kafka-out's help about packed records");
  });

  it("edits the shared broker from kafka-out's dialog: TLS and SASL fields appear when chosen, the password is masked", async () => {
    await showTab(page, "Silver:");
    await canvasNode(page, /^kafka-out iot\.scored$/).locator("rect.red-ui-flow-node").dblclick();
    await page.locator("#node-input-btn-broker-edit").click();
    const brokers = page.locator("#node-config-input-brokers");
    await brokers.waitFor({ state: "visible" });
    assert.equal(await brokers.inputValue(), "${KAFKA_BROKERS}", "the example reads the address from the environment");

    const tlsRows = page.locator(".iot-kafka-broker-tls");
    const saslRows = page.locator(".iot-kafka-broker-sasl");
    assert.equal(await tlsRows.first().isVisible(), false, "TLS settings hidden while TLS is off");
    assert.equal(await saslRows.first().isVisible(), false, "no user or password without SASL");
    await page.locator("#node-config-input-tls").check();
    await tlsRows.first().waitFor({ state: "visible" });
    await page.locator("#node-config-input-saslMechanism").selectOption("scram-sha-512");
    await saslRows.first().waitFor({ state: "visible" });
    assert.equal(await page.locator("#node-config-input-password").getAttribute("type"), "password");

    await brokers.fill("not a broker");
    await brokers.press("End");
    await waitUntil(() => brokers.getAttribute("class"), (c) => /\binput-error\b/.test(c ?? ""), "the broker list marked invalid");
    // Cancel both dialogs: the example stays as shipped for the deploy below.
    await page.locator("#node-config-dialog-cancel").click();
    await brokers.waitFor({ state: "detached" });
    await page.locator("#node-dialog-cancel").click();
    await page.locator("#node-input-records").waitFor({ state: "detached" });
  });

  it("shows kafka-in's retry setting: Attempts from the example, a bad count refused, empty allowed (the default)", async () => {
    await showTab(page, "Gold:");
    await canvasNode(page, /^kafka-in iot\.scored \(iot-gold\)$/).locator("rect.red-ui-flow-node").dblclick();
    const attempts = page.locator("#node-input-maxAttempts");
    await attempts.waitFor({ state: "visible" });
    assert.equal(await attempts.inputValue(), "5");
    assert.equal((await page.locator('label[for="node-input-maxAttempts"]').innerText()).trim(), "Attempts");
    // The tip next to it tells how to wire failures back (a Catch node), in words from the catalog.
    assert.match(await page.locator(".form-tips", { hasText: "Catch" }).innerText(), /dead letters/);
    for (const [value, valid] of [["0", false], ["101", false], ["", true], ["12", true]] as const) {
      await attempts.fill(value);
      await attempts.press("End");
      await waitUntil(() => attempts.getAttribute("class"), (c) => /\binput-error\b/.test(c ?? "") !== valid, `Attempts "${value}" marked ${valid ? "valid" : "invalid"}`);
    }
    // Cancel: the example stays as shipped for the deploy below.
    await page.locator("#node-dialog-cancel").click();
    await attempts.waitFor({ state: "detached" });
  });

  it("deploys the three tabs; Bronze, Silver and Gold turn green and Gold stores events", async () => {
    await editor!.deploy();

    const expectations: Array<[string, RegExp, RegExp]> = [
      ["Bronze:", /^kafka-out iot\.raw$/, /^connected · [\d.]+k? sent$/],
      ["Silver:", /^kafka-in iot\.raw \(iot-silver\)$/, /^group iot-silver · \d+ partitions? · [\d.]+k? in/],
      ["Silver:", /^kafka-out iot\.scored$/, /^connected · [\d.]+k? sent$/],
      ["Gold:", /^kafka-in iot\.scored \(iot-gold\)$/, /^group iot-gold · \d+ partitions? · [\d.]+k? in/],
      ["Gold:", /^sqlite anomalies\.db$/, /^[1-9][\d.]*k? stored · [\d.]+k? anomalies$/],
    ];
    for (const [tab, label, pattern] of expectations) {
      await showTab(page, tab);
      await waitUntil(() => statusText(canvasNode(page, label)), (text) => pattern.test(text), `status of ${label} on ${tab} matching ${pattern}`, 60_000);
    }
    await page.screenshot({ path: join(artifacts, "kafka-gold-tab.png") });
    assert.deepEqual(editor!.pageErrors, [], "no uncaught errors in the editor");
  });
});
