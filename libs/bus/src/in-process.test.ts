import { createEvent } from '@flowloom/contracts';
import { describe, expect, it } from 'vitest';
import { InProcessBus } from './in-process.js';

describe('InProcessBus', () => {
  it('when events are published, then each group receives the matching types in order', async () => {
    const bus = new InProcessBus();
    const seen: string[] = [];
    const audit: string[] = [];
    await bus.subscribe('metrics', async (e) => void seen.push(e.id), ['dev.flowloom.gateway.']);
    await bus.subscribe('audit', async (e) => void audit.push(e.type));
    const a = createEvent('dev.flowloom.gateway.request.completed.v1', 'gateway', {});
    const b = createEvent('dev.flowloom.policy.version.pushed.v1', 'policy', {});
    const c = createEvent('dev.flowloom.gateway.request.failed.v1', 'gateway', {});
    await bus.publish([a, b, c]);
    expect(seen).toEqual([a.id, c.id]);
    expect(audit).toEqual([a.type, b.type, c.type]);
  });

  it('when a handler fails, then publish rejects and later events are still delivered', async () => {
    const bus = new InProcessBus();
    const got: string[] = [];
    let failNext = true;
    await bus.subscribe('audit', async (e) => {
      if (failNext) {
        failNext = false;
        throw new Error('disk full');
      }
      got.push(e.id);
    });
    await expect(bus.publish([createEvent('dev.flowloom.x.y.v1', 'gateway', {})])).rejects.toThrow(
      'disk full',
    );
    const e = createEvent('dev.flowloom.x.y.v1', 'gateway', {});
    await bus.publish([e]);
    expect(got).toEqual([e.id]);
  });
});
