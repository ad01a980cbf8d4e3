// The processing-time histogram, per node type, kept in plain arrays: a message's completion is a bucket search and
// two additions. prom-client's Histogram validates and hashes its label values on every observe(), even through a
// labels() child, which cost about a fifth of the throughput of a flow sending one event per message. This object
// has the shape prom-client's Registry reads (name, help, type, get, reset), so it is served like any other metric.

export interface ProcessingSeries {
  observe(seconds: number): void;
}

interface HistogramValue {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

interface Series extends ProcessingSeries {
  /** Observations per bucket (not cumulative); the last slot counts values above every bound. */
  counts: Float64Array;
  sum: number;
  count: number;
}

export class ProcessingHistogram {
  readonly type = "histogram";
  readonly aggregator = "sum";
  private readonly series = new Map<string, Series>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelName: string,
    private readonly bounds: readonly number[],
  ) {}

  /** The series of one label value (e.g. one node type), created on first use. */
  forLabel(value: string): ProcessingSeries {
    let series = this.series.get(value);
    if (series === undefined) {
      const bounds = this.bounds;
      const created: Series = {
        counts: new Float64Array(bounds.length + 1),
        sum: 0,
        count: 0,
        observe(seconds: number) {
          let bucket = 0;
          while (bucket < bounds.length && seconds > bounds[bucket]) bucket++;
          created.counts[bucket]++;
          created.sum += seconds;
          created.count++;
        },
      };
      series = created;
      this.series.set(value, series);
    }
    return series;
  }

  /** What prom-client's Registry formats: one value per bucket, plus _sum and _count, per label value. */
  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: HistogramValue[] }> {
    const values: HistogramValue[] = [];
    for (const [label, series] of this.series) {
      let cumulative = 0;
      this.bounds.forEach((bound, index) => {
        cumulative += series.counts[index];
        values.push({ metricName: `${this.name}_bucket`, labels: { le: bound, [this.labelName]: label }, value: cumulative });
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { le: "+Inf", [this.labelName]: label }, value: series.count });
      values.push({ metricName: `${this.name}_sum`, labels: { [this.labelName]: label }, value: series.sum });
      values.push({ metricName: `${this.name}_count`, labels: { [this.labelName]: label }, value: series.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.series.clear();
  }
}
