// Promises about the repository itself: docs cite only files that exist, and what ships never
// depends on tools/ (tools use packages, not the other way round).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..', '..', '..');
const tracked = execFileSync('git', ['ls-files'], { cwd: root, encoding: 'utf8' })
  .split('\n')
  .filter(Boolean);
const text = (file: string): string => readFileSync(join(root, file), 'utf8');
const sources = tracked.filter(
  (f) => /\.(md|ts|mjs|js|cuh?|h|cpp|inc|sh|py|txt)$/.test(f) && !f.startsWith('.changeset/'),
);

describe('the repository', () => {
  it('cites no design document that lives outside it', () => {
    const offenders = sources.filter((f) => /\b(DESIGN|STYLE)\.md\b/.test(text(f)));
    expect(offenders).toEqual([]);
  });

  it('links only to files that exist, in every markdown document', () => {
    const missing: string[] = [];
    for (const file of tracked.filter((f) => f.endsWith('.md'))) {
      for (const [, target] of text(file).matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue; // http:, mailto:
        if (!existsSync(resolve(root, dirname(file), target!))) missing.push(`${file} -> ${target}`);
      }
      // Paths quoted in code spans: `packages/core/src/backend.ts`, `tools/bench`.
      for (const [, path] of text(file).matchAll(/`((?:packages|apps|tools|docs)\/[\w./-]+?)`/g)) {
        if (/[*<]/.test(path!) || /\/(dist|build|prebuilds)\//.test(path!)) continue; // globs, build outputs
        if (!existsSync(join(root, path!))) missing.push(`${file} -> ${path}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('ships no package that depends on tools/ (build, runtime or install time)', () => {
    const tools = tracked
      .filter((f) => f.startsWith('tools/') && f.endsWith('/package.json'))
      .map((f) => (JSON.parse(text(f)) as { name: string }).name);
    const shipped = tracked.filter((f) => /^(packages|apps)\/[^/]+\/package\.json$/.test(f));
    const offenders: string[] = [];
    for (const file of shipped) {
      const pkg = JSON.parse(text(file)) as Record<string, Record<string, string> | undefined>;
      for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies'] as const) {
        for (const name of Object.keys(pkg[field] ?? {}))
          if (tools.includes(name)) offenders.push(`${file}: ${field} ${name}`);
      }
    }
    const dir = (f: string) => f.split('/').slice(0, 2).join('/');
    for (const f of tracked.filter((f) =>
      /^(packages|apps)\/[^/]+\/(src|native|scripts|kernels)\//.test(f),
    )) {
      if (/@fastattention\/bench|\.\.\/\.\.\/tools\//.test(text(f)))
        offenders.push(`${f} (in ${dir(f)}) reaches into tools/`);
    }
    expect(offenders).toEqual([]);
  });
});
