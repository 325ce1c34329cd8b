#!/usr/bin/env node
// The whole suite (lint, typecheck, every package's tests) through turbo, then one closing report:
// counts per package, and every failed task and test by name with the reason, so that a CI log
// ends with what broke rather than turbo's "run failed: command exited (1)".
// Arguments are passed on to `turbo run` (e.g. `--filter=@fastattention/core`).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;
const packageDirs = ['packages', 'apps', 'tools'].flatMap((group) => {
  const dir = join(root, group);
  return existsSync(dir)
    ? readdirSync(dir).map((name) => ({ label: `${group}/${name}`, dir: join(dir, name) }))
    : [];
});

// A report left by an earlier run must not stand in for this one (turbo restores cached ones).
for (const { dir } of packageDirs) rmSync(join(dir, 'test-results.json'), { force: true });

const runsDir = join(root, '.turbo', 'runs');
const before = new Set(existsSync(runsDir) ? readdirSync(runsDir) : []);
// Tasks run one at a time: the suite must pass every time on a 2-core CI machine, where concurrent
// vitest, tsc and compiler processes starve each other into timeouts, and the tests that promise
// an event loop free of stalls would measure the other tasks instead of the code under test.
const turbo = spawnSync(
  join(root, 'node_modules', '.bin', 'turbo'),
  [
    'run',
    'lint',
    'typecheck',
    'test',
    '--continue',
    '--summarize',
    '--concurrency=1',
    ...process.argv.slice(2),
  ],
  { cwd: root, stdio: 'inherit' },
);

const failedTasks = readFailedTasks();
const { lines, failures, passed, failed, skipped } = readTestReports();

console.log('\n── test suite ──────────────────────────────────────────────');
console.log(lines.join('\n'));
for (const f of failures) console.log(`\nFAILED ${f.where} > ${f.name}\n${indent(f.message)}`);
for (const task of failedTasks) console.log(`\nFAILED task ${task} (its output is above)`);
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped; ${failedTasks.length} failed task(s)`);
const ok = turbo.status === 0 && failed === 0 && failedTasks.length === 0 && passed > 0;
process.exitCode = ok ? 0 : 1;

function readFailedTasks() {
  if (!existsSync(runsDir)) return turbo.status === 0 ? [] : ['(turbo wrote no run summary)'];
  const fresh = readdirSync(runsDir).filter((f) => !before.has(f) && f.endsWith('.json'));
  if (fresh.length === 0) return turbo.status === 0 ? [] : ['(turbo wrote no run summary)'];
  const summary = JSON.parse(readFileSync(join(runsDir, fresh.sort().at(-1)), 'utf8'));
  return (summary.tasks ?? [])
    .filter((t) => t.execution && t.execution.exitCode !== 0 && t.execution.exitCode != null)
    .map((t) => `${t.taskId} (exit ${t.execution.exitCode})`);
}

function readTestReports() {
  const out = { lines: [], failures: [], passed: 0, failed: 0, skipped: 0 };
  for (const { label, dir } of packageDirs) {
    const file = join(dir, 'test-results.json');
    if (!existsSync(file)) continue;
    const r = JSON.parse(readFileSync(file, 'utf8'));
    out.passed += r.numPassedTests;
    out.failed += r.numFailedTests;
    out.skipped += r.numPendingTests + (r.numTodoTests ?? 0);
    const ms = Math.max(0, ...r.testResults.map((t) => t.endTime ?? 0)) - r.startTime;
    out.lines.push(
      `  ${label.padEnd(24)} ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped  (${(ms / 1000).toFixed(1)} s)`,
    );
    for (const file of r.testResults) {
      const where = `${label}/${file.name.slice(dir.length + 1)}`;
      for (const a of file.assertionResults) {
        if (a.status === 'failed')
          out.failures.push({ where, name: a.fullName, message: firstLines(a.failureMessages) });
      }
      // A file that failed to load (syntax error, missing import) has no assertions.
      if (file.status === 'failed' && file.assertionResults.length === 0) {
        out.failures.push({ where, name: '(file)', message: firstLines([file.message]) });
        out.failed += 1;
      }
    }
  }
  return out;
}

function firstLines(messages) {
  return (messages ?? [])
    .join('\n')
    .split('\n')
    .filter((line) => !line.includes('/node_modules/'))
    .slice(0, 8)
    .join('\n');
}

function indent(text) {
  return text
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}
