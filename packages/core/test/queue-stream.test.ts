// QueueStream: work runs in enqueue order, enqueue returns at once, and a failure is sticky: it
// rejects the work after it until synchronize() reports it.
import { describe, expect, it } from 'vitest';
import { QueueStream } from '../src/index.js';

const tick = () => new Promise((r) => setTimeout(r, 1));

describe('QueueStream', () => {
  it('runs work in order, after the work before it, and returns at once', async () => {
    const s = new QueueStream('s');
    const order: number[] = [];
    const slow = s.enqueue(async () => {
      await tick();
      order.push(1);
    });
    const fast = s.enqueue(() => order.push(2));
    expect(order).toEqual([]);
    await s.synchronize();
    expect(order).toEqual([1, 2]);
    await expect(slow).resolves.toBeUndefined();
    await expect(fast).resolves.toBe(2);
  });

  it('keeps a failure until synchronize reports it: later work rejects with it, then runs again', async () => {
    const s = new QueueStream();
    const boom = new Error('boom');
    const ran: string[] = [];
    const failed = s.enqueue(() => {
      throw boom;
    });
    const after = s.enqueue(() => ran.push('after'));
    const event = s.record();
    await expect(failed).rejects.toBe(boom);
    await expect(after).rejects.toBe(boom);
    await expect(event.synchronize()).rejects.toBe(boom);
    expect(ran).toEqual([]);
    await expect(s.synchronize()).rejects.toBe(boom);
    await expect(s.synchronize()).resolves.toBeUndefined();
    await expect(s.enqueue(() => 'ran')).resolves.toBe('ran');
  });

  it('an event completes with the work before it; wait() orders another stream after it', async () => {
    const a = new QueueStream('a');
    const b = new QueueStream('b');
    const order: string[] = [];
    a.enqueue(async () => {
      await tick();
      await tick();
      order.push('a');
    });
    b.wait(a.record());
    b.enqueue(() => order.push('b'));
    await b.synchronize();
    expect(order).toEqual(['a', 'b']);
  });
});
