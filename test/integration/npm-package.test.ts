// What a user gets from npm: the packed tarball holds only runtime files, and once installed into a fresh Node-RED
// user directory the way the palette manager installs it, Node-RED registers every node (with its editor form, help,
// message catalog and icon), offers the shipped examples under Import > Examples, and the imported example runs:
// events are scored and stored in SQLite by the installed code (better-sqlite3 compiled by that install).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import Database from "better-sqlite3";
import { repositoryRoot, startNodeRed, type RunningNodeRed } from "../../scripts/node-red-runtime";
import { flowFileEnv, installedUserDir, packageName, type InstalledPackage } from "../support/packed-install";

interface PackageJson {
  version: string;
  main: string;
  types: string;
  exports: Record<string, string | Record<string, string>>;
  "node-red": { nodes: Record<string, string> };
}

/** One node set as GET /nodes (Accept: application/json) lists it. */
interface NodeSet {
  id: string;
  module: string;
  types: string[];
  enabled: boolean;
  user?: boolean;
  version?: string;
  err?: unknown;
}

const manifest = JSON.parse(readFileSync(join(repositoryRoot, "package.json"), "utf8")) as PackageJson;
const nodeTypes = manifest["node-red"].nodes;

/** The palette icon a node's editor definition names (`icon: "x.svg"`), read from the installed package: one of
 * ours (shipped in the package), or undefined for a config node (no palette entry) or a font-awesome/ icon (comes
 * with Node-RED). A palette node without an icon fails here. */
