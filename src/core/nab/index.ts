// Scoring anomaly detectors the way the Numenta Anomaly Benchmark does: its corpus layout, results files and scorer.
export * from "./profiles";
export * from "./nab-csv";
export * from "./corpus";
export * from "./row-weights";
export * from "./scorer";
export * from "./results-folder";
export * from "./run-detector";
