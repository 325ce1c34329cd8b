#!/usr/bin/env node
import { createRequire } from 'node:module';
import { DTYPES, isFastAttentionError, MASK_KINDS } from '@fastattention/core';
import { Command, InvalidArgumentError, Option } from 'commander';
import { BACKEND_PACKAGES_ENV } from './backends.js';
import { type BenchOptions, benchCommand } from './commands/bench.js';
import { type DemoOptions, demoCommand } from './commands/demo.js';
import {
  type ChatCommandOptions,
  chatCommand,
  type GenerateCommandOptions,
  generateCommand,
} from './commands/generate.js';
import { infoCommand } from './commands/info.js';
import { type ModelDemoOptions, modelDemoCommand } from './commands/model-demo.js';
import { type ServeOptions, serveCommand } from './commands/serve.js';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

function nonNegative(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number >= 0');
  return n;
}

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected an integer >= 0');
  return n;
}

function sizeList(value: string): number[] {
  return value.split(',').map((s) => positiveInt(s.trim()));
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

const program = new Command('fastattn')
  .description('FastAttention: exact attention for the hardware FlashAttention leaves behind')
  .version(version, '-v, --version')
  .option(
    '--backend-package <module>',
    `load a third-party backend package or file exporting a provider (repeatable; also ${BACKEND_PACKAGES_ENV})`,
    collect,
  )
  .showHelpAfterError()
  .showSuggestionAfterError();

program
  .command('info')
  .description('list the backends found, their devices and capabilities, and why any is unusable')
  .option('--json', 'print JSON instead of a table')
  .action((o: { json?: boolean }, command: Command) => infoCommand({ ...command.optsWithGlobals(), ...o }));

/** The flags of every command that runs a backend (BackendFlags). */
function withBackend(command: Command): Command {
  return command
    .option('-b, --backend <name>', 'use this backend instead of the best available one')
    .option('-t, --threads <n>', 'worker threads for backends that take them', positiveInt);
}

/** A command that loads a model: the checkpoint and the backend flags (ModelOptions). */
function withModel(command: Command): Command {
  return withBackend(
    command.requiredOption('-m, --model <path>', 'a Hugging Face checkpoint directory or a GGUF file'),
  );
}

/** The model and sampling flags of generate and chat. */
function modelCommand(name: string, description: string): Command {
  return withModel(program.command(name).description(description))
    .option('-n, --max-tokens <n>', 'tokens to generate at most', positiveInt, 256)
    .option('--temperature <t>', 'sampling temperature (0: greedy)', nonNegative, 0.7)
    .option('--top-p <p>', 'nucleus sampling: keep the top tokens holding this probability', nonNegative)
    .option('--top-k <k>', 'keep the k most likely tokens', positiveInt)
    .option('--min-p <p>', 'drop tokens below this share of the top one', nonNegative)
    .option('--seed <n>', 'the sampler seed (same seed, same text)', nonNegativeInt)
    .option('--stop <text>', 'stop at this text (repeatable)', collect);
}

modelCommand('generate', 'generate text from a prompt (--prompt, or stdin), streamed to stdout')
  .option('-p, --prompt <text>', 'the prompt (default: stdin)')
  .option('--json', 'print the text, usage and timings as JSON at the end instead of streaming')
  .action((o: GenerateCommandOptions, command: Command) =>
    generateCommand({ ...command.optsWithGlobals(), ...o }),
  );

modelCommand(
  'chat',
  'chat with a model in the terminal (its chat template; /reset, /exit; Ctrl-C cancels a reply)',
)
  .option('--system <text>', 'a system message that starts every conversation')
  .action((o: ChatCommandOptions, command: Command) => chatCommand({ ...command.optsWithGlobals(), ...o }));

withModel(
  program
    .command('bench')
    .description(
      "a model's prefill and decode throughput over batch sizes and contexts: a table, JSON and an SVG or PNG chart",
    ),
)
  .option('--batches <list>', 'concurrent requests, comma-separated', sizeList, [1, 4, 16])
  .option('-c, --contexts <list>', 'prompt lengths, comma-separated', sizeList, [128, 512, 2048])
  .option('--decode-tokens <n>', 'tokens each request decodes', positiveInt, 32)
  .option('--chart <file>', 'also write the throughput chart: file.svg or file.png')
  .option('--json', 'print JSON instead of a table')
  .action((o: BenchOptions, command: Command) => benchCommand({ ...command.optsWithGlobals(), ...o }));

withBackend(
  program
    .command('model-demo')
    .description(
      "generation on a synthetic Llama (nothing downloaded) with 'flash' against 'standard' attention as the context grows",
    ),
)
  .option('-c, --contexts <list>', 'prompt lengths, comma-separated', sizeList, [256, 1024, 2048, 4096])
  .option('-r, --repeat <n>', 'runs per context and algorithm (the median is shown)', positiveInt, 3)
  .option('--json', 'print JSON instead of a table')
  .action((o: ModelDemoOptions, command: Command) =>
    modelDemoCommand({ ...command.optsWithGlobals(), ...o }),
  );

withModel(
  program
    .command('serve')
    .description('serve a model over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions)'),
)
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('-p, --port <n>', 'port to listen on', positiveInt, 8000)
  .option(
    '--api-key <key>',
    'require this bearer key on every request but /health and /metrics (also FASTATTN_API_KEY)',
  )
  .option('--model-name <name>', 'the model id clients use (default: the checkpoint name)')
  .option('--max-requests <n>', 'requests served at once; more get 429', positiveInt, 256)
  .action((o: ServeOptions, command: Command) => serveCommand({ ...command.optsWithGlobals(), ...o }));

withBackend(
  program
    .command('demo')
    .description('run attention on the best available backend and on standard attention, and compare'),
)
  .option('-s, --sizes <list>', 'sequence lengths, comma-separated', sizeList, [256, 512, 1024])
  .option('--heads <n>', 'attention heads', positiveInt, 8)
  .option('--head-dim <n>', 'head dimension', positiveInt, 64)
  .addOption(
    new Option('--dtype <dtype>', 'storage type (default: f32 where the backend runs it)').choices(DTYPES),
  )
  .addOption(
    new Option('--mask <kind>', 'mask (window: 128 keys to the left)').choices(MASK_KINDS).default('causal'),
  )
  .option('-r, --repeat <n>', 'timed runs per size (the median is shown)', positiveInt, 3)
  .option('--force', 'run even when the estimated memory or time is over the limits')
  .option('--json', 'print JSON instead of a table')
  .action((o: DemoOptions, command: Command) => demoCommand({ ...command.optsWithGlobals(), ...o }));

program.parseAsync().catch((error: unknown) => {
  if (isFastAttentionError(error)) {
    console.error(`fastattn: ${error.message} [${error.code}${error.field ? `, field ${error.field}` : ''}]`);
  } else {
    console.error(error);
  }
  process.exitCode = 1;
});
