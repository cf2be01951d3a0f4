/**
 * Counters and gauges every subsystem reports into (packets dropped, transfers active, queue length), exposed
 * at /metrics in the Prometheus text format. One registry per daemon, passed down; nothing global.
 */
export interface Counter {
  inc(labels?: Readonly<Record<string, string>>, by?: number): void;
  /** One series, its labels resolved once: for hot paths (a DHCP server counts every packet). */
  series(labels?: Readonly<Record<string, string>>): Series;
}
export interface Series {
  inc(by?: number): void;
}
export interface Gauge {
  set(value: number, labels?: Readonly<Record<string, string>>): void;
  inc(labels?: Readonly<Record<string, string>>, by?: number): void;
  dec(labels?: Readonly<Record<string, string>>, by?: number): void;
}
export interface Metrics {
  counter(name: string, help: string): Counter;
  gauge(name: string, help: string): Gauge;
  /** The value of one series, for tests and for the CLI. */
  value(name: string, labels?: Readonly<Record<string, string>>): number;
  /** Prometheus text exposition format 0.0.4. */
  render(): string;
  /**
   * Runs `collect` before every render() and value(): for gauges cheaper to compute when read than to keep
   * current (a DHCP server's lease counts walk its lease table). Returns what removes it.
   */
  onCollect(collect: () => void): () => void;
}

interface Family {
  type: 'counter' | 'gauge';
  help: string;
  series: Map<string, number>;
}

function seriesKey(labels: Readonly<Record<string, string>> = {}): string {
  return Object.keys(labels)
    .sort()
    .map((key) => `${key}="${(labels[key] ?? '').replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
    .join(',');
}

export function createMetrics(): Metrics {
  const families = new Map<string, Family>();
  const collectors = new Set<() => void>();
  const collect = () => {
    for (const collector of collectors) collector();
  };

  function family(name: string, type: Family['type'], help: string): Family {
    const existing = families.get(name);
    if (existing) {
      if (existing.type !== type) throw new Error(`metric ${name} is already a ${existing.type}`);
      return existing;
    }
    const created: Family = { type, help, series: new Map() };
    families.set(name, created);
    return created;
  }

  function add(f: Family, labels: Readonly<Record<string, string>> | undefined, by: number): void {
    const key = seriesKey(labels);
    f.series.set(key, (f.series.get(key) ?? 0) + by);
  }

  return {
    counter(name, help) {
      const f = family(name, 'counter', help);
      return {
        inc: (labels, by = 1) => {
          add(f, labels, by);
        },
        series: (labels) => {
          const key = seriesKey(labels);
          return {
            inc: (by = 1) => {
              f.series.set(key, (f.series.get(key) ?? 0) + by);
            },
          };
        },
      };
    },
    gauge(name, help) {
      const f = family(name, 'gauge', help);
      return {
        set: (value, labels) => f.series.set(seriesKey(labels), value),
        inc: (labels, by = 1) => {
          add(f, labels, by);
        },
        dec: (labels, by = 1) => {
          add(f, labels, -by);
        },
      };
    },
    value(name, labels) {
      collect();
      return families.get(name)?.series.get(seriesKey(labels)) ?? 0;
    },
    render() {
      collect();
      const lines: string[] = [];
      for (const [name, f] of [...families].sort(([a], [b]) => (a < b ? -1 : 1))) {
        lines.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`);
        for (const [key, value] of f.series) lines.push(`${name}${key ? `{${key}}` : ''} ${value}`);
      }
      return lines.join('\n') + '\n';
    },
    onCollect(collector) {
      // A wrapper of its own, so that one collector added twice is removed once per add.
      const entry = () => {
        collector();
      };
      collectors.add(entry);
      return () => {
        collectors.delete(entry);
      };
    },
  };
}
