import { AppError } from '@flowloom/errors';

/** Waits `ms`, or rejects when the caller goes away. */
export function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new AppError('invalid_request', 'The caller went away while throttled.'));
      return;
    }
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(new AppError('invalid_request', 'The caller went away while throttled.'));
      },
      { once: true },
    );
  });
}
