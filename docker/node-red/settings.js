// Node-RED settings of the container image (docker/Dockerfile): the editor and admin API behind a login whose
// password hash comes from the environment, so the image ships no password. Everything else comes from the
// environment too; the compose file (docker/compose.yml) and docker/.env.example list the variables.

const BCRYPT_HASH = /^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/;

function adminUsers() {
  const username = process.env.NODE_RED_ADMIN_USER || "admin";
  const hash = (process.env.NODE_RED_ADMIN_PASSWORD_HASH || "").trim();
  // Refuse to start rather than serve an open editor: a Node-RED editor runs arbitrary code on the host.
  if (hash === "") {
    throw new Error(
      "NODE_RED_ADMIN_PASSWORD_HASH is not set: the editor needs a password. Make a bcrypt hash with " +
        "`npx node-red admin hash-pw` (or `docker run --rm -it --entrypoint node-red nodered/node-red:4.1.13-20 admin hash-pw`) " +
        "and put it in docker/.env",
    );
  }
  if (!BCRYPT_HASH.test(hash)) {
    throw new Error(
      `NODE_RED_ADMIN_PASSWORD_HASH is not a bcrypt hash (expected $2b$<cost>$ followed by 53 characters, got ${hash.length} characters ` +
        `starting "${hash.slice(0, 4)}"). In docker/.env put the hash in single quotes so that '$' is kept as is.`,
    );
  }
  return [{ username, password: hash, permissions: "*" }];
}

module.exports = {
  uiHost: process.env.NODE_RED_HOST || "0.0.0.0",
  uiPort: Number(process.env.PORT || 1880),
  // The image's entrypoint passes $FLOWS as the flow file; this is the same default for a plain `node-red` start.
  flowFile: process.env.FLOWS || "flows.json",
  flowFilePretty: true,
  // Unset: Node-RED generates a key and keeps it in the data volume (.config.runtime.json). The shipped flows hold
  // no credentials; set it when you add nodes that do, so that flows_cred.json is not tied to one volume.
  credentialSecret: process.env.NODE_RED_CREDENTIAL_SECRET || undefined,

  adminAuth: {
    type: "credentials",
    users: adminUsers(),
    // A login lasts one day instead of Node-RED's seven.
    sessionExpiryTime: Number(process.env.NODE_RED_SESSION_SECONDS || 86400),
  },
  // HTTP-in endpoints of the flows and this package's GET /metrics stay open, so Prometheus can scrape inside the
  // compose network; the compose file publishes port 1880 on 127.0.0.1 only.

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
  },
  functionExternalModules: false,
  debugMaxLength: 1000,
  exportGlobalContextKeys: false,
};
