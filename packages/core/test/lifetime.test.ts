import { describe, expect, it } from 'vitest';
import { FastAttentionError, Lifetime } from '../src/index.js';

const later = <T>(value: T, ms = 5): Promise<T> =>
  new Promise((resolve) => setTimeout(() => resolve(value), ms));
const code = async (p: Promise<unknown>): Promise<string | undefined> =>
  p.then(
    () => undefined,
    (e: unknown) => (e instanceof FastAttentionError ? e.code : String(e)),
  );

describe('Lifetime', () => {
  it('refuses new work from the moment dispose() is called, while it waits for work in flight', async () => {
    const order: string[] = [];
    const life = new Lifetime('the thing', () => order.push('release'));
    const first = life.run(async () => {
      await later(0, 10);
      order.push('first done');
      return 1;
    });
    const disposal = life.dispose();
    expect(life.disposed).toBe(true);
    expect(await code(life.run(async () => 2))).toBe('DISPOSED');
    expect(() => life.check()).toThrow(/the thing was disposed/);
    expect(await first).toBe(1);
    await disposal;
    expect(order).toEqual(['first done', 'release']);
    expect(life.dispose()).toBe(disposal); // memoised
  });

  it('waits for work that admitted work starts while disposing (track), and for its failures quietly', async () => {
    const order: string[] = [];
    const life = new Lifetime('the thing', () => order.push('release'));
    const call = life.run(async () => {
      await later(0, 5);
      // A follow-up step of an admitted call: tracked although dispose() has been called.
      return life.track(async () => {
        await later(0, 10);
        order.push('follow-up');
        throw new Error('the step failed');
      });
    });
    const disposal = life.dispose();
    expect(await code(call)).toBe('Error: the step failed');
    await disposal;
    expect(order).toEqual(['follow-up', 'release']);
    expect(life.pending).toBe(0);
  });

  it('disposes adopted children newest first, before its own release; forget() lets one go', async () => {
    const order: string[] = [];
    const life = new Lifetime('the parent', () => order.push('parent'));
    const child = (name: string) => ({ dispose: async () => void order.push(name) });
    life.adopt(child('a'));
    const b = life.adopt(child('b'));
    life.adopt({ dispose: () => order.push('c') });
    life.forget(b);
    await life.dispose();
    expect(order).toEqual(['c', 'a', 'parent']);
    expect(() => life.adopt(child('d'))).toThrow(/DISPOSED|disposed/);
  });

  it('cancel runs first, so that long work ends instead of being waited for', async () => {
    const order: string[] = [];
    let stop: (e: Error) => void = () => {};
    const life = new Lifetime('the simulator', () => order.push('release'), {
      cancel: () => {
        order.push('cancel');
        stop(new Error('cancelled'));
      },
    });
    const call = life.run(() => new Promise((_, reject) => (stop = reject)));
    await life.dispose();
    expect(await code(call)).toBe('Error: cancelled');
    expect(order).toEqual(['cancel', 'release']);
  });

  it('turns a synchronous throw of the work into a rejection', async () => {
    const life = new Lifetime('the thing');
    const p = life.run(() => {
      throw new Error('sync');
    });
    expect(await code(p)).toBe('Error: sync');
    expect(life.pending).toBe(0);
  });

  it('supports await using', async () => {
    let released = false;
    {
      await using life = new Lifetime('scoped', () => {
        released = true;
      });
      await life.run(async () => 1);
    }
    expect(released).toBe(true);
  });
});
