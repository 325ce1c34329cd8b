/**
 * Progress on stderr, so stdout stays a clean table or JSON. On a terminal one line is rewritten
 * in place; otherwise (CI logs, pipes) each step is its own line, so long work is never silent.
 */
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
