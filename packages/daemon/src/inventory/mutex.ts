/**
 * Serialises the read-check-write sequences of the inventory (unique names, unique addresses, references), so
 * two concurrent requests cannot both pass a check that only one of them may pass. The store's compare-and-set
 * still guards each key against other daemons.
 */
export function createMutex(): <T>(work: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(work: () => Promise<T>) => {
    const result = tail.then(work, work);
    tail = result.catch(() => undefined);
    return result;
  };
}
