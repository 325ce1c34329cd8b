import type { Stream, StreamEvent } from './executor.js';

/**
 * A stream for executors whose work is asynchronous JavaScript (a worker pool, a simulator): work
 * enqueued runs after everything enqueued before it, `enqueue` returns at once, and a failure
 * is reported by the next `synchronize()` (and by the promise of the work that failed), as a
 * device reports an asynchronous error at the next synchronization.
 */
export class QueueStream implements Stream {
  readonly name: string;
  #tail: Promise<void> = Promise.resolve();
  #error: unknown;
  #failed = false;

  constructor(name = 'stream') {
    this.name = name;
  }

  /** Runs `work` after the work before it; resolves or rejects with it. */
  enqueue<T>(work: () => Promise<T> | T): Promise<T> {
    const result = this.#tail.then(() => work());
    this.#tail = result.then(
      () => undefined,
      (error: unknown) => {
        if (!this.#failed) {
          this.#failed = true;
          this.#error = error;
        }
      },
    );
    // The stream reports the failure; the caller may drop this promise without an unhandled rejection.
    result.catch(() => {});
    return result;
  }

  /** Resolves once everything enqueued so far has run; rejects with the first failure since the last call. */
  async synchronize(): Promise<void> {
    await this.#tail;
    if (this.#failed) {
      const error = this.#error;
      this.#failed = false;
      this.#error = undefined;
      throw error;
    }
  }

  record(): StreamEvent {
    const done = this.#tail;
    return { synchronize: () => done };
  }

  wait(event: StreamEvent): void {
    this.enqueue(() => event.synchronize());
  }
}
