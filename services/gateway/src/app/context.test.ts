import { describe, expect, it } from 'vitest';
import type { KeyRecord } from '../domain/keys.js';
import { callerGone, onCallerGone, type RequestContext } from './context.js';

function signalContext(controller: AbortController): RequestContext {
  return {
    requestId: 'r1',
    api: 'grpc',
    key: { id: 'k1' } as KeyRecord,
    tags: {},
    signal: controller.signal,
    startedAt: 0,
  };
}

describe('caller gone, through the signal (contexts without whenGone)', () => {
  it('when the signal aborts, then the caller is gone and the listener runs once', () => {
    const controller = new AbortController();
    const ctx = signalContext(controller);
    let calls = 0;
    onCallerGone(ctx, () => calls++);
    expect(callerGone(ctx)).toBe(false);
    controller.abort(new Error('client cancelled'));
    controller.abort(new Error('again'));
    expect(callerGone(ctx)).toBe(true);
    expect(calls).toBe(1);
  });

  it('when the listener was stopped, then an abort no longer calls it', () => {
    const controller = new AbortController();
    const ctx = signalContext(controller);
    let calls = 0;
    const stop = onCallerGone(ctx, () => calls++);
    stop();
    controller.abort();
    expect(calls).toBe(0);
  });
});

describe('caller gone, through whenGone', () => {
  it('when the context offers whenGone and gone, then they are used and its signal is never read', () => {
    let listener: (() => void) | undefined;
    const ctx: RequestContext = {
      ...signalContext(new AbortController()),
      get signal(): AbortSignal {
        throw new Error('signal read');
      },
      gone: true,
      whenGone: (l) => {
        listener = l;
        return () => {};
      },
    };
    let calls = 0;
    expect(callerGone(ctx)).toBe(true);
    onCallerGone(ctx, () => calls++);
    listener?.();
    expect(calls).toBe(1);
  });
});
