// `fastattn generate` and `fastattn chat` as a user runs them, on a tiny checkpoint the test
// writes (no download), on the cpu backend: seeded text that repeats, the prompt from stdin, and a
// conversation that /reset forgets.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomSeed, rng } from '@fastattention/core/testing';
import { writeTinyCheckpoint, writeTinyTokenizer } from '@fastattention/runtime/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const seed = randomSeed();
let root: string;
let dir: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fa-cli-model-'));
  dir = join(root, 'tiny');
  const spec = {
    architecture: 'llama',
    vocab: 272,
    hidden: 32,
    intermediate: 48,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    dtype: 'f32',
  } as const;
  await writeTinyCheckpoint(dir, spec, rng(seed));
  await writeTinyTokenizer(dir);
});
afterAll(() => rm(root, { recursive: true, force: true }));

/** Runs the CLI with `input` on stdin; resolves with its output once it exits with status 0. */
function run(args: string[], input = ''): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve({ stdout, stderr }) : reject(new Error(`exit ${code}: ${stderr}`)),
    );
    child.stdin.end(input);
  });
}

describe(`fastattn generate and chat (seed ${seed})`, { timeout: 60_000 }, () => {
  const model = () => ['-m', dir, '-b', 'cpu', '-t', '1'];

  it('generate: the same seed gives the same text, within --max-tokens, with usage', async () => {
    const args = [
      'generate',
      ...model(),
      '-p',
      'hello world',
      '-n',
      '8',
      '--temperature',
      '1',
      '--seed',
      '5',
      '--json',
    ];
    const [a, b] = await Promise.all([run(args), run(args)]);
    const first = JSON.parse(a.stdout) as {
      text: string;
      usage: { promptTokens: number; completionTokens: number };
    };
    expect(JSON.parse(b.stdout)).toMatchObject({ text: first.text, usage: first.usage });
    expect(first.usage.completionTokens).toBeGreaterThan(0);
    expect(first.usage.completionTokens).toBeLessThanOrEqual(8);
  });

  it('generate: reads the prompt from stdin, streams the text, and reports its figures on stderr', async () => {
    const { stdout, stderr } = await run(
      ['generate', ...model(), '-n', '6', '--temperature', '0'],
      'hello world\n',
    );
    const json = await run([
      'generate',
      ...model(),
      '-p',
      'hello world',
      '-n',
      '6',
      '--temperature',
      '0',
      '--json',
    ]);
    expect(stdout.replace(/\n$/, '')).toBe((JSON.parse(json.stdout) as { text: string }).text);
    // a random tiny model may end at once with an EOS token (seed 1543536837): then 'no token'
    expect(stderr).toMatch(/\d+ prompt \+ \d+ generated tokens, (first token after \d+ ms|no token)/);
  });

  it('chat: answers each line with the conversation so far, and /reset forgets it', async () => {
    const { stderr } = await run(
      ['chat', ...model(), '-n', '4', '--temperature', '0'],
      'hello\nhello\n/reset\nhello\n/exit\n',
    );
    const prompts = [...stderr.matchAll(/\((\d+) prompt \+/g)].map((m) => Number(m[1]));
    expect(prompts).toHaveLength(3);
    expect(prompts[1]).toBeGreaterThan(prompts[0]!); // the second turn carries the first
    expect(prompts[2]).toBe(prompts[0]); // after /reset, a fresh conversation
    expect(stderr).toContain('(conversation forgotten)');
  });

  it('chat: a line the conversation cannot hold is refused with a message, and the chat goes on', async () => {
    const { stderr } = await run(
      ['chat', ...model(), '-n', '4', '--temperature', '0'],
      `${'x'.repeat(400)}\nhello\n/exit\n`,
    );
    expect(stderr).toMatch(/\(not sent: .*\/reset starts a new conversation\)/);
    expect([...stderr.matchAll(/\((\d+) prompt \+/g)]).toHaveLength(1); // "hello" was answered
  });

  it('model-demo: flash and standard attention on a synthetic Llama, at every context asked', async () => {
    const { stdout } = await run([
      'model-demo',
      '-b',
      'cpu',
      '-t',
      '1',
      '--contexts',
      '64,200',
      '--repeat',
      '1',
      '--json',
    ]);
    const report = JSON.parse(stdout) as {
      rows: { context: number; prefill: Record<string, number>; decode: Record<string, number> }[];
    };
    expect(report.rows.map((r) => r.context)).toEqual([64, 200]);
    for (const r of report.rows) {
      for (const rates of [r.prefill, r.decode]) {
        expect(rates.flash).toBeGreaterThan(0);
        expect(rates.standard).toBeGreaterThan(0);
      }
    }
  });

  it('bench: prefill and decode throughput over batches and contexts, with an SVG chart', async () => {
    const chart = join(root, 'bench.svg');
    const args = ['bench', ...model(), '--batches', '1,2', '--contexts', '16,32', '--decode-tokens', '4'];
    const { stdout, stderr } = await run([...args, '--json', '--chart', chart]);
    const report = JSON.parse(stdout) as {
      points: { batch: number; context: number; prefillTokensPerS: number; decodeTokensPerS: number }[];
    };
    expect(report.points.map((p) => [p.batch, p.context])).toEqual([
      [1, 16],
      [1, 32],
      [2, 16],
      [2, 32],
    ]);
    for (const p of report.points) {
      expect(p.prefillTokensPerS).toBeGreaterThan(0);
      expect(p.decodeTokensPerS).toBeGreaterThan(0);
    }
    expect(stderr).toContain(`chart written to ${chart}`);
    const svg = await readFile(chart, 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('decode');
    // a PNG when the file asks for one; another name is refused before any work
    const png = join(root, 'bench.png');
    await run([
      'bench',
      ...model(),
      '--batches',
      '1',
      '--contexts',
      '16',
      '--decode-tokens',
      '2',
      '--chart',
      png,
    ]);
    const bytes = await readFile(png);
    expect(bytes.subarray(1, 4).toString()).toBe('PNG');
    const refused = await run([...args, '--chart', join(root, 'bench.jpg')]).catch((e: Error) => e.message);
    expect(refused).toMatch(
      /chart: .*bench\.jpg': name an \.svg or a \.png file \[INVALID_INPUT, field chart\]/,
    );
  });
});
