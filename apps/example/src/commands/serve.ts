/**
 * `fastattn serve --model PATH`: an OpenAI-compatible server (server/app.ts) over a model loaded
 * with the runtime. Ctrl-C (or SIGTERM) stops taking requests, lets those in flight finish for a
 * few seconds, cancels the rest, then exits.
 */
import { basename, resolve } from 'node:path';
import { createServer } from '../server/app.js';
import { loadForCommand, type ModelOptions } from './load.js';

export interface ServeOptions extends ModelOptions {
  readonly host: string;
  readonly port: number;
  readonly apiKey?: string;
  readonly modelName?: string;
  readonly maxRequests: number;
}

export async function serveCommand(o: ServeOptions): Promise<void> {
  const loaded = await loadForCommand(o);
  const { backend, model } = loaded;
  const modelName = o.modelName ?? basename(resolve(o.model));
  const apiKey = o.apiKey ?? process.env.FASTATTN_API_KEY;
  const { app, shutdown } = createServer({
    model,
    modelName,
    maxRequests: o.maxRequests,
    ...(apiKey && { apiKey }),
  });
  const address = await app.listen({ host: o.host, port: o.port });
  console.error(`serving ${modelName} on ${backend.name} at ${address}/v1 (Ctrl-C stops)`);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    console.error('stopping: finishing the requests in flight');
    await shutdown(5_000);
    await loaded.dispose();
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}
