/**
 * Wall time and peak memory of one operation in this process: a garbage collection first (the caller
 * passes the `gc` it obtained with --expose-gc semantics), then RSS and heap sampled every 50 ms until
 * the operation ends. Used by the file benchmarks that measure one large request (CSV import, audit export).
 */
export interface PeakMemory {
  ms: number;
  rssGrowthMb: number;
  heapGrowthMb: number;
}

const mb = (n: number): number => Math.round((n / 1024 / 1024) * 10) / 10;

export async function measurePeakMemory<T extends object>(gc: () => void, run: () => Promise<T>): Promise<PeakMemory & T> {
  gc();
  const base = process.memoryUsage();
  let peakRss = base.rss;
  let peakHeap = base.heapUsed;
  const sample = (): void => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  };
  const sampler = setInterval(sample, 50);
  const started = process.hrtime.bigint();
  try {
    const res = await run();
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    sample();
    return { ms: Math.round(ms), rssGrowthMb: mb(peakRss - base.rss), heapGrowthMb: mb(peakHeap - base.heapUsed), ...res };
  } finally {
    clearInterval(sampler);
  }
}
