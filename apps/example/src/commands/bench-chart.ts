/**
 * `fastattn bench`'s chart: prefill and decode throughput against the context, one line per batch
 * size, side by side; a Vega-Lite spec rendered to SVG by Vega in Node (no browser, no canvas).
 */
import * as vega from 'vega';
import { compile } from 'vega-lite';

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
