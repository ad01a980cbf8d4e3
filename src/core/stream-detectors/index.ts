// Detectors that score one univariate series row by row, built on the package's core detectors; shared by the
// CLI (`iot-anomaly evaluate|detect`) and anything that replays a series.
export * from "./types";
export * from "./value-range";
export * from "./rolling-sigma-stream";
export * from "./isolation-forest-stream";
export * from "./with-cooldown";
export * from "./spec";
export * from "./registry";
export * from "./score-series";
export * from "./sensor-novelty";
export * from "./metric-ranges";
