/**
 * A page of JSON is at most this big. A task can carry ~45 KB of text, so a page of 100 (the list)
 * or 1,000 (sync, the classic list) could otherwise be 4.5 to 45 MB, held in memory and sent at once.
 */
export const MAX_PAGE_BYTES = 4 * 1024 * 1024

/** Room left for what wraps the items: the page's other fields, a cursor of up to 4 KiB. */
const ENVELOPE_BYTES = 16 * 1024

/** The most a string can take in JSON: a UTF-16 unit is at most six bytes (`\u0001`). */
const jsonBound = (value: unknown): number => {
  if (typeof value === 'string') return 6 * value.length + 2
  if (Array.isArray(value)) return value.reduce((sum: number, v) => sum + jsonBound(v) + 1, 2)
  if (value !== null && typeof value === 'object') {
    // for...in, not Object.entries: a list page bounded 20 tasks with a pair array per field, and
    // that was 9% of all the memory the server allocated under load (heap sampling, issue 21).
    let sum = 2
    for (const key in value) sum += key.length + 4 + jsonBound((value as Record<string, unknown>)[key])
    return sum
  }
  return 24
}

/**
 * How many of `items`, from the first, fit in `maxBytes` of JSON; always at least one. Exact sizes
 * are computed only when a cheap upper bound says the page might not fit (a few pages in practice).
 */
export function fittingCount (items: readonly unknown[], maxBytes = MAX_PAGE_BYTES - ENVELOPE_BYTES): number {
  let bound = 0
  for (const item of items) bound += jsonBound(item) + 1
  if (bound <= maxBytes) return items.length
  let total = 0
  for (let i = 0; i < items.length; i++) {
    total += Buffer.byteLength(JSON.stringify(items[i])) + 1
    if (total > maxBytes && i > 0) return i
  }
  return items.length
}
