import { type ChildProcess, fork } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { FastAttentionError } from '@fastattention/core';
import type { AscendDevice } from '../device/presets.js';
import type { SimulationJob } from '../job.js';
import type { SimulationResult } from '../simulate.js';
import { errorFromData, type JobMessage, type ResultMessage, snapshotJob } from './protocol.js';

/**
 * The worker script beside this module: entry.js when compiled; entry.ts when this module itself
 * runs from TypeScript sources (the tests, whose runner gives child processes a TypeScript loader).
 */
const ENTRY = fileURLToPath(
  new URL(import.meta.url.endsWith('.ts') ? './entry.ts' : './entry.js', import.meta.url),
);

interface Task {
  readonly id: number;
  readonly job: SimulationJob;
  readonly resolve: (result: SimulationResult) => void;
  readonly reject: (error: FastAttentionError) => void;
  /** Detaches the abort listener; called once the task settles. */
  release: () => void;
}

/**
 * Simulation workers for one backend: at most `size` child processes, started on first use, each
 * running one job at a time; jobs wait in order for a free worker. An aborted job is dropped from
 * the queue, or, when it is running, its process is killed (a process busy in a JavaScript loop
 * cannot be interrupted any other way) and a fresh one is started for the next job. Idle workers
 * are unref'd: a backend nobody disposed does not keep the process alive.
 *
 * Processes rather than worker threads: stopping a busy worker thread races with V8's concurrent
 * compiler on Node.js 20 and can abort the whole process; killing a child cannot.
 */
export class SimulationPool {
  readonly #device: AscendDevice;
  readonly #size: number;
  readonly #idle: ChildProcess[] = [];
  readonly #running = new Map<ChildProcess, Task>();
  readonly #queue: Task[] = [];
  #nextId = 0;
  #disposed = false;

  constructor(device: AscendDevice, size: number = availableParallelism()) {
    this.#device = device;
    this.#size = size;
  }

