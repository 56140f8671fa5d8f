import type { Database } from '../db/client.js'
import { SHARE_USER_MOVES } from '../db/locks.js'
import { queryOne, statement, type Sql } from '../db/sql.js'
import { toStoredTime } from '../db/timestamps.js'
import type { IfVersions } from '../http/conditional.js'
import { fittingCount } from '../http/page-size.js'
import { badRequest, notFound, notFoundAt, preconditionFailed, taskLimitReached, tooDeep, type Problem } from '../http/problem.js'
import { decodeCursor, encodeCursor, sortValue } from './cursor.js'
import { createOnce, pruneIdempotencyKeys, requestHash, type Answer } from './idempotency.js'
import type { CreateTaskBody, ListTasksQuery, Task, UpdateTaskBody } from './schemas.js'
import { completingSubtree, likePattern, parameters, SORT_SPECS, SUBTREE, TASK_COLUMNS, TASK_TEXT_BYTES } from './sql.js'

// The owner's id is in every WHERE clause below: ownership is enforced by the statement, never by
// comparing owners after a fetch, so another user's task and a missing one are the same nothing.
const FIND = statement(`select ${TASK_COLUMNS} from tasks t where t.user_id = $1 and t.id = $2`)
const EXISTS = statement('select 1 as found from tasks t where t.user_id = $1 and t.id = $2')
/**
 * Inserts unless the user already holds $8 tasks (users.task_count, kept by the triggers, migration
 * 0009). The count is read with the user's row locked: the insert's trigger updates that row anyway,
 * and a count read before the lock let concurrent creates pass the cap (60 at once stored up to 29
 * of 10 on PostgreSQL). Locked first, each create reads the count the previous one committed.
 */
const INSERT = statement(`insert into tasks as t (user_id, title, description, priority, due_at, tags, tag_keys)
  select $1, $2, $3, $4::task_priority, $5::timestamptz, $6::text[], $7::text[]
  where (select u.task_count from users u where u.id = $1 for no key update) < $8
  returning ${TASK_COLUMNS}`)
/**
 * Inserts in a project or under a parent, which must be the user's: the subtask takes its parent's
 * project and the next depth. No row: one of the conditions failed (see `whyNotCreated`). The parent
 * and the project are held (FOR KEY SHARE) before the user's row is locked (`owner` locks it only
 * once both are read): a delete of either, which holds its row and then wants the user's, waits or
 * went first, and never deadlocks with this.
 */
const INSERT_PLACED = statement(`with parent as (
    select t.project_id, t.depth from tasks t where t.user_id = $1 and t.id = $10::uuid for key share
  ), project as (
    select p.id from projects p where p.user_id = $1 and p.id = $9::uuid for key share
  ), owner as (
    select u.task_count from users u, (select count(*) from parent) held_parent, (select count(*) from project) held_project
    where u.id = $1 for no key update of u
  )
  insert into tasks as t (user_id, title, description, priority, due_at, tags, tag_keys, project_id, parent_id, depth)
  select $1, $2, $3, $4::task_priority, $5::timestamptz, $6::text[], $7::text[],
    case when $10::uuid is null then $9::uuid else parent.project_id end, $10::uuid, coalesce(parent.depth + 1, 0)
  from (select 1) as one left join parent on true
  where (select owner.task_count from owner) < $8
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

export interface TaskPage {
  items: Task[]
  nextCursor: string | null
}

/** Trimmed tags, first spelling kept when two differ only in case; and their lower-case keys. */
function normalizeTags (tags: string[]): { tags: string[], tagKeys: string[] } {
  const byKey = new Map<string, string>()
  for (const tag of tags.map((t) => t.trim())) {
    const key = tag.toLowerCase()
    if (!byKey.has(key)) byKey.set(key, tag)
  }
  return { tags: [...byKey.values()], tagKeys: [...byKey.keys()] }
}

function insertValues (userId: string, input: CreateTaskBody): unknown[] {
  const { tags, tagKeys } = normalizeTags(input.tags ?? [])
  return [userId, input.title.trim(), input.description ?? null, input.priority ?? 'none',
    input.dueAt ? toStoredTime(input.dueAt) : null, tags, tagKeys]
}

export interface TaskQueryOptions {
  /**
   * Runs after each write that committed, with its user: the change log is written by triggers in
   * the write itself, and this tells event streams to read it (events/feed.ts).
   */
  changed?: (userId: string) => void
  /** TASKS_PER_USER_MAX: a create past it is a 409. */
  maxTasksPerUser: number
}

/**
 * The task statements. A write that cannot be done throws the problem to answer (http/problem.ts):
 * a task that is not the user's is a 404, a stale If-Match a 412.
 */
export function taskQueries (db: Database, { changed = () => {}, maxTasksPerUser }: TaskQueryOptions) {
  /**
   * A conditional write changed nothing: the task is not the user's (404), or, when the write was
   * conditioned on `ifVersions`, it has moved on (412).
   */
  async function refused (userId: string, taskId: string, ifVersions: IfVersions): Promise<never> {
    if (ifVersions !== undefined && await queryOne(db, EXISTS, [userId, taskId])) throw preconditionFailed('task')
    throw notFound('task')
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

  /** `sql` is a transaction when the task has a parent (see `create` below). */
  const insert = async (sql: Sql, userId: string, input: CreateTaskBody): Promise<Task> => {
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
        ? insert(db, userId, input)
        : db.transaction((tx) => insert(tx, userId, input)))
      changed(userId)
      return task
    },

    /** Creates once per (user, key): see idempotency.ts. */
    async createIdempotent (userId: string, key: string, input: CreateTaskBody): Promise<Answer<Task>> {
      const answer = await placedGone(userId, input, () => db.transaction((tx) =>
        createOnce(tx, userId, key, requestHash(input), () => insert(tx, userId, input))))
      if (!answer.replayed) changed(userId)
      return answer
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
     * Changes the given fields; with `ifVersions` (from If-Match) only if the task is still at one of
     * them. Completing a task completes its open subtasks at every level, in the same statement.
     */
    async update (userId: string, taskId: string, changes: UpdateTaskBody, ifVersions?: IfVersions): Promise<Task> {
      // $1 and $2, as SUBTREE expects them.
      const { values, add } = parameters(userId, taskId)
      const where = ['t.user_id = $1', 't.id = $2']
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
      const task = await queryOne<Task>(db, statement(text), values) ?? await refused(userId, taskId, ifVersions)
      changed(userId)
      return task
    },

    /** Flips `completed` (and sets or clears `completedAt`) in one statement; completing completes the subtasks too. */
    async toggle (userId: string, taskId: string): Promise<Task> {
      const task = await queryOne<Task>(db, TOGGLE, [userId, taskId]) ?? await refused(userId, taskId, undefined)
      changed(userId)
      return task
    },

    /** Deletes the task and its subtasks; with `ifVersions`, only if the task is still at one of them. */
    async delete (userId: string, taskId: string, ifVersions?: IfVersions): Promise<void> {
      const deleted = ifVersions === undefined
        ? await queryOne(db, DELETE, [userId, taskId])
        : await queryOne(db, DELETE_IF_VERSION, [userId, taskId, ifVersions])
      if (!deleted) await refused(userId, taskId, ifVersions)
      changed(userId)
    },

    /** Run from a timer, never inside a request. */
    pruneIdempotencyKeys: (): Promise<number> => pruneIdempotencyKeys(db),
  }
}

export type TaskQueries = ReturnType<typeof taskQueries>
