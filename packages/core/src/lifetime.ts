import { FastAttentionError } from './errors.js';

/** Anything `Lifetime.adopt` can dispose of: a tensor, a model, another Lifetime. */
export interface Disposal {
  dispose(): unknown;
}

/**
 * The lifetime of an object that holds resources (a backend; later a model, a context, a
 * sequence), written once so that every such object follows the same rules:
 * - `run(work)` refuses with DISPOSED once `dispose()` was called, else runs `work` and tracks it;
 * - `track(work)` tracks without refusing: for work that admitted work starts (a download after a
 *   launch), which must still finish;
 * - `dispose()` is memoised: it refuses new work at once, runs `cancel` if given (for owners whose
 *   work may run long and should end early, such as a simulator), waits until nothing tracked is
 *   in flight (work started while it waits included), disposes what was adopted (newest first),
 *   then runs `release`. It never rejects because some tracked work did: that work's caller sees
 *   the error.
 * `[Symbol.asyncDispose]` makes `await using` work on the owner when it delegates to `dispose()`.
 */
export class Lifetime implements AsyncDisposable {
  readonly #owner: string;
  readonly #release: (() => unknown) | undefined;
  readonly #cancel: (() => unknown) | undefined;
  readonly #inflight = new Set<Promise<unknown>>();
  readonly #children = new Set<Disposal>();
  #disposal: Promise<void> | undefined;

  /**
   * `owner` names the object in errors ("the cpu backend"); `release` frees its own resources once
   * nothing is in flight; `options.cancel` makes work in flight end early when disposal starts.
   */
  constructor(owner: string, release?: () => unknown, options: { readonly cancel?: () => unknown } = {}) {
    this.#owner = owner;
    this.#release = release;
    this.#cancel = options.cancel;
  }

  /** True from the moment `dispose()` was called. */
  get disposed(): boolean {
    return this.#disposal !== undefined;
  }

  /** Work in flight (tracked and not yet settled). */
  get pending(): number {
    return this.#inflight.size;
  }

  /** Throws DISPOSED, naming the owner, once `dispose()` was called. */
  check(): void {
    if (this.#disposal) throw new FastAttentionError('DISPOSED', `${this.#owner} was disposed`);
  }

  /** Runs `work` unless disposed (then rejects with DISPOSED), and tracks it until it settles. */
  run<T>(work: () => Promise<T>): Promise<T> {
    try {
      this.check();
    } catch (error) {
      return Promise.reject(error);
    }
    return this.track(work);
  }

  /** Tracks `work` until it settles, disposed or not. A synchronous throw becomes a rejection. */
  track<T>(work: () => Promise<T>): Promise<T> {
    let promise: Promise<T>;
    try {
      promise = work();
    } catch (error) {
      promise = Promise.reject(error);
    }
    this.#inflight.add(promise);
    const forget = (): void => {
      this.#inflight.delete(promise);
    };
    promise.then(forget, forget);
    return promise;
  }

  /** Disposes `child` with this lifetime (before `release`), unless `forget(child)` comes first. */
  adopt<C extends Disposal>(child: C): C {
    this.check();
    this.#children.add(child);
    return child;
  }

  /** Stops adopting `child` (the child was disposed on its own). */
  forget(child: Disposal): void {
    this.#children.delete(child);
  }

  dispose(): Promise<void> {
    this.#disposal ??= this.#close();
    return this.#disposal;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }

  async #close(): Promise<void> {
    await this.#cancel?.();
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
    const children = [...this.#children].reverse();
    this.#children.clear();
    for (const child of children) await Promise.allSettled([Promise.resolve().then(() => child.dispose())]);
    await this.#release?.();
  }
}
