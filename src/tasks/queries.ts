import type { Database } from '../db/client.js'
import { SHARE_USER_MOVES } from '../db/locks.js'
import { queryOne, statement, type Sql } from '../db/sql.js'
import { toStoredTime } from '../db/timestamps.js'
import { fittingCount } from '../http/page-size.js'
import { badRequest, notFoundAt, taskLimitReached, tooDeep, type Problem } from '../http/problem.js'
import { decodeCursor, encodeCursor, sortValue } from './cursor.js'
import type { CreateTaskBody, ListTasksQuery, Sort, Task, UpdateTaskBody } from './schemas.js'

/**
 * Every column of a task, named as the API names it: a row is the task's JSON, with nothing to
 * convert. `t` is the table's alias in the statements below.
 */
export const TASK_COLUMNS = 't.id, t.title, t.description, t.completed, t.completed_at as "completedAt", t.priority, ' +
  't.due_at as "dueAt", t.tags, t.created_at as "createdAt", t.updated_at as "updatedAt", t.version, ' +
  't.project_id as "projectId", t.parent_id as "parentId", t.position'

/** The tasks under $2 (not $2 itself), at every level, of user $1. */
export const SUBTREE = `with recursive subtree (id) as (
    select c.id from tasks c where c.user_id = $1 and c.parent_id = $2
    union all
    select c.id from tasks c join subtree s on c.parent_id = s.id where c.user_id = $1
  )`

/** Completing a task completes its open subtasks, at every level, in the same statement. */
const completingSubtree = (target: string) => `, completed_subtree as (
    update tasks d set completed = true, completed_at = now(), version = d.version + 1, updated_at = now()
    where d.user_id = $1 and d.id in (select id from subtree) and not d.completed
      and exists (select 1 from ${target} where ${target}.completed)
    returning d.id
  )`

/** About the size of a task's JSON: its text in bytes, plus the fixed fields. A lower bound, never more. */
export const TASK_TEXT_BYTES = `(octet_length(t.title) + coalesce(octet_length(t.description), 0) +
  coalesce(octet_length(array_to_string(t.tags, '')), 0) + 200)`

// The owner's id is in every WHERE clause below: ownership is enforced by the statement, never by
// comparing owners after a fetch, so another user's task and a missing one are the same nothing.
const FIND = statement(`select ${TASK_COLUMNS} from tasks t where t.user_id = $1 and t.id = $2`)
const EXISTS = statement('select 1 as found from tasks t where t.user_id = $1 and t.id = $2')
/** Inserts unless the user already holds $8 tasks (task_count is kept by the triggers, migration 0009). */
const INSERT = statement(`insert into tasks as t (user_id, title, description, priority, due_at, tags, tag_keys)
  select $1, $2, $3, $4::task_priority, $5::timestamptz, $6::text[], $7::text[]
  where (select u.task_count from users u where u.id = $1) < $8
  returning ${TASK_COLUMNS}`)
/**
 * Inserts in a project or under a parent, which must be the user's: the subtask takes its parent's
 * project and the next depth. No row: one of the conditions failed (see `whyNotCreated`). The
 * parent and the project are held (FOR KEY SHARE) before the insert takes the user's row: a delete
 * of either waits, or went first and leaves nothing to find, and the two never wait on each other.
 */
const INSERT_PLACED = statement(`with parent as (
    select t.project_id, t.depth from tasks t where t.user_id = $1 and t.id = $10::uuid for key share
  ), project as (
    select p.id from projects p where p.user_id = $1 and p.id = $9::uuid for key share
  )
  insert into tasks as t (user_id, title, description, priority, due_at, tags, tag_keys, project_id, parent_id, depth)
  select $1, $2, $3, $4::task_priority, $5::timestamptz, $6::text[], $7::text[],
    case when $10::uuid is null then $9::uuid else parent.project_id end, $10::uuid, coalesce(parent.depth + 1, 0)
  from (select 1) as one left join parent on true
  where (select u.task_count from users u where u.id = $1) < $8
    and ($10::uuid is null or parent.depth is not null)
    and ($9::uuid is null or exists (select 1 from project))
    and ($10::uuid is null or not $11::boolean or parent.project_id is not distinct from $9::uuid)
    and coalesce(parent.depth, -1) < 3
  returning ${TASK_COLUMNS}`)
