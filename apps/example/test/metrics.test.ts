// The server's tokens-per-second gauge: a ring of one-second buckets over the last 10 s.
import { describe, expect, it } from 'vitest';
import { ServerMetrics } from '../src/server/metrics.js';

describe('ServerMetrics.tokensPerSecond', () => {
  it('counts the tokens of the last 10 s, and forgets older ones as the ring turns', () => {
    const metrics = new ServerMetrics({ stats: () => undefined } as never);
    expect(metrics.tokensPerSecond(0)).toBe(0);
    for (let t = 0; t < 5000; t += 10) metrics.tokenGenerated(t); // 100 tokens/s for 5 s
    expect(metrics.tokensPerSecond(5000)).toBe(50); // 500 tokens over the 10 s window
    for (let t = 20_000; t < 21_000; t += 5) metrics.tokenGenerated(t); // 200 in second 20
    expect(metrics.tokensPerSecond(20_500)).toBe(20); // seconds 0-4 have left the window
    expect(metrics.tokensPerSecond(40_000)).toBe(0);
  });
});
