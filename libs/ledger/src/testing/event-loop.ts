/**
 * Counts the turns of the event loop that other work gets until `stop()`: tests use it to show
 * that a long task (a large append) lets requests in between rather than holding the thread.
 */
export function countTurns(): { readonly turns: number; stop(): void } {
  let turns = 0;
  let spinning = true;
  const spin = (): void => {
    if (!spinning) return;
    turns++;
    setImmediate(spin);
  };
  setImmediate(spin);
  return {
    get turns() {
      return turns;
    },
    stop() {
      spinning = false;
    },
  };
}