/** What a refused INSERT_PLACED had to go on, to say which condition failed. */
const CREATION_CHECKS = statement(`select (select u.task_count from users u where u.id = $1) as "taskCount",
  exists (select 1 from projects p where p.user_id = $1 and p.id = $2::uuid) as "projectFound",
  exists (select 1 from tasks c where c.user_id = $1 and c.id = $3::uuid) as "parentFound",
  (select c.project_id from tasks c where c.user_id = $1 and c.id = $3::uuid) as "parentProject",
  (select c.depth from tasks c where c.user_id = $1 and c.id = $3::uuid) as "parentDepth"`)
const FOREIGN_KEY_VIOLATION = '23503'
const TOGGLE = statement(`${SUBTREE}, target as (
    update tasks t set completed = not t.completed,
    completed_at = case when t.completed then null else now() end, version = t.version + 1, updated_at = now()
    where t.user_id = $1 and t.id = $2 returning ${TASK_COLUMNS}
  )${completingSubtree('target')}
  select * from target`)
const DELETE = statement('delete from tasks t where t.user_id = $1 and t.id = $2 returning t.id')
const DELETE_IF_VERSION = statement('delete from tasks t where t.user_id = $1 and t.id = $2 and t.version = any($3::int[]) returning t.id')

const CLAIM_IDEMPOTENCY_KEY = statement(`insert into idempotency_keys as k (user_id, key, request_hash, response_status, response_body)
  values ($1, $2, $3, 0, '{}') on conflict (user_id, key) do update
  set request_hash = excluded.request_hash, response_status = 0, response_body = '{}', created_at = now()
  where k.created_at < now() - interval '24 hours' returning k.key`)
const FIND_IDEMPOTENCY_KEY = statement(`select request_hash as "requestHash", response_status as "responseStatus",
  response_body as "responseBody" from idempotency_keys where user_id = $1 and key = $2`)
const STORE_IDEMPOTENT_ANSWER = statement('update idempotency_keys set response_status = $3, response_body = $4 where user_id = $1 and key = $2')
const PRUNE_IDEMPOTENCY_KEYS = statement(`with pruned as (delete from idempotency_keys where created_at < now() - interval '24 hours' returning 1)
  select count(*)::int as count from pruned`)

