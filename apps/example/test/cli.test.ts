import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

describe('fastattn CLI', () => {
  it('info lists the reference backend as usable and says why other packages are not', async () => {
    const { stdout } = await run(process.execPath, [cli, 'info', '--json']);
    const report = JSON.parse(stdout) as {
      backends: { name: string; usable: boolean; reason?: string }[];
      packages: { pkg: string; reason?: string }[];
    };
    expect(report.backends.find((b) => b.name === 'reference')).toMatchObject({ usable: true });
    for (const b of report.backends) if (!b.usable) expect(b.reason).toBeTruthy();
    for (const p of report.packages) expect(p.pkg).toMatch(/^@fastattention\//);
  });

  it('demo prints a table of times, speedups, memory and the error against standard attention', async () => {
    const { stdout } = await run(process.execPath, [
      cli,
      'demo',
      '--sizes',
      '32,48',
      '--heads',
      '2',
      '--repeat',
      '1',
    ]);
    expect(stdout).toMatch(/backend: /);
    const rows = stdout.split('\n').filter((l) => /^│\s+(32|48)\s+│/.test(l));
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      const cells = row
        .split('│')
        .map((c) => c.trim())
        .filter(Boolean);
      expect(Number(cells[1])).toBeGreaterThan(0);
      expect(cells[3]).toMatch(/x$/);
      expect(Number(cells[6])).toBeLessThan(1e-4); // the backend agrees with standard attention
    }
  });

  it('demo --json reports every size with its figures', async () => {
    const { stdout } = await run(process.execPath, [
      cli,
      'demo',
      '--json',
      '--sizes',
      '20',
      '--heads',
      '1',
      '--repeat',
      '1',
    ]);
    const report = JSON.parse(stdout) as {
      backend: string;
      rows: { seq: number; backendMs: number; relError: number }[];
    };
    expect(report.rows.map((r) => r.seq)).toEqual([20]);
    expect(report.rows[0]!.backendMs).toBeGreaterThan(0);
    expect(report.rows[0]!.relError).toBeLessThan(1e-4);
  });

  it('compares the cpu backend with its own native standard attention, like with like', async () => {
    const { stdout } = await run(process.execPath, [
      cli,
      'demo',
      '--json',
      '-b',
      'cpu',
      '--sizes',
      '96',
      '--heads',
      '2',
      '--repeat',
      '1',
    ]).catch((e: { stderr: string }) => ({ stdout: '', stderr: e.stderr }));
    if (!stdout) return console.warn('skipped: the cpu backend is unavailable here');
    const report = JSON.parse(stdout) as {
      backend: string;
      rows: { standardMs?: number; speedup?: number; standardRelError?: number }[];
    };
    expect(report.backend).toBe('cpu');
    expect(report.rows[0]!.standardMs).toBeGreaterThan(0);
    expect(report.rows[0]!.speedup).toBeGreaterThan(0);
    expect(report.rows[0]!.standardRelError).toBeLessThan(1e-4);
  });

  it('says why the cpu backend is unusable when the demo falls back past it', async () => {
    const { stdout } = await run(
      process.execPath,
      [cli, 'demo', '--sizes', '16', '--heads', '1', '--repeat', '1'],
      {
        env: { ...process.env, FASTATTN_CPU_DISABLE: '1' },
      },
    );
    expect(stdout).toMatch(/^note: backend 'cpu' is unusable: .*FASTATTN_CPU_DISABLE=1/m);
    expect(stdout).toMatch(/^backend: reference/m);
  });

  it('prints its version and rejects an unknown command by name', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    expect((await run(process.execPath, [cli, '--version'])).stdout.trim()).toBe(pkg.version);
    const failure = await run(process.execPath, [cli, 'demoo']).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect(failure).toMatchObject({ code: 1 });
    expect((failure as { stderr: string }).stderr).toMatch(/unknown command 'demoo'/);
    expect((failure as { stderr: string }).stderr).toMatch(/Did you mean demo\?/);
  });

  it.each([['1000000'], ['100000', '--heads', '1', '--head-dim', '8']])(
    'refuses --sizes %s up front with the estimate instead of running for minutes',
    async (...args) => {
      const t0 = Date.now();
      const failure = await run(process.execPath, [cli, 'demo', '--sizes', ...args]).catch(
        (e: { code: number; stderr: string }) => e,
      );
      expect(Date.now() - t0).toBeLessThan(20_000);
      expect(failure).toMatchObject({ code: 1 });
      expect((failure as { stderr: string }).stderr).toMatch(
        /refusing to start:[\s\S]*would take about[\s\S]*--force/,
      );
    },
  );

  it('reports progress line by line on stderr when it is not a terminal', async () => {
    const { stderr } = await run(process.execPath, [
      cli,
      'demo',
      '--sizes',
      '16,24',
      '--heads',
      '1',
      '--repeat',
      '1',
    ]);
    expect(stderr).toMatch(/\[1\/2\] seq 16: \S+ [\d.]+ ms/);
    expect(stderr).toMatch(/\[2\/2\] seq 24: \S+ [\d.]+ ms/);
  });

  it('picks a dtype the chosen backend runs (ascend-sim)', async () => {
    const { stdout } = await run(process.execPath, [
      cli,
      'demo',
      '--json',
      '-b',
      'ascend-sim',
      '--sizes',
      '16',
      '--heads',
      '1',
      '--repeat',
      '1',
    ]);
    const report = JSON.parse(stdout) as { options: { dtype: string }; rows: { relError: number }[] };
    const { stdout: info } = await run(process.execPath, [cli, 'info', '--json']);
    const ascend = (
      JSON.parse(info) as { backends: { name: string; info?: { capabilities: { dtypes: string[] } } }[] }
    ).backends.find((b) => b.name === 'ascend-sim');
    expect(ascend?.info?.capabilities.dtypes).toContain(report.options.dtype);
    // A simulator's rows show its simulated device time, marked as such, not the simulation's wall time.
    expect((report.rows[0] as { simulated?: boolean }).simulated).toBe(true);
    expect(report.rows[0]!.relError).toBeLessThan(1e-2);
  });

  it('loads a third-party backend package named on the command line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fastattn-plugin-'));
    const core = pathToFileURL(
      fileURLToPath(new URL('../node_modules/@fastattention/core/dist/index.js', import.meta.url)),
    ).href;
    const plugin = join(dir, 'plugin.mjs');
    writeFileSync(
      plugin,
      `import { createReferenceBackend } from ${JSON.stringify(core)};
export const pluginProvider = {
  name: 'plugin-test',
  priority: 1000,
  create: async () => ({ ...createReferenceBackend(), name: 'plugin-test' }),
};
`,
    );
    const { stdout } = await run(process.execPath, [
      cli,
      '--backend-package',
      plugin,
      'demo',
      '--json',
      '--sizes',
      '16',
      '--heads',
      '1',
      '--repeat',
      '1',
    ]);
    expect((JSON.parse(stdout) as { backend: string }).backend).toBe('plugin-test');
    const { stdout: info } = await run(process.execPath, [cli, 'info', '--json'], {
      env: { ...process.env, FASTATTN_BACKEND_PACKAGES: plugin },
    });
    expect((JSON.parse(info) as { backends: { name: string }[] }).backends.map((b) => b.name)).toContain(
      'plugin-test',
    );
  });

  it('rejects bad options with a message instead of a stack trace', async () => {
    const failure = await run(process.execPath, [cli, 'demo', '--sizes', '0']).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect(failure).toMatchObject({ code: 1 });
    expect((failure as { stderr: string }).stderr).toMatch(/positive integer/);
  });
});
