import type { Backend, BackendInfo } from './backend.js';
import { FastAttentionError, toFastAttentionError } from './errors.js';

/**
 * Each backend's own `createBackend` options by registry name. Backend packages add their entry by
 * declaration merging, so that `resolveBackend({ backendOptions: { cpu: { threads: 4 } } })` is
 * type-checked:
 *
 *   declare module '@fastattention/core' {
 *     interface BackendOptionsMap { cpu: CpuBackendOptions }
 *   }
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled in by backend packages (declaration merging)
export interface BackendOptionsMap {}

/** The options of the backend registered as `name`: typed where its package declares them. */
export type BackendOptionsOf<N extends string> = N extends keyof BackendOptionsMap
  ? BackendOptionsMap[N]
  : Record<string, unknown>;

/**
 * A backend the registry can try. Higher priority wins: GPU paths over the CPU addon over the
 * reference backend. `create` rejects (code UNAVAILABLE) with the reason when it cannot run here.
 */
export interface BackendProvider<O extends object = Record<string, unknown>> {
  readonly name: string;
  readonly priority: number;
  readonly description?: string;
  /** Models a device instead of running on one (a simulator): chosen only when named in `prefer`. */
  readonly simulated?: boolean;
  create(options?: O): Promise<Backend>;
}

export interface ResolvePreferences {
  /** Names to try first, in this order; the others follow by priority unless `only` is set. */
  readonly prefer?: readonly string[];
  /** Try only the preferred names. */
  readonly only?: boolean;
  readonly exclude?: readonly string[];
  /** Passed to every provider's `create`. */
  readonly options?: Record<string, unknown>;
  /** Options for one backend by name, merged over `options` (typed through `BackendOptionsMap`). */
  readonly backendOptions?: { readonly [N in keyof BackendOptionsMap]?: BackendOptionsMap[N] } & {
    readonly [name: string]: object | undefined;
  };
  /**
   * What to do when a registered backend is unusable and a lower-priority one is chosen instead.
   * Default: a process warning (`FASTATTN_FALLBACK`), once per backend and reason. `false`
   * stays silent; a function receives each fallback instead.
   */
  readonly onFallback?: false | ((fallback: Fallback) => void);
}

/** A backend that resolution skipped, and the one it chose instead. */
export interface Fallback {
  readonly skipped: string;
  readonly reason: string;
  readonly chosen: string;
}

export type ProbeResult =
  | { readonly name: string; readonly priority: number; readonly usable: true; readonly info: BackendInfo }
  | { readonly name: string; readonly priority: number; readonly usable: false; readonly reason: string };

/** Keeps the providers and picks one. Most code uses the module-level default registry. */
export class BackendRegistry {
  readonly #providers = new Map<string, BackendProvider>();
  readonly #warned = new Set<string>();

  /** Adds (or replaces) a provider; returns a function that removes it again. */
  register(provider: BackendProvider): () => void {
    this.#providers.set(provider.name, provider);
    return () => {
      if (this.#providers.get(provider.name) === provider) this.#providers.delete(provider.name);
    };
  }

  /** Providers by descending priority. */
  list(): BackendProvider[] {
    return [...this.#providers.values()].sort((a, b) => b.priority - a.priority);
  }

  /** Creates the best usable backend; if none is, one error lists each backend's reason. */
  async resolve(preferences: ResolvePreferences = {}): Promise<Backend> {
    const order = this.#order(preferences);
    if (order.length === 0) {
      throw new FastAttentionError('UNAVAILABLE', 'no backend is registered that matches the preferences');
    }
    const failures: { name: string; reason: string }[] = [];
    for (const provider of order) {
      let backend: Backend;
      try {
        backend = await provider.create({
          ...preferences.options,
          ...preferences.backendOptions?.[provider.name],
        });
      } catch (error) {
        failures.push({ name: provider.name, reason: toFastAttentionError(error, 'UNAVAILABLE').message });
        continue;
      }
      for (const { name, reason } of failures) {
        this.#fallback({ skipped: name, reason, chosen: backend.name }, preferences.onFallback);
      }
      return backend;
    }
    const lines = failures.map(({ name, reason }) => `  ${name}: ${reason}`);
    throw new FastAttentionError('UNAVAILABLE', `no usable attention backend:\n${lines.join('\n')}`);
  }

  #fallback(fallback: Fallback, onFallback: ResolvePreferences['onFallback']): void {
    if (onFallback === false) return;
    if (onFallback) {
      onFallback(fallback);
      return;
    }
    const key = `${fallback.skipped}\0${fallback.reason}`;
    if (this.#warned.has(key)) return;
    this.#warned.add(key);
    const message = `backend '${fallback.skipped}' is unusable, using '${fallback.chosen}' instead: ${fallback.reason}`;
    const emit = (globalThis as { process?: { emitWarning?: (m: string, o: object) => void } }).process
      ?.emitWarning;
    if (emit) emit(message, { type: 'FastAttentionWarning', code: 'FASTATTN_FALLBACK' });
    else console.warn(`FastAttentionWarning: ${message}`);
  }

  /** Tries every provider (creating and disposing each) and reports what it found. */
  async probe(options?: Record<string, unknown>): Promise<ProbeResult[]> {
    const results: ProbeResult[] = [];
    for (const { name, priority, create } of this.list()) {
      try {
        const backend = await create(options);
        results.push({ name, priority, usable: true, info: backend.info });
        await backend.dispose();
      } catch (error) {
        results.push({
          name,
          priority,
          usable: false,
          reason: toFastAttentionError(error, 'UNAVAILABLE').message,
        });
      }
    }
    return results;
  }

  #order({ prefer = [], only = false, exclude = [] }: ResolvePreferences): BackendProvider[] {
    const byPriority = this.list().filter((p) => !exclude.includes(p.name));
    const preferred = prefer.flatMap((name) => byPriority.filter((p) => p.name === name));
    const unknown = prefer.filter((name) => !this.#providers.has(name));
    if (unknown.length > 0) {
      throw new FastAttentionError(
        'INVALID_INPUT',
        `unknown backend ${unknown.map((n) => `'${n}'`).join(', ')}`,
        {
          field: 'prefer',
        },
      );
    }
    const rest = byPriority.filter((p) => !preferred.includes(p) && !p.simulated);
    return only ? preferred : [...preferred, ...rest];
  }
}

export const defaultRegistry = new BackendRegistry();

export const registerBackend = (provider: BackendProvider): (() => void) =>
  defaultRegistry.register(provider);

export const resolveBackend = (preferences?: ResolvePreferences): Promise<Backend> =>
  defaultRegistry.resolve(preferences);

export const probeBackends = (options?: Record<string, unknown>): Promise<ProbeResult[]> =>
  defaultRegistry.probe(options);
