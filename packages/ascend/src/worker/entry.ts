// A simulation worker: runs one job at a time for the pool in pool.ts. The simulator is plain
// JavaScript and takes seconds at S >= 1K, so it runs here, off the caller's event loop; an
// aborted job is stopped by terminating this thread.
import { parentPort, workerData } from 'node:worker_threads';
import { runSimulation } from '../simulate.js';
import {
  errorToData,
  type JobMessage,
  type ResultMessage,
  resultTransfer,
  type WorkerData,
} from './protocol.js';

const { device } = workerData as WorkerData;
const port = parentPort!;

port.on('message', ({ id, job }: JobMessage) => {
  let reply: ResultMessage;
  let transfer: ArrayBuffer[] = [];
  try {
    const result = runSimulation(device, job);
    reply = { id, ok: true, result };
    transfer = resultTransfer(result);
  } catch (e) {
    reply = { id, ok: false, error: errorToData(e) };
  }
  port.postMessage(reply, transfer);
});
