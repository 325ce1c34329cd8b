// A simulation worker process: runs one job at a time for the pool in pool.ts. The simulator is
// plain JavaScript and takes seconds at S >= 1K, so it runs here, off the caller's event loop; an
// aborted job is stopped by killing this process.
import { runSimulation } from '../simulate.js';
import { errorToData, type JobMessage, type ResultMessage } from './protocol.js';

process.on('message', ({ id, device, job }: JobMessage) => {
  let reply: ResultMessage;
  try {
    reply = { id, ok: true, result: runSimulation(device, job) };
  } catch (e) {
    reply = { id, ok: false, error: errorToData(e) };
  }
  process.send!(reply);
});
// The caller went away: nothing is left to answer.
process.on('disconnect', () => process.exit(0));
