/**
 * What can cancel a call, as far as the call needs to know: whether it was, why, and a way to be told.
 * An AbortSignal is one (see `signalCancellation`); `LazyAbort` is one that makes its AbortSignal only
 * when some code asks for it. On Node 20 an AbortSignal and each listener on it cost microseconds of
 * the thread that serves every request, and most requests are never cancelled.
 */
export interface Cancellation {
  readonly aborted: boolean;
  readonly reason: unknown;
  /** Calls `listener` once, when cancelled (at once if already); returns what stops that. */
  whenAborted(listener: () => void): () => void;
}

/** An AbortSignal seen as a Cancellation. */
export function signalCancellation(signal: AbortSignal): Cancellation {
  return {
    get aborted() {
      return signal.aborted;
    },
    get reason(): unknown {
      return signal.reason;
    },
    whenAborted(listener) {
      if (signal.aborted) {
        listener();
        return () => {};
      }
      signal.addEventListener('abort', listener, { once: true });
      return () => signal.removeEventListener('abort', listener);
    },
  };
}

/** An abort controller whose AbortSignal is made on first use; listeners go in a plain list. */
export class LazyAbort implements Cancellation {
  private controller: AbortController | undefined;
  private listeners: Array<() => void> | undefined;
  private abortedWith: { reason: unknown } | undefined;

  get aborted(): boolean {
    return this.abortedWith !== undefined;
  }

  get reason(): unknown {
    return this.abortedWith?.reason;
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.abortedWith) this.controller.abort(this.abortedWith.reason);
    }
    return this.controller.signal;
  }

  /** As AbortController.abort: the first call counts; without a reason, an AbortError. */
  abort(reason: unknown = new DOMException('This operation was aborted', 'AbortError')): void {
    if (this.abortedWith) return;
    this.abortedWith = { reason };
    this.controller?.abort(reason);
    const listeners = this.listeners;
    this.listeners = undefined;
    for (const listener of listeners ?? []) listener();
  }

  whenAborted(listener: () => void): () => void {
    if (this.abortedWith) {
      listener();
      return () => {};
    }
    this.listeners ??= [];
    this.listeners.push(listener);
    return () => {
      const at = this.listeners?.indexOf(listener) ?? -1;
      if (at >= 0) this.listeners!.splice(at, 1);
    };
  }
}
