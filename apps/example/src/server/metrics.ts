/**
 * The server's Prometheus metrics (prom-client, one registry per server): requests by route and
 * status, tokens generated (a counter, and its rate over the last 10 s for dashboards without
 * PromQL), time to first token, requests in flight and the scheduler's queue and KV cache use,
 * read from the model when scraped.
 */
import type { Model } from '@fastattention/runtime';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Seconds over which fastattn_generation_tokens_per_second counts. */
const RATE_WINDOW_S = 10;

export class ServerMetrics {
  readonly registry = new Registry();
  // Tokens streamed per wall-clock second, in a ring of RATE_WINDOW_S one-second buckets.
  readonly #counts = new Float64Array(RATE_WINDOW_S);
  readonly #seconds = new Float64Array(RATE_WINDOW_S).fill(-1);
  readonly requests = new Counter({
    name: 'fastattn_requests_total',
    help: 'HTTP requests answered, by route and status code',
    labelNames: ['route', 'status'] as const,
    registers: [this.registry],
  });
  readonly tokens = new Counter({
    name: 'fastattn_generated_tokens_total',
    help: 'Tokens generated for clients',
    registers: [this.registry],
  });
  readonly promptTokens = new Counter({
    name: 'fastattn_prompt_tokens_total',
    help: 'Prompt tokens of the requests served',
    registers: [this.registry],
  });
  readonly timeToFirstToken = new Histogram({
    name: 'fastattn_time_to_first_token_seconds',
    help: 'From a request arriving to its first generated token',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly cancelled = new Counter({
    name: 'fastattn_requests_cancelled_total',
    help: 'Requests whose client disconnected before the response ended (their generations stop)',
    registers: [this.registry],
  });
  readonly inFlight = new Gauge({
    name: 'fastattn_requests_in_flight',
    help: 'Completion requests being served (each may hold several choices)',
    registers: [this.registry],
  });

  /** One token sent to a client, now. */
  tokenGenerated(now = performance.now()): void {
    const second = Math.floor(now / 1000);
    const i = second % RATE_WINDOW_S;
    if (this.#seconds[i] !== second) {
      this.#seconds[i] = second;
      this.#counts[i] = 0;
    }
    this.#counts[i]!++;
  }

  /** Tokens per second over the last RATE_WINDOW_S whole seconds and the current one. */
  tokensPerSecond(now = performance.now()): number {
    const second = Math.floor(now / 1000);
    let sum = 0;
    for (let i = 0; i < RATE_WINDOW_S; i++)
      if (this.#seconds[i]! > second - RATE_WINDOW_S) sum += this.#counts[i]!;
    return sum / RATE_WINDOW_S;
  }

  constructor(model: Model) {
    const stats = () => model.stats();
    const rate = () => this.tokensPerSecond();
    new Gauge({
      name: 'fastattn_generation_tokens_per_second',
      help: `Tokens sent to clients per second, over the last ${RATE_WINDOW_S} s`,
      registers: [this.registry],
      collect() {
        this.set(rate());
      },
    });
    new Gauge({
      name: 'fastattn_queue_depth',
      help: 'Sequences waiting for the scheduler (not yet decoding)',
      registers: [this.registry],
      collect() {
        this.set(stats()?.waiting ?? 0);
      },
    });
    new Gauge({
      name: 'fastattn_sequences_running',
      help: 'Sequences the scheduler is decoding',
      registers: [this.registry],
      collect() {
        this.set(stats()?.running ?? 0);
      },
    });
    new Gauge({
      name: 'fastattn_kv_cache_usage_ratio',
      help: 'Share of the paged KV cache blocks in use',
      registers: [this.registry],
      collect() {
        const s = stats();
        this.set(s && s.numBlocks > 0 ? s.usedBlocks / s.numBlocks : 0);
      },
    });
  }
}
