// Public entry `node-red-contrib-iot-anomaly/core`: the detectors and helpers without Node-RED,
// for Function nodes, scripts and notebooks.
export * from "./event";
export * from "./rolling-stats";
export * from "./rolling-sigma";
