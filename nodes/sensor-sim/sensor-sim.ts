// Node-RED glue for the sensor simulator: config -> StationSimulator (or CsvReplay), a timer that emits the events
// due on the simulated clock, start/stop/reset commands, status and log. The events come from src/core.
import { basename, isAbsolute, resolve } from "node:path";
import type { Node, NodeAPI, NodeDef, NodeMessage } from "node-red";
import { CsvReplay, isCsvReplayError } from "../../src/core/csv-replay";
import { EVENT_LIMITS, describeValue, type SensorEvent } from "../../src/core/event";
import { StationSimulator, type PresetName, type SimulatorOptions } from "../../src/core/simulator";
import { reportInvalidInput } from "../../src/runtime/event-message";
import { NodeMetrics, serveMetrics } from "../../src/runtime/metrics";
import { compactCount, failed, idle, running, shorten } from "../../src/runtime/status";

type NumberSetting = number | string | undefined;

interface SensorSimNodeDef extends NodeDef {
  mode?: "preset" | "csv";
  preset?: string;
  /** Comma list of the preset's metrics; blank = the preset's defaults. */
  metrics?: string;
  stations?: NumberSetting;
  /** Events per second per station. */
  ratePerStation?: NumberSetting;
  /** 1 = one event per message; N > 1 = arrays of up to N events. */
  batchSize?: NumberSetting;
  seed?: NumberSetting;
  spikeRate?: NumberSetting;
  levelShiftRate?: NumberSetting;
  driftRate?: NumberSetting;
  stuckRate?: NumberSetting;
  noiseBurstRate?: NumberSetting;
  spikeSigma?: NumberSetting;
  /** Stop after this many events; 0 = unlimited. */
  limit?: NumberSetting;
  autoStart?: boolean | string;
  /** CSV file; relative to the Node-RED user directory. */
  file?: string;
  timestampColumn?: string;
  sensorIdColumn?: string;
  sensorId?: string;
  /** Speed-up over the file's clock; 0 = as fast as possible. */
  speed?: NumberSetting;
}

// Events are due continuously but go out once per tick, so a tick adds up to its length to every event's latency:
// 10 ms keeps that small next to the pipeline's own (50 ms made it half of the end-to-end latency measured).
const TICK_MS = 10;
const AUTO_START_DELAY_MS = 100;
const STATUS_INTERVAL_MS = 500;
/** Most events one tick hands out, so a stalled event loop catches up over several ticks instead of one long one. */
const MAX_EVENTS_PER_TICK = 20_000;
/** "As fast as possible" CSV replay: 1000 events per 10 ms tick (100k events/s) keeps Node-RED's queues bounded. */
const FAST_REPLAY_EVENTS_PER_TICK = 1_000;
const COMMANDS = ["start", "stop", "reset"] as const;
type Command = (typeof COMMANDS)[number];

/** Blank -> default; a number-like text -> number; anything else is passed on so the error quotes it. */
function numberSetting(value: NumberSetting, fallback: number): number {
  if (value === undefined || value === null || String(value).trim() === "") return fallback;
  const number = Number(value);
  return (Number.isFinite(number) ? number : value) as number;
}

function integerSetting(name: string, value: NumberSetting, fallback: number, min: number, max: number): number {
  const number = numberSetting(value, fallback);
  if (typeof number !== "number" || !Number.isInteger(number) || number < min || number > max) {
    throw new RangeError(`"${name}" must be an integer from ${min} to ${max} (got ${describeValue(value)})`);
  }
  return number;
}

/** "start", "stop" or "reset" from msg.payload or msg.topic; an Error naming what was sent otherwise. */
function readCommand(msg: NodeMessage): Command | Error {
  for (const candidate of [msg.payload, msg.topic]) {
    if (typeof candidate !== "string") continue;
    const command = candidate.trim().toLowerCase();
    if ((COMMANDS as readonly string[]).includes(command)) return command as Command;
  }
  const topic = typeof msg.topic === "string" && msg.topic !== "" ? ` (topic ${describeValue(msg.topic)})` : "";
  return new Error(`unknown command ${describeValue(msg.payload)}${topic}: send "start", "stop" or "reset" in msg.payload or msg.topic`);
}

/** Where events come from: the seeded simulator or a CSV file, both asked "what is due after this many ms". */
interface EventSource {
  take(elapsedMs: number, max: number, out: SensorEvent[]): void;
  finished(): boolean;
  restart(): void;
  close(): void;
  describe(): Record<string, string | number>;
  nominalRate(): number;
}

