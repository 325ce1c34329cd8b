import type { Stream, StreamEvent } from './executor.js';

/**
 * A stream for executors whose work is asynchronous JavaScript (a worker pool, a simulator): work
 * enqueued runs after everything enqueued before it, and `enqueue` returns at once. A failure is
 * sticky, as a device's asynchronous error is: the work that failed rejects with it, so does all
 * work enqueued after it (a read never returns what a failed op left behind), and so do events
 * recorded after it, until `synchronize()` reports it and clears the stream.
 */
export class QueueStream implements Stream {
  readonly name: string;
  #tail: Promise<void> = Promise.resolve();
  #error: unknown;
  #failed = false;

  constructor(name = 'stream') {
    this.name = name;
  }

  /** Runs `work` after the work before it; resolves or rejects with it (or with a pending failure). */
  enqueue<T>(work: () => Promise<T> | T): Promise<T> {
    const result = this.#tail.then(() => {
      if (this.#failed) throw this.#error;
      return work();
    });
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

  /** Resolves once everything enqueued so far has run; rejects with the pending failure, clearing it. */
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
    const done = this.#tail.then(() => {
      if (this.#failed) throw this.#error;
    });
    done.catch(() => {});
    return { synchronize: () => done };
  }

  wait(event: StreamEvent): void {
    this.enqueue(() => event.synchronize());
  }
}
