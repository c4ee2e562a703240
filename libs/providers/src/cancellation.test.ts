import { describe, expect, it } from 'vitest';
import { LazyAbort, signalCancellation } from './cancellation.js';

describe('LazyAbort', () => {
  it('when aborted before its signal was read, then the signal made afterwards is aborted with the reason', () => {
    const abort = new LazyAbort();
    const reason = new Error('timed out');
    abort.abort(reason);
    expect(abort.aborted).toBe(true);
    expect(abort.signal.aborted).toBe(true);
    expect(abort.signal.reason).toBe(reason);
  });

  it('when aborted after its signal was read, then the signal aborts and listeners run once, with the first reason', () => {
    const abort = new LazyAbort();
    const signal = abort.signal;
    let calls = 0;
    abort.whenAborted(() => calls++);
    abort.abort(new Error('first'));
    abort.abort(new Error('second'));
    expect(signal.aborted).toBe(true);
    expect((abort.reason as Error).message).toBe('first');
    expect(calls).toBe(1);
  });

  it('when aborted without a reason, then the reason is an AbortError', () => {
    const abort = new LazyAbort();
    abort.abort();
    expect((abort.reason as DOMException).name).toBe('AbortError');
  });

  it('when a listener was stopped, then the abort does not call it; a late listener is called at once', () => {
    const abort = new LazyAbort();
    let stopped = 0;
    let late = 0;
    abort.whenAborted(() => stopped++)();
    abort.abort();
    abort.whenAborted(() => late++);
    expect(stopped).toBe(0);
    expect(late).toBe(1);
  });
});

describe('signalCancellation', () => {
  it('when the signal aborts, then the cancellation reports it and its listener runs; a stopped one does not', () => {
    const controller = new AbortController();
    const cancel = signalCancellation(controller.signal);
    let calls = 0;
    let stoppedCalls = 0;
    cancel.whenAborted(() => calls++);
    cancel.whenAborted(() => stoppedCalls++)();
    expect(cancel.aborted).toBe(false);
    controller.abort(new Error('gone'));
    expect(cancel.aborted).toBe(true);
    expect((cancel.reason as Error).message).toBe('gone');
    expect(calls).toBe(1);
    expect(stoppedCalls).toBe(0);
  });
});
