import { describe, expect, it } from 'vitest';
import { OneAtATime } from './one-at-a-time.js';

describe('OneAtATime', () => {
  it('when tasks are run while one is in flight, then each starts only after the one before settled, failed ones included', async () => {
    const serial = new OneAtATime();
    const log: string[] = [];
    let release: () => void = () => {};
    const first = serial.run(async () => {
      log.push('first start');
      await new Promise<void>((r) => {
        release = r;
      });
      log.push('first end');
      throw new Error('refused');
    });
    const second = serial.run(async () => {
      log.push('second');
      return 2;
    });
    await new Promise((r) => setTimeout(r, 10));
    expect(log).toEqual(['first start']);
    release();
    await expect(first).rejects.toThrow('refused');
    expect(await second).toBe(2);
    expect(log).toEqual(['first start', 'first end', 'second']);
  });
});
