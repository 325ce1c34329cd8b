/**
 * `fastattn bench`'s chart: prefill and decode throughput against the context, one line per batch
 * size, side by side; a Vega-Lite spec rendered to SVG by Vega in Node (no browser, no canvas),
 * and from SVG to PNG by resvg.
 */
import { extname } from 'node:path';
import { invalidInput } from '@fastattention/core';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile } from 'vega-lite';

export type ChartFormat = 'svg' | 'png';

/** The chart format a file name asks for (.svg or .png); anything else is INVALID_INPUT naming `chart`. */
export function chartFormat(file: string): ChartFormat {
  const ext = extname(file).toLowerCase();
  if (ext === '.svg' || ext === '.png') return ext.slice(1) as ChartFormat;
  throw invalidInput('chart', `'${file}': name an .svg or a .png file`);
}

/** The chart as the file's bytes: SVG text, or a PNG at twice the SVG's size. */
export async function benchChart(points: readonly BenchPoint[], title: string, format: ChartFormat) {
  const svg = await benchChartSvg(points, title);
  if (format === 'svg') return svg;
  const png = new Resvg(svg, { background: 'white', fitTo: { mode: 'zoom', value: 2 } }).render().asPng();
  return png;
}

export interface BenchPoint {
  readonly batch: number;
  readonly context: number;
  readonly prefillTokensPerS: number;
  readonly decodeTokensPerS: number;
}

export async function benchChartSvg(points: readonly BenchPoint[], title: string): Promise<string> {
  const panel = (field: keyof BenchPoint, label: string) => ({
    title: label,
    width: 360,
    height: 240,
    mark: { type: 'line' as const, point: true },
    encoding: {
      x: {
        field: 'context',
        type: 'quantitative' as const,
        scale: { type: 'log' as const, base: 2 },
        title: 'context (tokens)',
      },
      y: { field, type: 'quantitative' as const, title: 'tokens/s' },
      color: { field: 'batch', type: 'ordinal' as const, title: 'batch' },
    },
  });
  const { spec } = compile({
    title,
    data: { values: points.map((p) => ({ ...p })) },
    hconcat: [panel('prefillTokensPerS', 'prefill'), panel('decodeTokensPerS', 'decode')],
  });
  const view = new vega.View(vega.parse(spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