  /** Runs a validated job on a worker; rejects with ABORTED soon after `signal` fires. */
  run(job: SimulationJob, signal?: AbortSignal): Promise<SimulationResult> {
    if (this.#disposed) return Promise.reject(disposedError());
    if (signal?.aborted) return Promise.reject(abortedError(signal));
    const snapshot = snapshotJob(job);
    return new Promise<SimulationResult>((resolve, reject) => {
      const task: Task = { id: this.#nextId++, job: snapshot, resolve, reject, release: () => {} };
      if (signal) {
        const onAbort = (): void => this.#abort(task, abortedError(signal));
        signal.addEventListener('abort', onAbort, { once: true });
        task.release = () => signal.removeEventListener('abort', onAbort);
      }
      this.#queue.push(task);
      this.#pump();
    });
  }

  /** Stops every worker; queued and running jobs reject with DISPOSED. */
  async dispose(): Promise<void> {
    this.#disposed = true;
    for (const task of this.#queue.splice(0)) settle(task, disposedError());
    const workers = [...this.#idle.splice(0), ...this.#running.keys()];
    for (const task of this.#running.values()) settle(task, disposedError());
    this.#running.clear();
    await Promise.all(workers.map(stop));
  }

  #pump(): void {
    while (this.#queue.length > 0) {
      const worker = this.#idle.pop() ?? (this.#workers() < this.#size ? this.#spawn() : undefined);
      if (!worker) return;
      const task = this.#queue.shift()!;
      this.#running.set(worker, task);
      setRef(worker, true);
      const message: JobMessage = { id: task.id, device: this.#device, job: task.job };
      worker.send(message, (e) => {
        if (e)
          this.#lose(
            worker,
            new FastAttentionError('INTERNAL', `a simulation job could not be sent: ${e.message}`),
          );
      });
    }
  }

  #workers(): number {
    return this.#idle.length + this.#running.size;
  }

  #spawn(): ChildProcess {
    const worker = fork(ENTRY, [], {
      serialization: 'advanced', // typed arrays cross as typed arrays
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: loaderFlags(process.execArgv),
    });
    worker.on('message', (m: ResultMessage) => {
      const task = this.#running.get(worker);
      if (!task || task.id !== m.id) return;
      this.#running.delete(worker);
      setRef(worker, false);
      this.#idle.push(worker);
      if (m.ok) {
        task.release();
        task.resolve(m.result);
      } else {
        settle(task, errorFromData(m.error));
      }
      this.#pump();
    });
    // A worker that dies (out of memory, a crash in the runtime) fails its job, not the backend.
    worker.on('error', (e) =>
      this.#lose(
        worker,
        new FastAttentionError('INTERNAL', `a simulation worker failed: ${e.message}`, { cause: e }),
      ),
    );
    worker.on('exit', (code, signal) => this.#lose(worker, exitError(code, signal)));
    return worker;
  }

  #lose(worker: ChildProcess, error: FastAttentionError): void {
    const idle = this.#idle.indexOf(worker);
    if (idle >= 0) this.#idle.splice(idle, 1);
    const task = this.#running.get(worker);
    if (!task) return;
    this.#running.delete(worker);
    settle(task, error);
    void stop(worker);
    if (!this.#disposed) this.#pump();
  }

  #abort(task: Task, error: FastAttentionError): void {
    const queued = this.#queue.indexOf(task);
    if (queued >= 0) {
      this.#queue.splice(queued, 1);
      settle(task, error);
      return;
    }
    for (const [worker, running] of this.#running) {
      if (running !== task) continue;
      this.#running.delete(worker);
      settle(task, error);
      void stop(worker);
      this.#pump();
      return;
    }
  }
}

/** Flags that decide how modules load, each with its value when it takes one. */
const LOADER_FLAGS = new Set([
  '--import',
  '--require',
  '-r',
  '--loader',
  '--experimental-loader',
  '--conditions',
  '-C',
]);

/**
 * The caller's flags a worker needs to load its module as the caller would (a TypeScript loader in
 * the tests, export conditions), and nothing else: inheriting all of them would pass on `--eval`
 * (a worker would run the caller's script, and fork again), `--inspect` ports and the like.
 */
export function loaderFlags(execArgv: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i]!;
    const name = arg.includes('=') ? arg.slice(0, arg.indexOf('=')) : arg;
    if (!LOADER_FLAGS.has(name)) continue;
    kept.push(arg);
    if (!arg.includes('=') && i + 1 < execArgv.length) kept.push(execArgv[++i]!);
  }
  return kept;
}

/** A running job keeps the caller's process alive; an idle worker does not. */
function setRef(worker: ChildProcess, ref: boolean): void {
  const channel = worker.channel as { ref(): void; unref(): void } | null | undefined;
  if (ref) {
    worker.ref();
    channel?.ref();
  } else {
    worker.unref();
    channel?.unref();
  }
}

/** Kills a worker and waits until it is gone. */
function stop(worker: ChildProcess): Promise<void> {
  if (worker.exitCode !== null || worker.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    worker.once('exit', () => resolve());
    worker.ref(); // an idle worker is unref'd: the caller's process must wait for its exit
    worker.kill('SIGKILL');
  });
}

function settle(task: Task, error: FastAttentionError): void {
  task.release();
  task.reject(error);
}

const abortedError = (signal: AbortSignal): FastAttentionError =>
  new FastAttentionError('ABORTED', 'attention was aborted', { cause: signal.reason });

const disposedError = (): FastAttentionError =>
  new FastAttentionError('DISPOSED', 'the ascend-sim backend was disposed');

function exitError(code: number | null, signal: NodeJS.Signals | null): FastAttentionError {
  const how = signal !== null ? `was killed by ${signal}` : `exited with code ${code}`;
  return new FastAttentionError('INTERNAL', `a simulation worker ${how}`);
}
