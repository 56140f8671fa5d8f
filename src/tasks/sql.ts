import { tasks } from '../db/schema.js'
import { fieldsOf, selectList, typedNulls } from '../db/rows.js'
import { TaskJson, type Sort } from './schemas.js'

/** The SQL pieces the task statements (queries.ts, tree.ts) and the change log (sync) share. */

/** A task's JSON, field by field, and its columns (see db/rows.ts). */
export const TASK_FIELDS = fieldsOf(tasks, TaskJson)

/**
 * Every column of a task, named as the API names it: a row is the task's JSON, with nothing to
 * convert. `t` is the table's alias in every statement that uses it.
 */
export const TASK_COLUMNS = selectList(TASK_FIELDS, 't')

/** The same columns, all null, after the id: what a project or a tombstone fills them with in a union. */
export const NO_TASK = typedNulls(TASK_FIELDS.filter((field) => field.name !== 'id'))

/** The tasks under $2 (not $2 itself), at every level, of user $1. */
export const SUBTREE = `with recursive subtree (id) as (
    select c.id from tasks c where c.user_id = $1 and c.parent_id = $2
    union all
    select c.id from tasks c join subtree s on c.parent_id = s.id where c.user_id = $1
  )`

/** Completing a task completes its open subtasks, at every level, in the same statement. */
export const completingSubtree = (target: string) => `, completed_subtree as (
    update tasks d set completed = true, completed_at = now(), version = d.version + 1, updated_at = now()
    where d.user_id = $1 and d.id in (select id from subtree) and not d.completed
      and exists (select 1 from ${target} where ${target}.completed)
    returning d.id
  )`

/** About the size of a task's JSON: its text in bytes, plus the fixed fields. A lower bound, never more. */
export const TASK_TEXT_BYTES = `(octet_length(t.title) + coalesce(octet_length(t.description), 0) +
  coalesce(octet_length(array_to_string(t.tags, '')), 0) + 200)`

export interface SortSpec {
  /** The indexed expression the list is ordered by; id breaks ties. */
  key: string
  /** The same expression over a cursor's value, the parameter `$n`. */
  keyOf: (param: string) => string
  descending: boolean
}

const createdKey = { key: 't.created_at', keyOf: (p: string) => `${p}::timestamptz` }
const priorityKey = { key: 't.priority', keyOf: (p: string) => `${p}::task_priority` }
const titleKey = { key: 'lower(t.title)', keyOf: (p: string) => `lower(${p}::text)` }
// Tasks with no due date come last in both directions, hence a different stand-in for null.
const dueKey = (end: 'infinity' | '-infinity') => ({
  key: `coalesce(t.due_at, '${end}'::timestamptz)`,
  keyOf: (p: string) => `coalesce(${p}::timestamptz, '${end}'::timestamptz)`,
})

export const SORT_SPECS: Record<Sort, SortSpec> = {
  createdAt: { ...createdKey, descending: false },
  '-createdAt': { ...createdKey, descending: true },
  dueAt: { ...dueKey('infinity'), descending: false },
  '-dueAt': { ...dueKey('-infinity'), descending: true },
  priority: { ...priorityKey, descending: false },
  '-priority': { ...priorityKey, descending: true },
  title: { ...titleKey, descending: false },
  '-title': { ...titleKey, descending: true },
  // Keys compare in byte order (the column is COLLATE "C"; the parameter takes the column's collation).
  position: { key: 't.position', keyOf: (p: string) => `${p}::text`, descending: false },
}

/** `%`, `_` and `\` in a search are literal characters, not LIKE wildcards. */
export const likePattern = (q: string) => `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`

/** Collects the values of a statement being built and names each `$n`. */
export function parameters (...first: unknown[]) {
  const values: unknown[] = [...first]
  return { values, add: (value: unknown) => `$${values.push(value)}` }
}
