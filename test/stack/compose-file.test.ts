// The container stack's files, checked without a Docker engine: Debian's docker-compose validates the compose file
// (and refuses it while a password is missing), every image and base image is pinned to a version, the services are
// wired to each other the way the flows, the Grafana data source and Prometheus expect, the image's Dockerfile
// packs and installs the package and ends as the non-root user, and the container's flows are the medallion flows.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hashSync } from "bcryptjs";
import { repositoryRoot, YOUNG_GENERATION_FLAG } from "../../scripts/node-red-runtime";
import { dashboardsDir, dockerDir, loadYaml, provisionedDataSources, SQLITE_DATASOURCE } from "../support/stack-dashboards";
import { imageNodeOptions } from "../support/stack-node-red";
import { requireCommand, runCommand } from "../support/stack-tools";

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  user?: string;
  environment?: Record<string, string | number>;
  depends_on?: Record<string, { condition: string }> | string[];
  volumes?: string[];
  ports?: string[];
  healthcheck?: { test: string[] };
  command?: string[];
}

interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes: Record<string, unknown>;
}

const composePath = join(dockerDir, "compose.yml");
const envExamplePath = join(dockerDir, ".env.example");
const dockerfilePath = join(dockerDir, "Dockerfile");
const compose = loadYaml<ComposeFile>(composePath);
const service = (name: string): ComposeService => {
  const found = compose.services[name];
  assert.ok(found, `compose.yml has a "${name}" service`);
  return found;
};

/** A tag that names a version: digits with dots (optionally a leading v and a suffix such as -20), never latest. */
const VERSION_TAG = /^v?\d+(\.\d+)+(-[A-Za-z0-9.]+)*$/;
function assertPinned(reference: string, where: string): void {
  if (/@sha256:[0-9a-f]{64}$/.test(reference)) return;
  const colon = reference.lastIndexOf(":");
  const tag = colon > reference.lastIndexOf("/") ? reference.slice(colon + 1) : "";
  assert.ok(tag !== "" && tag !== "latest", `${where}: ${reference} is not pinned (no tag, or latest)`);
  assert.match(tag, VERSION_TAG, `${where}: ${reference} has a tag that is not a version`);
}

/** `mount` ("volume:/path[:ro]") of a service, by container path. */
function mountAt(serviceName: string, containerPath: string): { source: string; readOnly: boolean } | undefined {
  for (const volume of service(serviceName).volumes ?? []) {
    const [source, target, mode] = volume.split(":");
    if (target === containerPath) return { source, readOnly: mode === "ro" };
  }
  return undefined;
}

/** A complete .env: the example with its two passwords filled in. */
function completeEnvFile(directory: string): string {
  const filled = readFileSync(envExamplePath, "utf8")
    .replace(/^NODE_RED_ADMIN_PASSWORD_HASH=.*$/m, `NODE_RED_ADMIN_PASSWORD_HASH='${hashSync("a test password", 8)}'`)
    .replace(/^GRAFANA_ADMIN_PASSWORD=.*$/m, "GRAFANA_ADMIN_PASSWORD=another-test-password");
  const path = join(directory, "complete.env");
  writeFileSync(path, filled);
  return path;
}

