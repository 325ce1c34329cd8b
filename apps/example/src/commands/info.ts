import { type BackendInfo, probeBackends } from '@fastattention/core';
import Table from 'cli-table3';
import { discoverBackends } from '../backends.js';
import { formatBytes, tableStyle } from '../format.js';

/** 16/32/.../256 reads better as '16..256 step 16'. */
function compactList(values: readonly number[]): string {
  const step = (values[1] ?? 0) - (values[0] ?? 0);
  const arithmetic = values.length > 3 && step > 0 && values.every((v, i) => v === values[0]! + i * step);
  return arithmetic ? `${values[0]}..${values.at(-1)} step ${step}` : values.join('/');
}

function describeCapabilities(info: BackendInfo): string {
  const { dtypes, headDims, masks } = info.capabilities;
  const dims =
    headDims.kind === 'list'
      ? compactList(headDims.values)
      : `any${headDims.max ? ` <= ${headDims.max}` : ''}`;
  return `dtypes ${dtypes.join(', ')}\nhead dims ${dims}\nmasks ${masks.join(', ')}`;
}

function describeDevices(info: BackendInfo): string {
  return info.devices
    .map((d) => {
      const extra = [
        d.computeUnits ? `${d.computeUnits} units` : '',
        d.memoryBytes ? formatBytes(d.memoryBytes) : '',
        ...Object.entries(d.details ?? {}).map(([k, v]) => `${k}: ${v}`),
      ].filter(Boolean);
      return [`${d.name} (${d.kind})`, ...extra.map((e) => `  ${e}`)].join('\n');
    })
    .join('\n');
}

/** `fastattn info`: every backend found, its devices and capabilities, or why it cannot be used. */
export async function infoCommand(options: { json?: boolean; backendPackage?: string[] }): Promise<void> {
  const discovered = await discoverBackends(options.backendPackage ?? []);
  const probed = await probeBackends();
  if (options.json) {
    console.log(
      JSON.stringify(
        { packages: discovered.map(({ pkg, reason }) => ({ pkg, reason })), backends: probed },
        null,
        2,
      ),
    );
    return;
  }
  const table = new Table({
    head: ['backend', 'priority', 'status', 'devices', 'capabilities / reason'],
    style: tableStyle(),
  });
  for (const result of probed) {
    table.push(
      result.usable
        ? [
            result.name,
            result.priority,
            'usable',
            describeDevices(result.info),
            describeCapabilities(result.info),
          ]
        : [result.name, result.priority, 'unusable', '-', result.reason],
    );
  }
  for (const { pkg, reason } of discovered) {
    if (reason) table.push([pkg, '-', 'not loaded', '-', reason]);
  }
  console.log(table.toString());
}
