import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
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

  it('rejects bad options with a message instead of a stack trace', async () => {
    const failure = await run(process.execPath, [cli, 'demo', '--sizes', '0']).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect(failure).toMatchObject({ code: 1 });
    expect((failure as { stderr: string }).stderr).toMatch(/positive integer/);
  });
});