interface SortSpec {
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

const SORT_SPECS: Record<Sort, SortSpec> = {
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
const likePattern = (q: string) => `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`

/** Trimmed tags, first spelling kept when two differ only in case; and their lower-case keys. */
function normalizeTags (tags: string[]): { tags: string[], tagKeys: string[] } {
  const byKey = new Map<string, string>()
  for (const tag of tags.map((t) => t.trim())) {
    const key = tag.toLowerCase()
    if (!byKey.has(key)) byKey.set(key, tag)
  }
  return { tags: [...byKey.values()], tagKeys: [...byKey.keys()] }
}

/** Collects the values of a statement being built and names each `$n`. */
function parameters () {
  const values: unknown[] = []
  return { values, add: (value: unknown) => `$${values.push(value)}` }
}

export interface TaskPage {
  items: Task[]
  nextCursor: string | null
}

/**
 * Which versions a write is conditioned on (from If-Match): undefined for none; an empty list
 * matches nothing (a header naming only tags we never issue).
 */
export type IfVersions = number[] | undefined

/** What a write conditioned on `If-Match` found: the task, a stale version, or no task of the user's. */
export type ConditionalResult<T> = { status: 'ok', value: T } | { status: 'stale' } | { status: 'missing' }

export type IdempotentCreate =
  | { status: 'created' | 'replayed', responseStatus: number, body: Task }
  | { status: 'conflict' }

function insertValues (userId: string, input: CreateTaskBody): unknown[] {
  const { tags, tagKeys } = normalizeTags(input.tags ?? [])
  return [userId, input.title.trim(), input.description ?? null, input.priority ?? 'none',
    input.dueAt ? toStoredTime(input.dueAt) : null, tags, tagKeys]
}

/**
 * The task statements. `changed(userId)` runs after each write that committed: the change log is
 * written by triggers in the write itself, and this tells event streams to read it (feed.ts).
 */
export interface TaskQueryOptions {
  /** Runs after each write that committed, with its user (see feed.ts). */
  changed?: (userId: string) => void
  /** Creates past this many tasks of one user are refused (concurrent creates may pass it by a few). */
  maxTasksPerUser?: number
}

export function taskQueries (db: Database, { changed = () => {}, maxTasksPerUser = 100_000 }: TaskQueryOptions = {}) {

  /** Tells a stale `If-Match` (412) from a task that is not the user's (404). */
  async function staleOrMissing (userId: string, taskId: string): Promise<{ status: 'stale' } | { status: 'missing' }> {
    const found = await queryOne(db, EXISTS, [userId, taskId])
    return found ? { status: 'stale' } : { status: 'missing' }
  }

  /** Why INSERT_PLACED inserted nothing, as the problem to answer. */
  async function whyNotCreated (sql: Sql, userId: string, { projectId, parentId }: CreateTaskBody): Promise<Problem> {
    const found = (await queryOne<{ taskCount: number, projectFound: boolean, parentFound: boolean, parentProject: string | null, parentDepth: number | null }>(
      sql, CREATION_CHECKS, [userId, projectId ?? null, parentId ?? null]))!
    if (found.taskCount >= maxTasksPerUser) return taskLimitReached(maxTasksPerUser)
    if (parentId !== undefined && !found.parentFound) return notFoundAt('parent task', 'body.parentId')
    if (projectId != null && !found.projectFound) return notFoundAt('project', 'body.projectId')
    if (parentId !== undefined && projectId !== undefined && projectId !== found.parentProject) {
      return badRequest('A subtask lives in its parent\'s project: leave projectId out, or give the parent\'s',
        [{ path: 'body.projectId', message: 'is not the project of the parent task' }])
    }
    return tooDeep()
  }

  /** `sql` is a transaction when the task has a parent (see `placedCreate`). */
  const create = async (sql: Sql, userId: string, input: CreateTaskBody): Promise<Task> => {
    const placed = input.projectId != null || input.parentId !== undefined
    if (input.parentId !== undefined) await sql.query(SHARE_USER_MOVES, [userId])
    const task = placed
      ? await queryOne<Task>(sql, INSERT_PLACED, [...insertValues(userId, input), maxTasksPerUser,
        input.projectId ?? null, input.parentId ?? null, input.projectId !== undefined])
      : await queryOne<Task>(sql, INSERT, [...insertValues(userId, input), maxTasksPerUser])
    if (!task) throw placed ? await whyNotCreated(sql, userId, input) : taskLimitReached(maxTasksPerUser)
    return task
  }

  /**
   * A project or a parent deleted between the insert's read and its write fails the foreign key:
   * that is the 404 the read would have given a moment later.
   */
  async function placedGone<T> (userId: string, input: CreateTaskBody, creating: () => Promise<T>): Promise<T> {
    try {
      return await creating()
    } catch (error) {
      if ((error as { code?: unknown }).code !== FOREIGN_KEY_VIOLATION) throw error
      throw await whyNotCreated(db, userId, input)
    }
  }

  return {
    async create (userId: string, input: CreateTaskBody): Promise<Task> {
      // A subtask's creation waits for a move in progress, which could change its parent's project or depth.
      const task = await placedGone(userId, input, () => input.parentId === undefined
        ? create(db, userId, input)
        : db.transaction((tx) => create(tx, userId, input)))
      changed(userId)
      return task
    },

    /**
     * Creates once per (user, key): a retry with the same body gets the first answer back, the
     * same key with another body is a conflict. Racing requests with one key serialize on the key's
     * primary key: the second waits for the first to commit, then replays its answer.
     */
    async createIdempotent (userId: string, key: string, requestHash: string, input: CreateTaskBody): Promise<IdempotentCreate> {
      const result = await placedGone(userId, input, () => db.transaction(async (tx): Promise<IdempotentCreate> => {
        // A key older than 24 hours is taken over as if it were new.
        const claimed = await queryOne(tx, CLAIM_IDEMPOTENCY_KEY, [userId, key, requestHash])
        if (!claimed) {
          const first = await queryOne<{ requestHash: string, responseStatus: number, responseBody: Task }>(tx, FIND_IDEMPOTENCY_KEY, [userId, key])
          if (!first || first.requestHash !== requestHash) return { status: 'conflict' } as const
          return { status: 'replayed', responseStatus: first.responseStatus, body: first.responseBody } as const
        }
        const body = await create(tx, userId, input)
        await tx.query(STORE_IDEMPOTENT_ANSWER, [userId, key, 201, JSON.stringify(body)])
        return { status: 'created', responseStatus: 201, body } as const
      }))
      if (result.status === 'created') changed(userId)
      return result
    },

    find: (userId: string, taskId: string): Promise<Task | undefined> => queryOne<Task>(db, FIND, [userId, taskId]),

    /**
     * A page of the user's tasks. It ends early when the next task would take its JSON past
     * MAX_PAGE_BYTES (`nextCursor` goes on from there). `readBytes` also bounds, in the database, how
     * much text is read, for a long list read without a cursor (the classic one, up to 1,000 tasks):
     * its `nextCursor` is then not to be relied on.
     */
    async list (userId: string, query: ListTasksQuery, { readBytes }: { readBytes?: number } = {}): Promise<TaskPage> {
      const sort = query.sort ?? '-createdAt'
      const limit = query.limit ?? 20
      const spec = SORT_SPECS[sort]
      const { values, add } = parameters()
      const conditions = [`t.user_id = ${add(userId)}`]
      if (query.completed !== undefined) conditions.push(`t.completed = ${add(query.completed)}`)
      if (query.priority !== undefined) conditions.push(`t.priority = ${add(query.priority)}::task_priority`)
      if (query.tag?.length) {
        const keys = [...new Set(query.tag.map((t) => t.trim().toLowerCase()))]
        conditions.push(`t.tag_keys @> ${add(keys)}::text[]`)
      }
      if (query.q !== undefined) {
        // Each side is served by its own trigram index (a BitmapOr); a match never spans the two.
        const pattern = add(likePattern(query.q))
        conditions.push(`(t.title ilike ${pattern} or t.description ilike ${pattern})`)
      }
      if (query.dueBefore !== undefined) conditions.push(`t.due_at < ${add(toStoredTime(query.dueBefore))}::timestamptz`)
      if (query.dueAfter !== undefined) conditions.push(`t.due_at > ${add(toStoredTime(query.dueAfter))}::timestamptz`)
      if (query.projectId !== undefined) {
        conditions.push(query.projectId === 'inbox' ? 't.project_id is null' : `t.project_id = ${add(query.projectId)}::uuid`)
      }
      if (query.parentId !== undefined) {
        conditions.push(query.parentId === 'none' ? 't.parent_id is null' : `t.parent_id = ${add(query.parentId)}::uuid`)
      }
      if (query.cursor !== undefined) {
        const cursor = decodeCursor(query.cursor, sort)
        conditions.push(`(${spec.key}, t.id) ${spec.descending ? '<' : '>'} (${spec.keyOf(add(cursor.value))}, ${add(cursor.id)}::uuid)`)
      }
      const direction = spec.descending ? 'desc' : 'asc'
      const order = `${spec.key} ${direction}, t.id ${direction}`
      const where = conditions.join(' and ')
      const take = add(limit + 1)
      // The running sum streams with the index scan: the database stops at the limit, as without it.
      const text = readBytes === undefined
        ? `select ${TASK_COLUMNS} from tasks t where ${where} order by ${order} limit ${take}`
        : `select * from (select ${TASK_COLUMNS}, sum(${TASK_TEXT_BYTES}) over w - ${TASK_TEXT_BYTES} as "bytesBefore",
            row_number() over w as "rank" from tasks t where ${where}
            window w as (order by ${order} rows unbounded preceding) order by ${order} limit ${take}) page
          where page."bytesBefore" < ${add(readBytes)} order by page.rank`
      const rows = await db.query<Task>(statement(text), values)
      const items = rows.slice(0, Math.min(limit, fittingCount(rows)))
      const last = items.at(-1)
      const nextCursor = rows.length > items.length && last
        ? encodeCursor({ sort, value: sortValue(sort, last), id: last.id })
        : null
      return { items, nextCursor }
    },

    /**
     * `ifVersions` (from If-Match) makes the write conditional: any other version is 'stale'.
     * Completing a task completes its open subtasks at every level, in the same statement.
     */
    async update (userId: string, taskId: string, changes: UpdateTaskBody, ifVersions?: IfVersions): Promise<ConditionalResult<Task>> {
      const { values, add } = parameters()
      // $1 and $2, as SUBTREE expects them.
      const where = [`t.user_id = ${add(userId)}`, `t.id = ${add(taskId)}`]
      const set: string[] = []
      if (changes.title !== undefined) set.push(`title = ${add(changes.title.trim())}`)
      if (changes.description !== undefined) set.push(`description = ${add(changes.description)}`)
      if (changes.priority !== undefined) set.push(`priority = ${add(changes.priority)}::task_priority`)
      if (changes.dueAt !== undefined) set.push(`due_at = ${add(changes.dueAt === null ? null : toStoredTime(changes.dueAt))}::timestamptz`)
      if (changes.tags !== undefined) {
        const { tags, tagKeys } = normalizeTags(changes.tags)
        set.push(`tags = ${add(tags)}::text[]`, `tag_keys = ${add(tagKeys)}::text[]`)
      }
      if (changes.completed !== undefined) {
        // Completing a completed task keeps the time it was first completed.
        set.push(changes.completed
          ? 'completed = true, completed_at = coalesce(t.completed_at, now())'
          : 'completed = false, completed_at = null')
      }
      if (ifVersions !== undefined) where.push(`t.version = any(${add(ifVersions)}::int[])`)
      // The version is bumped inside the UPDATE, not read-then-write: of two PATCHes with one
      // If-Match, the second re-checks the version after the first commits, and fails.
      const update = `update tasks t set ${set.join(', ')}, version = t.version + 1, updated_at = now() ` +
        `where ${where.join(' and ')} returning ${TASK_COLUMNS}`
      const text = changes.completed === true
        ? `${SUBTREE}, target as (${update})${completingSubtree('target')} select * from target`
        : update
      const task = await queryOne<Task>(db, statement(text), values)
      if (!task) return staleOrMissing(userId, taskId)
      changed(userId)
      return { status: 'ok', value: task }
    },

    /** Flips `completed` (and sets or clears `completedAt`) in one statement; completing completes the subtasks too. */
    async toggle (userId: string, taskId: string): Promise<Task | undefined> {
      const task = await queryOne<Task>(db, TOGGLE, [userId, taskId])
      if (task) changed(userId)
      return task
    },

    async delete (userId: string, taskId: string, ifVersions?: IfVersions): Promise<ConditionalResult<true>> {
      const deleted = ifVersions === undefined
        ? await queryOne(db, DELETE, [userId, taskId])
        : await queryOne(db, DELETE_IF_VERSION, [userId, taskId, ifVersions])
      if (!deleted) return staleOrMissing(userId, taskId)
      changed(userId)
      return { status: 'ok', value: true }
    },

    /** Drops idempotency keys past their 24 hours. Run from a timer, never inside a request. */
    async pruneIdempotencyKeys (): Promise<number> {
      return (await queryOne<{ count: number }>(db, PRUNE_IDEMPOTENCY_KEYS))?.count ?? 0
    },
  }
}

export type TaskQueries = ReturnType<typeof taskQueries>
