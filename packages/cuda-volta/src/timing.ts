import type { ResolvedDeviceInput } from './input.js';
import type { Launcher } from './launch.js';
import type { LaunchDesc, NativeContext } from './native.js';

export interface TimingOptions {
  readonly warmup?: number;
  readonly iters?: number;
  /** Time this compiled configuration (its suffix) instead of the planner's choice. */
  readonly config?: string;
}

/** Times one launch alone with CUDA events, after `warmup` untimed ones: one figure per iteration, in ms. */
export async function timeLaunch(
  context: NativeContext,
  launcher: Launcher,
  input: ResolvedDeviceInput,
  config: string | undefined,
  warmup: number,
  iters: number,
): Promise<Float64Array> {
  let ms: Float64Array = new Float64Array(0);
  await launcher.run(input, config, async (desc) => {
    ms = await context.timeAttention(desc, warmup, iters);
  });
  return ms;
}

/**
 * Times the launches of several inputs back to back, `rounds` times over the list after `warmup`
 * untimed rounds: one figure per `perFigure` launches, in ms per launch. Each launch's buffers
 * (outputs, workspace) are held until every launch has been timed.
 */
export async function timeLaunchSets(
  context: NativeContext,
  launcher: Launcher,
  inputs: readonly ResolvedDeviceInput[],
  config: string | undefined,
  warmup: number,
  rounds: number,
  perFigure: number,
): Promise<Float64Array> {
  let ms: Float64Array = new Float64Array(0);
  const descs: LaunchDesc[] = [];
  const nest = async (i: number): Promise<void> => {
    if (i === inputs.length) {
      ms = await context.timeAttentionSets(descs, warmup, rounds, perFigure);
      return;
    }
    await launcher.run(inputs[i]!, config, async (desc) => {
      descs.push(desc);
      await nest(i + 1);
    });
  };
  await nest(0);
  return ms;
}
