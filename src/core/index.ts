// Public entry `node-red-contrib-iot-anomaly/core`: the detectors and helpers without Node-RED,
// for Function nodes, scripts and notebooks.
export * from "./event";
export * from "./rolling-stats";
export * from "./rolling-sigma";
export * from "./rolling-time-window";
export * from "./alert-cooldown";
// The SQLite writer loads better-sqlite3's native module on first use only through this entry.
export * from "./sqlite-writer";
export * from "./sqlite-schema";
export * from "./random";
export * from "./simulator";
export * from "./csv-replay";
export * from "./isolation-forest";
export * from "./ks-test";
export * from "./drift-detector";
export * from "./model-registry";
export * from "./model-lifecycle";
export * from "./stream-detectors/sensor-novelty";