function simulatorSource(options: SimulatorOptions): EventSource {
  // Validated once now; the clock starts at the first start (and again at each reset).
  let simulator = new StationSimulator({ ...options, startTime: 0 });
  let started = false;
  return {
    take(elapsedMs, max, out) {
      if (!started) {
        simulator = new StationSimulator({ ...options, startTime: Date.now() - elapsedMs });
        started = true;
      }
      const due = simulator.countUntil(simulator.startTime + elapsedMs) - simulator.generated;
      if (due > 0) simulator.generate(Math.min(due, max), out);
    },
    finished: () => false,
    restart: () => {
      started = false;
    },
    close: () => undefined,
    describe: () => ({ seed: simulator.seed, stations: simulator.stations, rate: simulator.ratePerStation, preset: simulator.preset }),
    nominalRate: () => simulator.stations * simulator.ratePerStation,
  };
}

function csvSource(replay: CsvReplay): EventSource {
  const perTick = replay.speed === 0 ? FAST_REPLAY_EVENTS_PER_TICK : Infinity;
  return {
    take: (elapsedMs, max, out) => void replay.takeDue(replay.speed === 0 ? 0 : elapsedMs, Math.min(max, perTick), out),
    finished: () => replay.isFinished(),
    restart: () => replay.reset(),
    close: () => replay.close(),
    describe: () => ({ file: replay.path, speed: replay.speed }),
    nominalRate: () => 0,
  };
}

