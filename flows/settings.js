// Node-RED settings for `npm start`, the integration tests and the bench: loads this package from the
// repository (nodesDir) and binds to loopback. Everything that differs between runs comes from the environment.
const path = require("node:path");

const repositoryRoot = path.resolve(__dirname, "..");

module.exports = {
  uiHost: process.env.NODE_RED_HOST || "127.0.0.1",
  uiPort: Number(process.env.PORT || 1880),
  flowFile: process.env.NODE_RED_FLOW_FILE || "flows.json",
  // The package is loaded straight from the working copy (its package.json lists the built nodes in dist/),
  // unless a test installed it from the packed tarball into the user directory, as the palette manager would.
  nodesDir: process.env.IOT_ANOMALY_FROM_WORKING_COPY === "false" ? [] : [repositoryRoot],
  // No secrets in this flow; a real deployment sets NODE_RED_CREDENTIAL_SECRET so credentials are encrypted.
  credentialSecret: process.env.NODE_RED_CREDENTIAL_SECRET || undefined,
  flowFilePretty: true,
  logging: {
    console: { level: process.env.NODE_RED_LOG_LEVEL || "info", metrics: false, audit: false },
  },
  diagnostics: { enabled: false, ui: false },
  telemetry: { enabled: false },
  runtimeState: { enabled: false, ui: false },
  externalModules: { autoInstall: false, palette: { allowInstall: true } },
  editorTheme: {
    projects: { enabled: false },
    tours: false,
    palette: { catalogues: [] },
  },
  functionExternalModules: false,
  debugMaxLength: 1000,
  exportGlobalContextKeys: false,
};
