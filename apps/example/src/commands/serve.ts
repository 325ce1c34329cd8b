/**
 * `fastattn serve --model PATH`: an OpenAI-compatible server (server/app.ts) over a model loaded
 * with the runtime. Ctrl-C (or SIGTERM) stops taking requests, lets those in flight finish for a
 * few seconds, cancels the rest, then exits.
 */
import { basename, resolve } from 'node:path';
import { resolveBackend } from '@fastattention/core';
import { loadModel } from '@fastattention/runtime';
import { discoverBackends } from '../backends.js';
import { formatBytes } from '../format.js';
import { createProgress } from '../progress.js';
import { createServer } from '../server/app.js';

export interface ServeOptions {
  readonly model: string;
  readonly backend?: string;
  readonly host: string;
  readonly port: number;
  readonly apiKey?: string;
  readonly modelName?: string;
  readonly maxRequests: number;
  readonly threads?: number;
  readonly backendPackage?: string[];
}

export async function serveCommand(o: ServeOptions): Promise<void> {
  await discoverBackends(o.backendPackage ?? []);
  const backend = await resolveBackend({
    ...(o.backend ? { prefer: [o.backend], only: true } : {}),
    options: o.threads ? { threads: o.threads } : {},
  });
  const progress = createProgress();
  let shown = -5;
  const model = await loadModel(o.model, {
    backend,
    onProgress: (p) => {
      // every 5%: a log gets a few dozen lines, not one per tensor
      const percent = p.totalBytes > 0 ? Math.floor((100 * p.loadedBytes) / p.totalBytes) : 100;
      if (percent < shown + 5 && percent < 100) return;
      shown = percent;
      const { loadedBytes, totalBytes } = p;
      progress.step(
        `loading ${basename(o.model)}: ${percent}% (${formatBytes(loadedBytes)} of ${formatBytes(totalBytes)})`,
      );
    },
  });
  progress.done();
  const modelName = o.modelName ?? basename(resolve(o.model));
  const { app, shutdown } = createServer({
    model,
    modelName,
    maxRequests: o.maxRequests,
    ...((o.apiKey ?? process.env.FASTATTN_API_KEY) && { apiKey: o.apiKey ?? process.env.FASTATTN_API_KEY }),
  });
  const address = await app.listen({ host: o.host, port: o.port });
  console.error(`serving ${modelName} on ${backend.name} at ${address}/v1 (Ctrl-C stops)`);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    console.error('stopping: finishing the requests in flight');
    await shutdown(5_000);
    await model.dispose();
    await backend.dispose();
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}