describe("stack: docker/compose.yml and the Node-RED image", function () {
  this.timeout(60_000);
  let scratch: string;

  before(() => {
    scratch = mkdtempSync(join(tmpdir(), "iot-anomaly-compose-"));
  });

  after(() => rmSync(scratch, { recursive: true, force: true }));

  describe("docker-compose config (Debian's docker-compose, no engine needed)", () => {
    it("accepts the compose file with a complete .env", function () {
      const dockerCompose = requireCommand(this, "docker-compose", "docker-compose");
      const result = runCommand(dockerCompose, ["--env-file", completeEnvFile(scratch), "-f", composePath, "config", "-q"], { cwd: dockerDir });
      assert.equal(result.status, 0, `docker-compose config failed:\n${result.stderr}`);
    });

    it("refuses it while a password is missing: .env.example as shipped names the variable to set", function () {
      const dockerCompose = requireCommand(this, "docker-compose", "docker-compose");
      const environment = { ...process.env };
      for (const name of ["NODE_RED_ADMIN_PASSWORD_HASH", "GRAFANA_ADMIN_PASSWORD"]) delete environment[name];
      const result = runCommand(dockerCompose, ["--env-file", envExamplePath, "-f", composePath, "config", "-q"], { cwd: dockerDir, env: environment });
      assert.notEqual(result.status, 0, "docker-compose accepted the stack without passwords");
      assert.match(result.stderr, /set (NODE_RED_ADMIN_PASSWORD_HASH|GRAFANA_ADMIN_PASSWORD) in docker\/\.env/);
    });

    it("keeps the bcrypt hash intact through .env (single quotes stop '$' interpolation)", function () {
      const dockerCompose = requireCommand(this, "docker-compose", "docker-compose");
      const hash = hashSync("another password", 8);
      const envFile = join(scratch, "hash.env");
      writeFileSync(envFile, readFileSync(completeEnvFile(scratch), "utf8").replace(/^NODE_RED_ADMIN_PASSWORD_HASH=.*$/m, `NODE_RED_ADMIN_PASSWORD_HASH='${hash}'`));
      const result = runCommand(dockerCompose, ["--env-file", envFile, "-f", composePath, "config"], { cwd: dockerDir });
      assert.equal(result.status, 0, result.stderr);
      const resolved = loadYaml<ComposeFile>(writeTemp(scratch, "resolved.yml", result.stdout));
      // docker-compose prints a literal '$' as '$$' in its normalised output.
      assert.equal(String(resolved.services["node-red"].environment!.NODE_RED_ADMIN_PASSWORD_HASH).replaceAll("$$", "$"), hash);
    });
  });

  describe("pinned images", () => {
    it("every service image has a version tag (no latest); the built image has a versioned name", () => {
      for (const [name, definition] of Object.entries(compose.services)) {
        assert.ok(definition.image, `service ${name} names its image (a built one too, so it is tagged with a version)`);
        assertPinned(definition.image!, `service ${name}`);
      }
      assert.equal(service("kafka").image!.split(":")[0], "apache/kafka");
      assert.match(service("kafka").image!, /:4\./, "Kafka 4.x");
      assert.match(service("grafana").image!, /^grafana\/grafana:12\./, "Grafana OSS 12.x");
      assert.match(service("prometheus").image!, /^prom\/prometheus:v[23]\./);
    });

    it("every FROM of the Dockerfile is pinned; the runtime is the official Node-RED 4.1 image on Node 20", () => {
      const stages = new Set<string>();
      const froms = [...readFileSync(dockerfilePath, "utf8").matchAll(/^FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?\s*$/gim)];
      assert.ok(froms.length >= 2, "a build stage and a runtime stage");
      for (const [line, image, stage] of froms) {
        assert.ok(!image.includes("$"), `${line.trim()}: a base image from a build argument is not pinned by this file`);
        if (!stages.has(image)) assertPinned(image, line.trim());
        if (stage) stages.add(stage);
      }
      assert.match(froms[0][1], /^node:20\./, "the package is built and packed with Node 20");
      assert.match(froms.at(-1)![1], /^nodered\/node-red:4\.1\.\d+-20$/, "the runtime is Node-RED 4.1 on Node 20");
    });
  });

  describe("the Node-RED image (docker/Dockerfile)", () => {
    const dockerfile = readFileSync(dockerfilePath, "utf8");

    it("builds and packs the package in its first stage and installs that tarball with install scripts", () => {
      assert.match(dockerfile, /npm run build/);
      assert.match(dockerfile, /npm pack --pack-destination pack/);
      const install = dockerfile.match(/npm install[^\n]*\\\n[^\n]*node-red-contrib-iot-anomaly\.tgz/);
      assert.ok(install, "the runtime stage installs the packed tarball");
      assert.doesNotMatch(install![0], /--ignore-scripts/, "better-sqlite3's install script must run in the runtime image");
      assert.match(dockerfile, /require\.resolve\('better-sqlite3'/, "the build fails if the native addon cannot load");
    });

    it("runs as the image's non-root user, with a healthcheck and the container settings", () => {
      const users = [...dockerfile.matchAll(/^USER\s+(\S+)/gm)].map((match) => match[1]);
      assert.equal(users.at(-1), "node-red", "the last USER is Node-RED's (uid 1000), not root");
      assert.match(dockerfile, /^HEALTHCHECK .*\n?.*healthcheck\.js/m);
      assert.match(dockerfile, /COPY [^\n]*docker\/node-red\/settings\.js[^\n]* \/usr\/src\/node-red\/iot-anomaly\//);
      assert.match(dockerfile, /^CMD \["--settings", "\/usr\/src\/node-red\/iot-anomaly\/settings\.js"\]/m);
    });

    it("runs Node-RED with the young generation that npm start and the benchmarks use", () => {
      assert.equal(imageNodeOptions(), YOUNG_GENERATION_FLAG, "ENV NODE_OPTIONS of the runtime stage");
      assert.equal(service("node-red").environment?.NODE_OPTIONS, undefined, "compose does not replace the image's NODE_OPTIONS");
    });

    it("ships only sources in its build context (.dockerignore)", () => {
      const ignored = readFileSync(join(repositoryRoot, ".dockerignore"), "utf8").split("\n").map((line) => line.trim());
      for (const entry of ["node_modules", "dist", ".git", "docker/.env"]) assert.ok(ignored.includes(entry), `.dockerignore lists ${entry}`);
    });

    it("starts the medallion flows, with the SQLite sink writing into the volume Grafana reads", () => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { containerFlows, CONTAINER_DATABASE } = require(join(dockerDir, "node-red", "container-flows.js")) as {
        containerFlows(flows: Array<Record<string, unknown>>): Array<Record<string, unknown>>;
        CONTAINER_DATABASE: string;
      };
      const medallion = JSON.parse(readFileSync(join(repositoryRoot, "examples", "medallion.json"), "utf8")) as Array<Record<string, unknown>>;
      const flows = containerFlows(medallion);
      assert.equal(flows.length, medallion.length);
      flows.forEach((node, index) => {
        const original = medallion[index];
        if (node.type === "iot-sqlite-sink") assert.deepEqual(node, { ...original, path: CONTAINER_DATABASE });
        else assert.deepEqual(node, original, `node ${String(node.id)} is the medallion example's`);
      });
      assert.ok(flows.some((node) => node.type === "iot-kafka-broker" && node.brokers === "${KAFKA_BROKERS}"), "the broker address comes from KAFKA_BROKERS");

      const sqlite = provisionedDataSources().find((source) => source.type === SQLITE_DATASOURCE)!;
      assert.equal(sqlite.jsonData!.path, CONTAINER_DATABASE, "Grafana's SQLite data source reads the file the sink writes");

      // The script the Dockerfile runs writes the same flows.
      const output = join(scratch, "flows.json");
      const result = runCommand(process.execPath, [join(dockerDir, "node-red", "container-flows.js"), join(repositoryRoot, "examples", "medallion.json"), output]);
      assert.equal(result.status, 0, result.stderr);
      assert.deepEqual(JSON.parse(readFileSync(output, "utf8")), flows);
    });
  });

  describe("services wired together", () => {
    it("Node-RED waits for a healthy single-node KRaft Kafka and reaches it at the address the broker advertises", () => {
      const kafka = service("kafka");
      assert.ok(kafka.healthcheck?.test.join(" ").includes("kafka-broker-api-versions.sh"), "Kafka has a healthcheck");
      const environment = kafka.environment!;
      assert.equal(environment.KAFKA_PROCESS_ROLES, "broker,controller");
      for (const key of ["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"]) {
        assert.equal(Number(environment[key]), 1, `${key} is 1 on a single broker`);
      }
      const nodeRed = service("node-red");
      assert.deepEqual(nodeRed.depends_on, { kafka: { condition: "service_healthy" } });
      const brokers = String(nodeRed.environment!.KAFKA_BROKERS);
      assert.ok(String(environment.KAFKA_ADVERTISED_LISTENERS).split(",").includes(`PLAINTEXT://${brokers}`), `KAFKA_BROKERS=${brokers} is an advertised listener`);
      assert.equal(nodeRed.build?.dockerfile, "docker/Dockerfile");
    });

    it("volumes: Node-RED data, Grafana data, and the SQLite directory in both Node-RED and Grafana", () => {
      assert.equal(mountAt("node-red", "/data")?.source, "node-red-data");
      assert.equal(mountAt("grafana", "/var/lib/grafana")?.source, "grafana-data");
      const database = provisionedDataSources().find((source) => source.type === SQLITE_DATASOURCE)!.jsonData!.path as string;
      const directory = database.slice(0, database.lastIndexOf("/"));
      const inNodeRed = mountAt("node-red", directory);
      const inGrafana = mountAt("grafana", directory);
      assert.ok(inNodeRed && inGrafana, `${directory} is mounted in node-red and grafana`);
      assert.equal(inNodeRed!.source, inGrafana!.source, "the same volume");
      for (const volume of ["node-red-data", "grafana-data", inNodeRed!.source]) assert.ok(volume in compose.volumes, `${volume} is a named volume`);
    });

    it("the WAL catch: Grafana runs as Node-RED's uid on a writable mount and opens the database read-only", () => {
      // A reader of a WAL database maintains the -shm file beside it, so a read-only mount (or another uid without
      // write access to the directory) breaks Grafana's queries; the read-only part is the SQLite connection.
      const grafana = service("grafana");
      assert.equal(grafana.user?.split(":")[0], "1000", "Grafana runs as uid 1000, the node-red user that creates the files");
      const database = provisionedDataSources().find((source) => source.type === SQLITE_DATASOURCE)!;
      const directory = String(database.jsonData!.path).replace(/\/[^/]+$/, "");
      assert.equal(mountAt("grafana", directory)!.readOnly, false);
      assert.equal(database.jsonData!.pathOptions, "mode=ro");
    });

    it("Grafana installs the SQLite plugin before serving and provisions everything from docker/grafana", () => {
      const grafana = service("grafana");
      const environment = grafana.environment!;
      assert.match(String(environment.GF_PLUGINS_PREINSTALL_SYNC), /(^|,)frser-sqlite-datasource@\d+\.\d+\.\d+(,|$)/, "the plugin, pinned");
      assert.deepEqual(mountAt("grafana", "/etc/grafana/provisioning"), { source: "./grafana/provisioning", readOnly: true });
      const dashboardsMount = (grafana.volumes ?? []).find((volume) => volume.startsWith("./grafana/dashboards:"))!;
      const dashboardsPath = dashboardsMount.split(":")[1];
      const provider = loadYaml<{ providers: Array<{ options: { path: string } }> }>(join(dockerDir, "grafana", "provisioning", "dashboards", "iot-anomaly.yml"));
      assert.equal(provider.providers[0].options.path, dashboardsPath, "the dashboard provider reads the mounted folder");
      const home = String(environment.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH);
      assert.ok(home.startsWith(`${dashboardsPath}/`), "the home dashboard is one of ours");
      readFileSync(join(dashboardsDir, home.slice(dashboardsPath.length + 1))); // exists
      assert.match(String(environment.GF_SECURITY_ADMIN_PASSWORD), /^\$\{GRAFANA_ADMIN_PASSWORD:\?/, "no default Grafana password");
    });

    it("Prometheus scrapes Node-RED's /metrics at the service's container port; promtool accepts the config", function () {
      const config = loadYaml<{ scrape_configs: Array<{ job_name: string; metrics_path?: string; static_configs: Array<{ targets: string[] }> }> }>(join(dockerDir, "prometheus", "prometheus.yml"));
      const job = config.scrape_configs.find((scrape) => scrape.job_name === "node-red")!;
      assert.equal(job.metrics_path ?? "/metrics", "/metrics");
      assert.deepEqual(job.static_configs[0].targets, ["node-red:1880"]);
      assert.ok(service("node-red").ports!.some((port) => port.endsWith(":1880")), "Node-RED listens on 1880 in its container");
      assert.ok(service("prometheus").volumes!.includes("./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro"));
      const promtool = requireCommand(this, "promtool", "prometheus");
      const result = runCommand(promtool, ["check", "config", join(dockerDir, "prometheus", "prometheus.yml")]);
      assert.equal(result.status, 0, `promtool check config:\n${result.stdout}${result.stderr}`);
    });

    it("publishes ports on 127.0.0.1 by default, and .env.example documents every variable the file reads", () => {
      for (const [name, definition] of Object.entries(compose.services)) {
        for (const port of definition.ports ?? []) assert.match(port, /^\$\{BIND_ADDRESS:-127\.0\.0\.1\}:/, `service ${name} port ${port}`);
      }
      const documented = new Set([...readFileSync(envExamplePath, "utf8").matchAll(/^([A-Z_][A-Z0-9_]*)=/gm)].map((match) => match[1]));
      const read = new Set([...readFileSync(composePath, "utf8").matchAll(/\$\{([A-Z_][A-Z0-9_]*)/g)].map((match) => match[1]));
      for (const name of read) assert.ok(documented.has(name), `docker/.env.example documents ${name}`);
      assert.ok(documented.has("COMPOSE_PROJECT_NAME"));
      for (const name of ["NODE_RED_ADMIN_PASSWORD_HASH", "GRAFANA_ADMIN_PASSWORD"]) {
        assert.match(readFileSync(envExamplePath, "utf8"), new RegExp(`^${name}=$`, "m"), `${name} ships empty: no default password`);
      }
    });
  });
});

function writeTemp(directory: string, name: string, text: string): string {
  const path = join(directory, name);
  writeFileSync(path, text);
  return path;
}
