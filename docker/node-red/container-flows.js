// The flows the container starts with: examples/medallion.json (Bronze, Silver and Gold on one runtime, broker from
// ${KAFKA_BROKERS}) with the SQLite sink writing into the directory shared with Grafana instead of the user directory.
// Run at image build time: node container-flows.js <medallion.json> <output flows.json>
const { readFileSync, writeFileSync } = require("node:fs");

/** Where the sink writes in the container; docker/compose.yml mounts the sqlite volume here, in Grafana too. */
const CONTAINER_DATABASE = "/var/lib/iot-anomaly/anomalies.db";

function containerFlows(medallionFlows) {
  return medallionFlows.map((node) => (node.type === "iot-sqlite-sink" ? { ...node, path: CONTAINER_DATABASE } : node));
}

if (require.main === module) {
  const [source, target] = process.argv.slice(2);
  if (!source || !target) {
    console.error("usage: node container-flows.js <medallion.json> <output flows.json>");
    process.exit(2);
  }
  const flows = containerFlows(JSON.parse(readFileSync(source, "utf8")));
  if (!flows.some((node) => node.type === "iot-sqlite-sink")) {
    console.error(`${source} has no iot-sqlite-sink: nothing would be stored for Grafana`);
    process.exit(1);
  }
  writeFileSync(target, `${JSON.stringify(flows, null, 2)}\n`);
}

module.exports = { CONTAINER_DATABASE, containerFlows };
