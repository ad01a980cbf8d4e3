// Container healthcheck: healthy once Node-RED answers on its port and this package's /metrics endpoint is served,
// i.e. the runtime started and loaded the package. (The base image's /healthcheck.js reads /data/settings.js, which
// this image does not use.)
const port = Number(process.env.PORT || 1880);
const metricsOff = (process.env.IOT_ANOMALY_METRICS || "").toLowerCase() === "false";
const path = metricsOff ? "/" : process.env.IOT_ANOMALY_METRICS_PATH || "/metrics";

fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(4000) })
  .then((response) => process.exit(response.ok ? 0 : 1))
  .catch(() => process.exit(1));
