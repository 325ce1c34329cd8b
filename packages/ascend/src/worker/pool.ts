import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { FastAttentionError } from '@fastattention/core';
import type { AscendDevice } from '../device/presets.js';
import type { SimulationJob } from '../job.js';
import type { SimulationResult } from '../simulate.js';
import {
  detachFromCaller,
  errorFromData,
  type JobMessage,
  type ResultMessage,
  type WorkerData,
} from './protocol.js';

/**
 * The worker script beside this module: entry.js when compiled; entry.ts when this module itself
 * runs from TypeScript sources (the tests, whose runner gives workers a TypeScript loader).
 */
const ENTRY = new URL(import.meta.url.endsWith('.ts') ? './entry.ts' : './entry.js', import.meta.url);

interface Task {
  readonly id: number;
  readonly job: SimulationJob;
  readonly transfer: ArrayBuffer[];
  readonly resolve: (result: SimulationResult) => void;
  readonly reject: (error: FastAttentionError) => void;
  /** Detaches the abort listener; called once the task settles. */
  release: () => void;
}

/**
 * Simulation workers for one backend: at most `size` threads, started on first use, each running
 * one job at a time; jobs wait in order for a free worker. An aborted job is dropped from the
 * queue, or, when it is running, its worker is terminated (a thread busy in a JavaScript loop
 * cannot be interrupted any other way) and a fresh one is started for the next job. Idle workers
 * are unref'd: a backend nobody disposed does not keep the process alive.
 */
export class SimulationPool {
  readonly #device: AscendDevice;
  readonly #size: number;
  readonly #idle: Worker[] = [];
  readonly #running = new Map<Worker, Task>();
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
    const moved = detachFromCaller(job);
    return new Promise<SimulationResult>((resolve, reject) => {
      const task: Task = {
        id: this.#nextId++,
        job: moved.job,
        transfer: moved.transfer,
        resolve,
        reject,
        release: () => {},
      };
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
    await Promise.all(workers.map((w) => w.terminate()));
  }

  #pump(): void {
    while (this.#queue.length > 0) {
      const worker = this.#idle.pop() ?? (this.#workers() < this.#size ? this.#spawn() : undefined);
      if (!worker) return;
      const task = this.#queue.shift()!;
      this.#running.set(worker, task);
      worker.ref();
      const message: JobMessage = { id: task.id, job: task.job };
      worker.postMessage(message, task.transfer);
    }
  }

  #workers(): number {
    return this.#idle.length + this.#running.size;
  }

  #spawn(): Worker {
    const data: WorkerData = { device: this.#device };
    const worker = new Worker(ENTRY, { workerData: data });
    worker.on('message', (m: ResultMessage) => {
      const task = this.#running.get(worker);
      if (!task || task.id !== m.id) return;
      this.#running.delete(worker);
      worker.unref();
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
    worker.on('error', (e) => this.#lose(worker, workerError(e)));
    worker.on('exit', (code) =>
      this.#lose(worker, new FastAttentionError('INTERNAL', `a simulation worker exited with code ${code}`)),
    );
    return worker;
  }

  #lose(worker: Worker, error: FastAttentionError): void {
    const idle = this.#idle.indexOf(worker);
    if (idle >= 0) this.#idle.splice(idle, 1);
    const task = this.#running.get(worker);
    if (!task) return;
    this.#running.delete(worker);
    settle(task, error);
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
      void worker.terminate();
      this.#pump();
      return;
    }
  }
}

function settle(task: Task, error: FastAttentionError): void {
  task.release();
  task.reject(error);
}

const abortedError = (signal: AbortSignal): FastAttentionError =>
  new FastAttentionError('ABORTED', 'attention was aborted', { cause: signal.reason });

const disposedError = (): FastAttentionError =>
  new FastAttentionError('DISPOSED', 'the ascend-sim backend was disposed');

function workerError(e: Error): FastAttentionError {
  const oom = (e as { code?: unknown }).code === 'ERR_WORKER_OUT_OF_MEMORY';
  return new FastAttentionError(oom ? 'OOM' : 'INTERNAL', `a simulation worker failed: ${e.message}`, {
    cause: e,
  });
}
