/**
 * Progress on stderr, so stdout stays a clean table or JSON. On a terminal, work measured in bytes
 * (a model load) is a bar (cli-progress) and other work one line rewritten in place; otherwise (CI
 * logs, pipes) each step is its own line, so long work is never silent and a log stays short.
 */
import cliProgress from 'cli-progress';
import { formatBytes } from './format.js';

export interface Progress {
  step(text: string): void;
  done(): void;
}

export function createProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  if (stream.isTTY) {
    let width = 0;
    return {
      step(text) {
        width = Math.max(width, text.length);
        stream.write(`\r${text.padEnd(width)}`);
      },
      done() {
        if (width > 0) stream.write(`\r${' '.repeat(width)}\r`);
      },
    };
  }
  return {
    step: (text) => stream.write(`${text}\n`),
    done: () => {},
  };
}

/** Progress through a known number of bytes. */
export interface ByteProgress {
  update(doneBytes: number, totalBytes: number): void;
  done(): void;
}

/**
 * `label`: what is being done, e.g. `loading llama-7b`. On a terminal a bar with bytes, rate and
 * time left, cleared when done; elsewhere a line every 5%.
 */
export function createByteProgress(label: string, stream: NodeJS.WriteStream = process.stderr): ByteProgress {
  const sizes = (done: number, total: number) => `${formatBytes(done)} of ${formatBytes(total)}`;
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream,
        format: `${label} [{bar}] {percentage}% | {sizes} | {speed} | {eta_formatted} left`,
        clearOnComplete: true,
        hideCursor: true,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    const t0 = performance.now();
    return {
      update(done, total) {
        const payload = {
          sizes: sizes(done, total),
          speed: `${formatBytes(done / Math.max((performance.now() - t0) / 1e3, 1e-3))}/s`,
        };
        if (!started) bar.start(Math.max(total, 1), done, payload);
        else bar.update(done, payload);
        started = true;
      },
      done: () => bar.stop(),
    };
  }
  let shown = -5;
  return {
    update(done, total) {
      const percent = total > 0 ? Math.floor((100 * done) / total) : 100;
      if (percent === shown || (percent < shown + 5 && percent < 100)) return;
      shown = percent;
      stream.write(`${label}: ${percent}% (${sizes(done, total)})\n`);
    },
    done: () => {},
  };
}
