// Kafka throughput through our wrapper (src/core/kafka) against the real local broker: produce in 1000-event
// batches, consume with per-message acks and coalesced commits; plus the wrapper's own CPU cost per event.
// Uses KAFKA_BROKERS if set, otherwise starts scripts/kafka-local.sh on the test port and stops it at exit.
import { validateEvent, type SensorEvent } from "../src/core/event";
import { KafkaEventConsumer } from "../src/core/kafka/consumer";
import { OffsetTracker } from "../src/core/kafka/offset-tracker";
import { KafkaEventProducer } from "../src/core/kafka/producer";
import "../src/core/kafka/kafkajs-speedups";
import { eventToMessage, messageToEvents, packMessages } from "../src/core/kafka/serialisation";
import { createTopic, kafkaBrokers, uniqueName } from "../test/support/kafka-broker";
import { kafkajsOriginal } from "../test/support/kafkajs-original";
import { median, printFigure, ratePerSecond, repeat } from "./measure";

const BATCH = 1000;
const EVENTS_PER_RUN = 20_000;
const RUNS = 5;

function makeEvents(count: number): SensorEvent[] {
  const events: SensorEvent[] = [];
  for (let index = 0; index < count; index++) {
    events.push(
      validateEvent({
        sensorId: `station-${index % 50}`,
        timestamp: 1_700_000_000_000 + index * 100,
        readings: { vibration: 2 + (index % 13) * 0.05, temperature: 40 + (index % 7) * 0.3 },
      }),
    );
  }
  return events;
}

/** Events as Silver writes them to iot.scored: readings plus both detectors' results (about 700 bytes of JSON). */
function makeScoredEvents(count: number): SensorEvent[] {
  return makeEvents(count).map((event, index) => {
    const metric = (value: number) => ({ mean: value * 0.98, std: 1.6226953707156941 + index * 1e-7, z: 0.8581240255264315 - index * 1e-7, flag: false });
    return {
      ...event,
      label: { anomaly: false },
      detectors: {
        rolling3Sigma: { anomaly: false, ready: true, metrics: { vibration: metric(event.readings.vibration), temperature: metric(event.readings.temperature) } },
        isolationForest: { score: 0.40748051859534296 + index * 1e-9, anomaly: false, threshold: 0.6332991284419984, modelVersion: 1 },
      },
    } as SensorEvent;
  });
}

type ProduceRequest = (args: unknown) => { encode(): Promise<unknown> };
type CreateRequest = (args: { request: unknown; correlationId: number; clientId: string }) => Promise<unknown>;
interface RequestEncoder {
  produceRequest: ProduceRequest;
  createRequest: CreateRequest;
}
/** The produce request and its frame as a send writes them (produce-request.ts), without a broker. */
const packageEncoder: RequestEncoder = { produceRequest: require("kafkajs/src/protocol/requests/produce/v3/request"), createRequest: require("kafkajs/src/protocol/request") };
/** The same with kafkajs' own encoders: what produce-request.ts saves. */
const kafkajsEncoder: RequestEncoder = {
  produceRequest: kafkajsOriginal<ProduceRequest>("kafkajs/src/protocol/requests/produce/v3/request"),
  createRequest: kafkajsOriginal<CreateRequest>("kafkajs/src/protocol/request"),
};

/** Scored events as kafka-out packs them for one send: records per partition (3 partitions, keyed by sensor). */
function packForSend(events: SensorEvent[]): { partition: number; messages: unknown[] }[] {
  const records = packMessages(events.map((event) => eventToMessage(event)), (key) => Number(key.slice(key.lastIndexOf("-") + 1)) % 3);
  const partitions = [0, 1, 2].map((partition) => ({ partition, messages: [] as unknown[] }));
  for (const record of records) partitions[record.partition!].messages.push(record);
  return partitions;
}

/** The produce request of one send, framed as it goes on the wire. */
function encodeSend(partitions: { partition: number; messages: unknown[] }[], { produceRequest, createRequest }: RequestEncoder): Promise<unknown> {
  const request = produceRequest({ acks: -1, timeout: 30_000, compression: 0, topicData: [{ topic: "iot.scored", partitions }] });
  return createRequest({ request, correlationId: 1, clientId: "node-red-iot-anomaly" });
}

async function produceRate(producer: KafkaEventProducer, topic: string, events: SensorEvent[], compression: "none" | "gzip"): Promise<number> {
  const started = process.hrtime.bigint();
  for (let start = 0; start < events.length; start += BATCH) {
    await producer.send(topic, events.slice(start, start + BATCH), { compression });
  }
  return events.length / (Number(process.hrtime.bigint() - started) / 1e9);
}

