// Summarizes kernel-profile.sh's CSV: GPU time per kernel name (calls, total and mean microseconds,
// busiest first) over the rows FROM..TO (launch order), and with --list the launches themselves.
//   node packages/runtime/bench/kernel-table.mjs OUT.csv [--from N] [--to N] [--list]
import { readFileSync } from 'node:fs';

const [file] = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
// ncu quotes every field, so a row splits on the quotes (kernel names hold commas).
const rows = readFileSync(file, 'utf8')
  .split('\n')
  .filter((line) => line.startsWith('"'))
  .map((line) => line.slice(1, -1).split('","'));
const head = rows.shift();
const col = (name) => head.indexOf(name);
const [id, name, grid, block, value] = ['ID', 'Kernel Name', 'Grid Size', 'Block Size', 'Metric Value'].map(
  col,
);
const from = flag('--from', 0);
const to = flag('--to', Number.POSITIVE_INFINITY);
const launches = rows
  .map((r) => ({
    id: Number(r[id]),
    name: r[name],
    grid: r[grid],
    block: r[block],
    us: Number(r[value].replaceAll(',', '')) / 1e3,
  }))
  .filter((l) => l.id >= from && l.id <= to);
const short = (n) => n.replace(/\(.*$/, '').slice(0, 90);
if (process.argv.includes('--list')) {
  for (const l of launches)
    console.log(`${l.id}\t${l.us.toFixed(2)}\t${l.grid}\t${l.block}\t${short(l.name)}`);
}
const byName = new Map();
for (const l of launches) {
  const k = short(l.name);
  const e = byName.get(k) ?? { calls: 0, us: 0 };
  e.calls++;
  e.us += l.us;
  byName.set(k, e);
}
const total = launches.reduce((s, l) => s + l.us, 0);
console.log(`${launches.length} launches, ${total.toFixed(1)} us`);
for (const [k, e] of [...byName].sort((a, b) => b[1].us - a[1].us)) {
  console.log(
    `${e.us.toFixed(1).padStart(10)} us ${String(e.calls).padStart(5)} x ${(e.us / e.calls).toFixed(2).padStart(8)}  ${k}`,
  );
}
