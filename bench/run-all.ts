// `npm run bench`: every benchmark in turn, each printing medians of several runs. Pass names to run a subset:
// `npm run bench -- rolling-sigma embedded-flow`.
const benches = ["rolling-sigma", "contextual-novelty", "isolation-forest", "simulator", "sqlite-writer", "kafka", "embedded-flow", "kafka-pipeline"];

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const selected = wanted.length ? benches.filter((name) => wanted.includes(name)) : benches;
  console.log(`node ${process.version}, ${require("node:os").cpus().length} cores; medians of several runs (all runs in brackets)\n`);
  for (const name of selected) {
    console.log(`## ${name}`);
    const bench = require(`./${name}.bench`) as { main(): Promise<void> };
    await bench.main();
    console.log("");
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
