// The model-load progress: a bar on a terminal, a line every 5% elsewhere (CI logs, pipes).
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createByteProgress } from '../src/progress.js';

/** A stream that collects what is written, posing as a terminal or not. */
function sink(isTTY: boolean): { stream: NodeJS.WriteStream; text: () => string } {
  const stream = new PassThrough() as unknown as NodeJS.WriteStream & PassThrough;
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString()));
  Object.assign(stream, {
    isTTY,
    columns: 120,
    cursorTo: () => true,
    clearLine: () => true,
    moveCursor: () => true,
  });
  return { stream, text: () => text };
}

describe('createByteProgress', () => {
  it('writes a line every 5% when the stream is not a terminal, and the last one at 100%', () => {
    const { stream, text } = sink(false);
    const progress = createByteProgress('loading tiny', stream);
    const total = 3 * 1024 * 1024;
    for (let done = 0; done <= total; done += 4096) progress.update(done, total);
    progress.update(total, total);
    progress.done();
    const lines = text().trim().split('\n');
    expect(lines[0]).toBe('loading tiny: 0% (0 B of 3.0 MiB)');
    expect(lines.at(-1)).toBe('loading tiny: 100% (3.0 MiB of 3.0 MiB)');
    expect(lines.length).toBe(21); // 0, 5, ..., 100: not one per update
  });

  it('draws a bar with the bytes on a terminal', () => {
    const { stream, text } = sink(true);
    const progress = createByteProgress('loading tiny', stream);
    progress.update(512 * 1024, 2 * 1024 * 1024);
    progress.update(2 * 1024 * 1024, 2 * 1024 * 1024);
    progress.done();
    expect(text()).toMatch(/loading tiny \[[█░]+\] 25% \| 512 KiB of 2\.0 MiB/);
    expect(text()).toMatch(/100% \| 2\.0 MiB of 2\.0 MiB/);
  });
});
