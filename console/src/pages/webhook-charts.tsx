import { useEffect, useMemo, useRef, useState } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { graphql } from '../gql/gql.ts';
import { Empty, Show, useQuery } from '../ui/states.tsx';

/**
 * The attempts behind the charts: a webhook's latest deliveries in the window, bounded (at most
 * 100 deliveries and their attempts), so a busy webhook's chart shows its most recent traffic.
 */
const RecentAttempts = graphql(`
  query ConsoleRecentAttempts($webhookId: ID!, $from: DateTime!) {
    deliveries(filter: { webhookId: $webhookId, from: $from }, first: 100) {
      edges {
        node {
          attemptLog {
            createdAt
            statusCode
            responseTimeMs
          }
        }
      }
    }
  }
`);

type Span = 'hour' | 'day';
const WINDOWS: Record<Span, { label: string; spanMs: number; buckets: number }> = {
  hour: { label: 'Last hour', spanMs: 3_600_000, buckets: 12 },
  day: { label: 'Last day', spanMs: 86_400_000, buckets: 24 },
};

interface Attempt {
  createdAt: string;
  statusCode?: number | null;
  responseTimeMs: number;
}

const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

/** Attempts per bucket: the share answered 2xx, and the p50 and p95 response times (null where none). */
function bucketize(attempts: Attempt[], now: number, span: Span) {
  const { spanMs, buckets } = WINDOWS[span];
  const width = spanMs / buckets;
  const start = now - spanMs;
  const times: number[][] = Array.from({ length: buckets }, () => []);
  const succeeded = new Array<number>(buckets).fill(0);
  for (const attempt of attempts) {
    const index = Math.floor((Date.parse(attempt.createdAt) - start) / width);
    if (index < 0 || index >= buckets) continue;
    times[index]!.push(attempt.responseTimeMs);
    if (attempt.statusCode && attempt.statusCode >= 200 && attempt.statusCode < 300) succeeded[index]!++;
  }
  const sorted = times.map((bucket) => [...bucket].sort((a, b) => a - b));
  return {
    x: sorted.map((_, i) => (start + (i + 1) * width) / 1000),
    rate: sorted.map((bucket, i) => (bucket.length ? (100 * succeeded[i]!) / bucket.length : null)),
    p50: sorted.map((bucket) => (bucket.length ? quantile(bucket, 0.5)! : null)),
    p95: sorted.map((bucket) => (bucket.length ? quantile(bucket, 0.95)! : null)),
    total: attempts.length,
  };
}

function Chart({
  title,
  data,
  series,
  scales,
}: {
  title: string;
  data: uPlot.AlignedData;
  series: uPlot.Series[];
  scales?: uPlot.Scales;
}) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = box.current!;
    const width = () => Math.max(240, element.clientWidth);
    const plot = new uPlot(
      { width: width(), height: 160, series: [{}, ...series], scales, legend: { show: true } },
      data,
      element,
    );
    const resize = new ResizeObserver(() => plot.setSize({ width: width(), height: 160 }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [data, series, scales]);
  return (
    <figure className="chart">
      <figcaption>{title}</figcaption>
      <div ref={box} role="img" aria-label={title} />
    </figure>
  );
}

const RATE: uPlot.Series[] = [{ label: 'success %', stroke: '#2f855a', width: 2, spanGaps: false }];
const PERCENT: uPlot.Scales = { y: { range: [0, 100] } };
const LATENCY: uPlot.Series[] = [
  { label: 'p50 ms', stroke: '#2b6cb0', width: 2 },
  { label: 'p95 ms', stroke: '#c05621', width: 2, dash: [4, 4] },
];

/** Success rate and attempt latency of one webhook over the last hour or day. */
export function WebhookCharts({ webhookId }: { webhookId: string }) {
  const [span, setSpan] = useState<Span>('hour');
  // Fixed per window choice, so that the query's variables do not change at every render.
  const now = useMemo(() => Date.now(), [span]);
  const from = new Date(now - WINDOWS[span].spanMs).toISOString();
  const { loaded } = useQuery(RecentAttempts, { webhookId, from });
  const stats = useMemo(
    () =>
      loaded.state === 'ready'
        ? bucketize(
            loaded.data.deliveries.edges.flatMap((edge) => edge.node.attemptLog),
            now,
            span,
          )
        : null,
    [loaded, now, span],
  );
  const rate = useMemo<uPlot.AlignedData>(() => (stats ? [stats.x, stats.rate] : [[]]), [stats]);
  const latency = useMemo<uPlot.AlignedData>(() => (stats ? [stats.x, stats.p50, stats.p95] : [[]]), [stats]);
  return (
    <section className="card" aria-labelledby="charts">
      <div className="page-head">
        <h2 id="charts">Health</h2>
        <div role="group" aria-label="Window" className="segmented">
          {(Object.keys(WINDOWS) as Span[]).map((key) => (
            <button key={key} type="button" aria-pressed={span === key} onClick={() => setSpan(key)}>
              {WINDOWS[key].label}
            </button>
          ))}
        </div>
      </div>
      <Show loaded={loaded} what="recent attempts">
        {() =>
          !stats || stats.total === 0 ? (
            <Empty>No attempts in this window.</Empty>
          ) : (
            <div className="charts">
              <Chart title="Success rate (%)" data={rate} series={RATE} scales={PERCENT} />
              <Chart title="Attempt latency (ms)" data={latency} series={LATENCY} />
            </div>
          )
        }
      </Show>
    </section>
  );
}