/** A fresh group reads the whole topic: rate from the first message to the last, and from start() (group join included). */
async function consumeRate(brokers: string, topic: string, total: number): Promise<{ steady: number; withJoin: number }> {
  const consumer = new KafkaEventConsumer({ brokers, clientId: "kafka-bench" }, { groupId: uniqueName("bench"), topics: [topic], fromBeginning: true, maxInFlight: 5000 });
  let received = 0;
  const startedAt = process.hrtime.bigint();
  let firstAt = 0n;
  let lastAt = 0n;
  const done = new Promise<void>((resolve) => {
    void consumer.start((record, ack) => {
      if (received === 0) firstAt = process.hrtime.bigint();
      if (!record.ok) throw record.error;
      ack();
      if (++received === total) {
        lastAt = process.hrtime.bigint();
        resolve();
      }
    });
  });
  await done;
  await consumer.stop({ drainTimeoutMs: 0 });
  return { steady: (total - 1) / (Number(lastAt - firstAt) / 1e9), withJoin: total / (Number(lastAt - startedAt) / 1e9) };
}

export async function main(): Promise<void> {
  const brokers = await kafkaBrokers();
  const events = makeEvents(EVENTS_PER_RUN);
  console.log(`Kafka (${brokers}), ${EVENTS_PER_RUN} events of ~${JSON.stringify(events[0]).length} bytes per run, 3 partitions, median of ${RUNS}`);

  // Wrapper CPU cost without the network: encode one event, decode + validate one message, track + ack one offset.
  const encoded = events.map((event) => Buffer.from(eventToMessage(event).value));
  printFigure(await repeat("encode event -> Kafka message (JSON, key)", "events/s", RUNS, () => ratePerSecond(events.length, () => events.forEach((event) => eventToMessage(event)))));
  printFigure(
    await repeat("decode Kafka message -> validated event", "events/s", RUNS, () =>
      ratePerSecond(encoded.length, () => encoded.forEach((value, offset) => messageToEvents(value, { topic: "t", partition: 0, offset: String(offset) }))),
    ),
  );
  const scored = makeScoredEvents(EVENTS_PER_RUN);
  // kafka-out's CPU for packed records, network aside: what kafka-out and kafkajs do for every send of Silver's iot.scored.
  printFigure(
    await repeat("pack scored events into records + encode the produce request (1000 per send)", "events/s", RUNS, async () => {
      const started = process.hrtime.bigint();
      for (let start = 0; start < scored.length; start += BATCH) await encodeSend(packForSend(scored.slice(start, start + BATCH)), packageEncoder);
      return scored.length / (Number(process.hrtime.bigint() - started) / 1e9);
    }),
  );
  // The encoding step alone, without JSON and packing, which dwarf it and make its difference hard to see.
  const sends: ReturnType<typeof packForSend>[] = [];
  for (let start = 0; start < scored.length; start += BATCH) sends.push(packForSend(scored.slice(start, start + BATCH)));
  for (const [encoder, which] of [[packageEncoder, ""], [kafkajsEncoder, ", kafkajs' own encoder"]] as const) {
    printFigure(
      await repeat(`encode the produce request of packed scored events (1000 per send${which})`, "events/s", RUNS, async () => {
        const started = process.hrtime.bigint();
        for (const partitions of sends) await encodeSend(partitions, encoder);
        return scored.length / (Number(process.hrtime.bigint() - started) / 1e9);
      }),
    );
  }
  printFigure(
    await repeat("offset tracker: track + ack (1000 in flight)", "messages/s", RUNS, () =>
      ratePerSecond(EVENTS_PER_RUN * 10, () => {
        const tracker = new OffsetTracker();
        const window = new Array(1000);
        for (let offset = 0; offset < EVENTS_PER_RUN * 10; offset++) {
          window[offset % 1000] = tracker.track("t", 0, offset);
          if (offset % 1000 === 999) for (const tracked of window) tracker.ack(tracked);
        }
      }),
    ),
  );

  const producer = new KafkaEventProducer({ brokers, clientId: "kafka-bench" });
  await producer.connect();
  try {
    const topic = await createTopic("bench-produce", 3);
    printFigure(await repeat(`produce, ${BATCH}-event sends, acks=all`, "events/s", RUNS, () => produceRate(producer, topic, events, "none")));
    printFigure(await repeat(`produce, ${BATCH}-event sends, acks=all, gzip`, "events/s", RUNS, () => produceRate(producer, topic, events, "gzip")));

    const consumeTopic = await createTopic("bench-consume", 3);
    for (let start = 0; start < events.length; start += BATCH) await producer.send(consumeTopic, events.slice(start, start + BATCH));
    const withJoin: number[] = [];
    printFigure(
      await repeat("consume + ack each event, first to last message", "events/s", RUNS, async () => {
        const rates = await consumeRate(brokers, consumeTopic, EVENTS_PER_RUN);
        withJoin.push(rates.withJoin);
        return rates.steady;
      }),
    );
    const runs = withJoin.slice(1); // the first was repeat()'s warm-up
    printFigure({ name: `consume, start() to last message (group join incl.)`, median: median(runs), runs, unit: "events/s" });
  } finally {
    await producer.close();
  }
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
}
