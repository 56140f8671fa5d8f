import { storableTime } from '../db/timestamps.js'
import { badRequest } from '../http/problem.js'
import { SORTS, type Sort, type Task } from './schemas.js'

/** Where a page ended: the sort it was made for, the sort key of its last task, and that task's id. */
export interface Cursor {
  sort: Sort
  value: string | null
  id: string
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const PRIORITIES = new Set(['none', 'low', 'medium', 'high'])

/** Exactly a time as we store and send it: `2030-02-30...` or `1` parse in JavaScript but not in PostgreSQL. */
const isOurTimestamp = (value: string) => {
  const parsed = storableTime(value)
  return parsed.ok && parsed.iso === value
}

/** Whether `value` can be the sort key `key` of a task: anything else was not made by us. */
function validValue (key: string, value: string | null): boolean {
  switch (key) {
    case 'dueAt': return value === null || isOurTimestamp(value)
    case 'createdAt': return value !== null && isOurTimestamp(value)
    case 'priority': return value !== null && PRIORITIES.has(value)
    case 'position': return value !== null && /^[0-9A-Za-z]{1,2000}$/.test(value)
    // Titles are limited in characters (code points), not UTF-16 units: a 500-emoji title is 1,000 units.
    default: return value !== null && [...value].length <= 500
  }
}

/** The sort key of a task as the cursor holds it (the raw value; SQL applies lower/coalesce). */
export function sortValue (sort: Sort, task: Task): string | null {
  switch (sort.replace(/^-/, '')) {
    case 'createdAt': return task.createdAt
    case 'dueAt': return task.dueAt
    case 'priority': return task.priority
    case 'position': return task.position
    default: return task.title
  }
}

export function encodeCursor (cursor: Cursor): string {
  return Buffer.from(JSON.stringify([cursor.sort, cursor.value, cursor.id])).toString('base64url')
}

/** The cursor, or a 400 naming the parameter: cursors are opaque, so any other shape is forged or corrupt. */
export function decodeCursor (raw: string, sort: Sort): Cursor {
  const invalid = (message: string) => badRequest('The cursor is not valid', [{ path: 'query.cursor', message }])
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'))
  } catch {
    throw invalid('is not a cursor returned by this API')
  }
  if (!Array.isArray(parsed) || parsed.length !== 3) throw invalid('is not a cursor returned by this API')
  const [cursorSort, value, id] = parsed as unknown[]
  if (typeof cursorSort !== 'string' || !(SORTS as readonly string[]).includes(cursorSort) ||
      typeof id !== 'string' || !UUID.test(id) || !(value === null || typeof value === 'string')) {
    throw invalid('is not a cursor returned by this API')
  }
  if (cursorSort !== sort) throw invalid(`was made for sort=${cursorSort}; pass the same sort with it`)
  const key = sort.replace(/^-/, '')
  const valid = validValue(key, value)
  if (!valid) throw invalid('is not a cursor returned by this API')
  return { sort, value, id }
}
