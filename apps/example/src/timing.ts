/** Median of a sample (the figure every table in this project quotes). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Runs `run` `warmup` times untimed, then `repeat` times; returns the median wall time in ms. */
export async function timeMedian(
  run: () => Promise<unknown>,
  { warmup = 1, repeat = 3 } = {},
): Promise<number> {
  for (let i = 0; i < warmup; i++) await run();
  const times: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
  }
  return median(times);
}
