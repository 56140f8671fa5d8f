import type { Task } from '../db/schema.js'
import { badRequest } from '../http/problem.js'
import { SORTS, type Sort } from './schemas.js'

/** Where a page ended: the sort it was made for, the sort key of its last task, and that task's id. */
export interface Cursor {
  sort: Sort
  value: string | null
  id: string
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const PRIORITIES = new Set(['none', 'low', 'medium', 'high'])

/** Exactly what toISOString wrote: `2030-02-30...` or `1` parse in JavaScript but not in PostgreSQL. */
const isOurTimestamp = (value: string) => {
  const time = Date.parse(value)
  return !Number.isNaN(time) && new Date(time).toISOString() === value && !value.startsWith('0000')
}

/** The sort key of a task as the cursor holds it (the raw value; SQL applies lower/coalesce). */
export function sortValue (sort: Sort, task: Task): string | null {
  switch (sort.replace(/^-/, '')) {
    case 'createdAt': return task.createdAt.toISOString()
    case 'dueAt': return task.dueAt?.toISOString() ?? null
    case 'priority': return task.priority
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
  const valid = key === 'dueAt'
    ? value === null || isOurTimestamp(value)
    : key === 'priority'
      ? value !== null && PRIORITIES.has(value)
      : key === 'createdAt'
        ? value !== null && isOurTimestamp(value)
        : value !== null && value.length <= 500
  if (!valid) throw invalid('is not a cursor returned by this API')
  return { sort, value, id }
}