function declaredIcon(userDir: string, type: string, runtimeFile: string): string | undefined {
  const html = readFileSync(join(userDir, "node_modules", packageName, runtimeFile.replace(/\.js$/, ".html")), "utf8");
  const icon = html.match(/\bicon\s*:\s*["']([^"']+)["']/)?.[1];
  if (!icon) {
    assert.match(html, /\bcategory\s*:\s*["']config["']/, `${type}: its editor definition names no icon`);
    return undefined;
  }
  return icon.startsWith("font-awesome/") ? undefined : icon;
}

describe("integration: the npm package, packed and installed as the palette manager does", function () {
  let installed: InstalledPackage;
  /** Paths inside the tarball, without npm's leading "package/". */
  let entries: string[];

  before(async function () {
    this.timeout(300_000); // npm pack + npm install, which compiles better-sqlite3 (1–2 minutes)
    installed = await installedUserDir();
    const kilobytes = (installed.tarballBytes / 1024).toFixed(1);
    console.log(
      `      npm pack: ${posix.basename(installed.tarball)} is ${installed.tarballBytes} bytes (${kilobytes} KB); ` +
        `npm install into a fresh user directory took ${(installed.installMs / 1000).toFixed(0)} s`,
    );
    entries = execFileSync("tar", ["-tzf", installed.tarball], { encoding: "utf8" })
      .split("\n")
      .filter((line) => line && !line.endsWith("/"))
      .map((line) => line.replace(/^package\//, ""));
  });

  describe("the tarball", () => {
    it("holds no tests, sources, bench, scripts, CI, dev flows, docker files or node_modules", () => {
      const forbidden = entries.filter(
        (entry) =>
          /^(test|bench|scripts|\.ci|flows|docker|src|nodes|test-artifacts|data|\.github)\//.test(entry) ||
          /(^|\/)node_modules\//.test(entry) ||
          (entry.endsWith(".ts") && !entry.endsWith(".d.ts")) ||
          /\.(map|tgz|log)$/.test(entry),
      );
      assert.deepEqual(forbidden, [], "files a user's install does not need");
      const topLevel = [...new Set(entries.map((entry) => entry.split("/")[0]))].sort();
      assert.deepEqual(topLevel, ["LICENSE", "README.md", "dist", "examples", "package.json"]);
    });

    it("holds each node's runtime, editor form, help, message catalog and palette icon beside each other", () => {
      const missing: string[] = [];
      const expect = (path: string) => entries.includes(path) || missing.push(path);
      for (const [type, runtimeFile] of Object.entries(nodeTypes)) {
        const folder = posix.dirname(runtimeFile); // dist/nodes/<name>
        const name = posix.basename(runtimeFile, ".js");
        expect(runtimeFile);
        expect(`${folder}/${name}.html`);
        expect(`${folder}/locales/en-US/${name}.json`);
        expect(`${folder}/locales/en-US/${name}.html`);
        const icon = declaredIcon(installed.userDir, type, runtimeFile);
        if (icon) expect(`${folder}/icons/${icon}`);
      }
      assert.deepEqual(missing, []);
    });

    it("holds package.json, README.md, LICENSE, the library entry points and the example flows", () => {
      const exportTargets = Object.values(manifest.exports).flatMap((target) => (typeof target === "string" ? [target] : Object.values(target)));
      for (const path of ["package.json", "README.md", "LICENSE", manifest.main, manifest.types, ...exportTargets]) {
        assert.ok(entries.includes(path.replace(/^\.\//, "")), `${path} is not in the tarball`);
      }
      const examples = entries.filter((entry) => /^examples\/[^/]+\.json$/.test(entry));
      assert.ok(examples.length > 0, "no examples/*.json in the tarball");
    });
  });

  it("installs the iot-anomaly command, which scores a NAB-format folder with the installed code", () => {
    const bin = join(installed.userDir, "node_modules", ".bin", "iot-anomaly");
    const help = execFileSync(bin, ["--help"], { encoding: "utf8" });
    assert.match(help, /evaluate/);
    const scores = JSON.parse(
      execFileSync(bin, ["evaluate", "--corpus", join(repositoryRoot, "test", "fixtures", "nab-mini"), "--detector", "rolling-3-sigma", "--json"], { encoding: "utf8" }),
    ) as Record<string, unknown>;
    for (const profile of ["standard", "reward_low_FP_rate", "reward_low_FN_rate"]) assert.equal(typeof scores[profile], "number", `${profile} in ${JSON.stringify(scores).slice(0, 300)}`);
  });

  describe("Node-RED started on the installed package", function () {
    this.timeout(90_000);
    let runtime: RunningNodeRed | undefined;
    let scratch: string;

    const get = async (path: string, accept = "application/json") => {
      const response = await fetch(`${runtime!.url}${path}`, { headers: { Accept: accept } });
      assert.equal(response.status, 200, `GET ${path} answered ${response.status}: ${await response.clone().text()}`);
      return response;
    };

    before(async () => {
      scratch = mkdtempSync(join(tmpdir(), "iot-anomaly-npm-package-"));
      runtime = await startNodeRed({
        userDir: installed.userDir,
        env: { ...flowFileEnv(installed.userDir, "npm-package", []), IOT_ANOMALY_STATE_DIR: join(scratch, "state") },
      });
    });

    after(async () => {
      await runtime?.stop();
      rmSync(scratch, { recursive: true, force: true });
    });

    it("registers every node type from the installed module, enabled and without errors", async () => {
      const sets = (await (await get("/nodes")).json()) as NodeSet[];
      for (const type of Object.keys(nodeTypes)) {
        const set = sets.find((candidate) => candidate.types.includes(type));
        assert.ok(set, `${type} is not registered. Runtime log:\n${runtime!.log().slice(-3000)}`);
        assert.equal(set.module, packageName, `${type} comes from ${set.module}`);
        assert.equal(set.err, undefined, `${type} failed to load: ${String(set.err)}`);
        assert.equal(set.enabled, true, `${type} is disabled`);
        assert.equal(set.version, manifest.version);
      }
    });

    it("loads the module from the user directory's node_modules, not the working copy", async () => {
      const module = (await (await get(`/nodes/${packageName}`)).json()) as {
        name: string;
        version: string;
        user: boolean;
        path?: string;
        nodes: NodeSet[];
      };
      assert.equal(module.name, packageName);
      assert.equal(module.version, manifest.version);
      // "user": listed in the user directory's package.json, so the palette manager shows it as removable/upgradable.
      assert.equal(module.user, true, "not recorded as user-installed in the user directory's package.json");
      assert.deepEqual(module.nodes.flatMap((set) => set.types).sort(), Object.keys(nodeTypes).sort());
      assert.equal(realpathSync(module.path!), realpathSync(join(installed.userDir, "node_modules", packageName)));
    });

    it("serves each node's editor form, help text, message catalog and icon to the editor", async () => {
      const editorHtml = await (await get("/nodes", "text/html")).text();
      // The editor loads every node set's message catalog from nodes/messages, keyed by "<module>/<set>".
      const catalogs = (await (await get("/nodes/messages?lng=en-US")).json()) as Record<string, Record<string, { label?: object }>>;
      for (const [type, runtimeFile] of Object.entries(nodeTypes)) {
        assert.match(editorHtml, new RegExp(`registerType\\(\\s*['"]${type}['"]`), `${type}: no editor definition`);
        assert.match(editorHtml, new RegExp(`data-template-name=["']${type}["']`), `${type}: no edit form`);
        assert.match(editorHtml, new RegExp(`data-help-name=["']${type}["']`), `${type}: no help text`);
        assert.ok(catalogs[`${packageName}/${type}`]?.[type]?.label, `${type}: no en-US message catalog with labels`);
        const icon = declaredIcon(installed.userDir, type, runtimeFile);
        if (icon) assert.match(await (await get(`/icons/${packageName}/${icon}`, "image/*")).text(), /<svg|PNG/, `${type}: icon ${icon} is not an image`);
      }
    });

    it("offers the shipped example flows under Import > Examples", async () => {
      // The editor's examples dialog reads the "examples" library: library/examples/flows/<module>/<name>.
      const modules = (await (await get("/library/examples/flows/")).json()) as string[];
      assert.ok(modules.includes(packageName), `examples library lists ${JSON.stringify(modules)}`);
      const listing = (await (await get(`/library/examples/flows/${packageName}`)).json()) as Array<{ fn: string }>;
      const shipped = entries
        .filter((entry) => /^examples\/[^/]+\.json$/.test(entry))
        .map((entry) => posix.basename(entry, ".json"))
        .sort();
      assert.deepEqual(listing.map((example) => example.fn).sort(), shipped);
      for (const name of shipped) {
        const flow = (await (await get(`/library/examples/flows/${packageName}/${name}`)).json()) as Array<{ type: string }>;
        const ours = flow.filter((node) => node.type in nodeTypes);
        assert.ok(ours.length > 0, `example ${name} uses none of the package's nodes`);
      }
    });

    it("deploys the example as imported from Import > Examples: events are scored and stored in SQLite", async () => {
      // The example that needs nothing but Node-RED (the others need a Kafka broker).
      const flow = (await (await get(`/library/examples/flows/${packageName}/embedded-pipeline`)).json()) as Array<Record<string, unknown>>;
      // A short, fast, seeded run (enough for the forest's 1000 training events, then scoring) into a scratch database.
      const events = 1500;
      const databasePath = join(scratch, "anomalies.db");
      Object.assign(flow.find((node) => node.type === "iot-sensor-sim")!, { seed: 3, ratePerStation: 1000, limit: events });
      Object.assign(flow.find((node) => node.type === "iot-sqlite-sink")!, { path: databasePath });
      const deployed = await fetch(`${runtime!.url}/flows`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "Node-RED-Deployment-Type": "full" },
        body: JSON.stringify(flow),
      });
      assert.equal(deployed.status, 204, `deploy answered ${deployed.status}: ${await deployed.text()}`);

      let stored = { rows: 0, scored: 0 };
      const deadline = Date.now() + 60_000;
      while (stored.rows < events && Date.now() < deadline) {
        await new Promise((resolveWait) => setTimeout(resolveWait, 250));
        try {
          const database = new Database(databasePath, { readonly: true, fileMustExist: true });
          stored = database.prepare("SELECT count(*) AS rows, count(iforest_score) AS scored FROM events").get() as typeof stored;
          database.close();
        } catch {
          // The sink has not created the file or table yet.
        }
      }
      assert.equal(stored.rows, events, `rows stored from the installed package. Runtime log:\n${runtime!.log().slice(-3000)}`);
      assert.ok(stored.scored >= events - 1000 - 100, `only ${stored.scored} rows carry an isolation-forest score`);
    });
  });
});
