import { FastAttentionError } from '../errors.js';
import type { StepGraph, Stream } from './executor.js';
import type { Op } from './ops.js';

/**
 * A step graph as a list of ops replayed one by one: for executors with no graph capture of their
 * own (host memory, the reference). `check` refuses an op while recording (validateOp and the
 * executor's own checks); `run` enqueues one op at replay, or `runAll`, when given, the whole list.
 */
export function opListGraph(
  build: (recorder: { run(op: Op): void }) => void,
  check: (op: Op) => void,
  run: (op: Op, stream?: Stream) => void,
  runAll?: (ops: readonly Op[], stream?: Stream) => void,
): StepGraph {
  const ops: Op[] = [];
  build({
    run: (op) => {
      check(op);
      ops.push(op);
    },
  });
  let disposed = false;
  const graph: StepGraph = {
    ops: ops.length,
    replay: (stream) => {
      if (disposed) throw new FastAttentionError('DISPOSED', 'the step graph was disposed');
      if (runAll) runAll(ops, stream);
      else for (const op of ops) run(op, stream);
    },
    dispose: () => {
      disposed = true;
    },
    [Symbol.dispose]: () => graph.dispose(),
  };
  return graph;
}