export = function register(RED: NodeAPI) {
  function SensorSimNode(this: Node, config: SensorSimNodeDef) {
    RED.nodes.createNode(this, config);
    const node = this;
    const metrics = new NodeMetrics(node, "iot-sensor-sim");
    const mode = config.mode || "preset";
    let source: EventSource | null = null;
    let configError: Error | null = null;
    let batchSize = 1;
    let limit = 0;
    let csvFile = "";

    // Validate config once; the core errors name the option.
    try {
      batchSize = integerSetting("batchSize", config.batchSize, 1, 1, EVENT_LIMITS.maxBatchSize);
      limit = integerSetting("limit", config.limit, 0, 0, Number.MAX_SAFE_INTEGER);
      if (mode === "preset") {
        source = simulatorSource({
          preset: (config.preset || "vibration") as PresetName,
          metrics: config.metrics ?? "",
          stations: numberSetting(config.stations, 5),
          ratePerStation: numberSetting(config.ratePerStation, 10),
          seed: numberSetting(config.seed, 42),
          faults: {
            spike: numberSetting(config.spikeRate, 0.005),
            levelShift: numberSetting(config.levelShiftRate, 0.0005),
            drift: numberSetting(config.driftRate, 0.0005),
            stuck: numberSetting(config.stuckRate, 0.0005),
            noiseBurst: numberSetting(config.noiseBurstRate, 0.0005),
          },
          spikeSigma: numberSetting(config.spikeSigma, 8),
        });
      } else if (mode === "csv") {
        const file = (config.file ?? "").trim();
        if (file === "") throw new Error(`"file" is empty: name the CSV file to replay`);
        const userDir = (RED.settings as unknown as { userDir?: string }).userDir;
        csvFile = isAbsolute(file) ? file : resolve(userDir ?? process.cwd(), file);
        source = csvSource(
          new CsvReplay(csvFile, {
            timestampColumn: config.timestampColumn,
            sensorIdColumn: config.sensorIdColumn,
            sensorId: config.sensorId,
            speed: numberSetting(config.speed, 1),
          }),
        );
      } else {
        throw new Error(`"mode" must be preset or csv (got ${describeValue(mode)})`);
      }
    } catch (error) {
      configError = csvError(error);
      node.error(configError.message, errorMessage(error));
      node.status(failed(shorten(configError.message)));
    }

    let timer: NodeJS.Timeout | undefined;
    let autoStartTimer: NodeJS.Timeout | undefined;
    let runningSince = 0;
    let elapsedBeforeStop = 0;
    let sent = 0;
    let finished = false;
    let lastStatusAt = 0;
    let sentAtLastStatus = 0;
    const due: SensorEvent[] = [];

    /** The file name in front of a CSV error, so the message says which file and line. */
    function csvError(error: unknown): Error {
      if (isCsvReplayError(error)) return new Error(`${basename(csvFile)} ${error.message}`);
      const code = (error as NodeJS.ErrnoException)?.code;
      if (typeof code === "string") return new Error(`cannot open the CSV file ${csvFile}: ${(error as Error).message}`);
      return error as Error;
    }
    function errorMessage(error: unknown): NodeMessage | undefined {
      if (!isCsvReplayError(error)) return undefined;
      return { payload: { file: csvFile, line: error.line, column: error.column } };
    }

    const elapsed = () => elapsedBeforeStop + (timer ? Date.now() - runningSince : 0);
    const counts = () => ({ count: compactCount(sent) });

    function showRunning(now: number, force: boolean): void {
      if (!force && now - lastStatusAt < STATUS_INTERVAL_MS) return;
      const rate = lastStatusAt === 0 || now === lastStatusAt ? source!.nominalRate() : ((sent - sentAtLastStatus) * 1000) / (now - lastStatusAt);
      lastStatusAt = now;
      sentAtLastStatus = sent;
      node.status(running(RED._("iot-sensor-sim.status.running", { rate: compactCount(Math.round(rate)), ...counts() })));
    }

    function emit(events: SensorEvent[]): void {
      if (batchSize === 1) {
        for (let i = 0; i < events.length; i++) node.send({ payload: events[i] });
      } else {
        for (let start = 0; start < events.length; start += batchSize) node.send({ payload: events.slice(start, start + batchSize) });
      }
      sent += events.length;
      metrics.sent(events.length);
    }

    function tick(): void {
      if (!source || !timer) return;
      due.length = 0;
      const room = limit > 0 ? Math.min(MAX_EVENTS_PER_TICK, limit - sent) : MAX_EVENTS_PER_TICK;
      let failure: unknown;
      try {
        source.take(elapsed(), room, due);
      } catch (error) {
        failure = error;
      }
      // Rows before a bad CSV row still go out, then the replay stops on the error.
      if (due.length > 0) emit(due);
      due.length = 0;
      if (failure !== undefined) return fail(failure);
      let ended = limit > 0 && sent >= limit;
      try {
        ended ||= source.finished();
      } catch (error) {
        return fail(error);
      }
      if (ended) return finish();
      showRunning(Date.now(), false);
    }

    function start(): void {
      if (!source || timer) return;
      // After done (limit or end of file) or an error, start means from the beginning.
      if (finished && !restart()) return;
      runningSince = Date.now();
      timer = setInterval(tick, TICK_MS);
      node.log(RED._(`iot-sensor-sim.log.${mode === "csv" ? "replaying" : "started"}`, source.describe()));
      lastStatusAt = 0;
      showRunning(Date.now(), true);
      tick();
    }

    function halt(): void {
      if (!timer) return;
      elapsedBeforeStop = elapsed();
      clearInterval(timer);
      timer = undefined;
    }

    function stop(): void {
      if (!timer) return;
      halt();
      node.log(RED._("iot-sensor-sim.log.stopped", counts()));
      node.status(idle(RED._("iot-sensor-sim.status.stopped", counts())));
    }

    function finish(): void {
      halt();
      finished = true;
      node.log(RED._("iot-sensor-sim.log.done", counts()));
      node.status(idle(RED._("iot-sensor-sim.status.done", counts())));
    }

    function fail(error: unknown): void {
      halt();
      finished = true;
      const reported = csvError(error);
      node.error(reported.message, errorMessage(error) ?? { payload: { message: reported.message } });
      node.status(failed(shorten(reported.message)));
    }

    /** Back to the first event (the seed or the first row), counts to 0, keeping the running state. */
    function restart(): boolean {
      if (!source) return false;
      const wasRunning = timer !== undefined;
      halt();
      sent = 0;
      elapsedBeforeStop = 0;
      finished = false;
      try {
        source.restart();
      } catch (error) {
        fail(error);
        return false;
      }
      if (wasRunning) start();
      else node.status(idle(RED._("iot-sensor-sim.status.stopped", counts())));
      return true;
    }

    node.on("input", (msg, _send, done) => {
      if (configError) return done(configError);
      const command = readCommand(msg);
      if (command instanceof Error) return reportInvalidInput(node, command, done);
      if (command === "reset") {
        restart();
        return done();
      }
      // An explicit start or stop replaces a pending automatic start.
      if (autoStartTimer) clearTimeout(autoStartTimer);
      autoStartTimer = undefined;
      if (command === "start") start();
      else stop();
      done();
    });

    node.on("close", (removed: boolean, done: () => void) => {
      if (removed) metrics.remove();
      if (autoStartTimer) clearTimeout(autoStartTimer);
      autoStartTimer = undefined;
      halt();
      source?.close();
      done();
    });

    if (source) {
      node.status(idle(RED._("iot-sensor-sim.status.stopped", counts())));
      // Like the inject node's "inject once": wait until the whole flow is built, so the first events reach
      // nodes wired downstream.
      const autoStart = config.autoStart !== false && config.autoStart !== "false";
      if (autoStart) {
        autoStartTimer = setTimeout(() => {
          autoStartTimer = undefined;
          start();
        }, AUTO_START_DELAY_MS);
      }
    }
  }

  RED.nodes.registerType("iot-sensor-sim", SensorSimNode);
  serveMetrics(RED);
};
