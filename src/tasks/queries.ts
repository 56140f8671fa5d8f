import type { Database } from '../db/client.js'
import { SHARE_USER_MOVES } from '../db/locks.js'
import { queryOne, statement, type Sql } from '../db/sql.js'
import { toStoredTime } from '../db/timestamps.js'
import type { IfVersions } from '../http/conditional.js'
import { fittingCount } from '../http/page-size.js'
import { badRequest, notFound, notFoundAt, preconditionFailed, taskLimitReached, tooDeep, type Problem } from '../http/problem.js'
import { ruleOf } from '../recurrence/rule.js'
import { nextFiring, remindersOf } from '../reminders/plan.js'
import { localTime, upcoming, type Recurrence } from '../recurrence/schedule.js'
import type { CompletionsQuery } from '../recurrence/schemas.js'
import { decodeCursor, encodeCursor, sortValue } from './cursor.js'
import { createBatcher, type NewTask } from './create-batch.js'
import { createOnce, pruneIdempotencyKeys, requestHash, type Answer } from './idempotency.js'
import type { CreateTaskBody, ListTasksQuery, Task, UpdateTaskBody } from './schemas.js'
import { checkStart, decodeHistoryCursor, dueAtRequired, encodeHistoryCursor, planWrite, recurrenceOf, type LockedTask, type WriteOptions } from './series.js'
import { completingSubtree, likePattern, parameters, SORT_SPECS, SUBTREE, TASK_COLUMNS, TASK_TEXT_BYTES } from './sql.js'

// The owner's id is in every WHERE clause below: ownership is enforced by the statement, never by
// comparing owners after a fetch, so another user's task and a missing one are the same nothing.
const FIND = statement(`select ${TASK_COLUMNS} from tasks t where t.user_id = $1 and t.id = $2`)
const EXISTS = statement('select 1 as found from tasks t where t.user_id = $1 and t.id = $2')
/**
 * Inserts unless the user already holds $11 tasks (users.task_count, migration 0009). The owner's row
 * is updated first, in the CTE: its WHERE checks the cap on the row locked, so concurrent creates
 * take turns and each sees the count the previous one committed (checked before the lock, 60 at once
 * stored up to 29 of 10 on PostgreSQL). The same UPDATE takes the task's seq, which the stamp trigger
 * then leaves alone (migration 0020), and leaves the transaction's settings as taskbase_next_seq
 * would: the owner's last seq, clean, and `taskbase.hooked` on when the owner has a webhook endpoint.
 */
export const INSERT = statement(`with owner as (
    update users u set change_seq = u.change_seq + 1, task_count = u.task_count + 1
    where u.id = $1 and u.task_count < $11
    returning u.change_seq,
      set_config('taskbase.changes', concat_ws(',', u.id, u.change_seq, 0, 'clean'), true) as changes,
      case when u.webhooks_enabled then set_config('taskbase.hooked', 'on', true) end as hooked
  )
  insert into tasks as t (user_id, title, description, priority, due_at, tags, tag_keys, recurrence, due_local, reminders, seq, position)
  select $1, $2, $3, $4::task_priority, $5::timestamptz, $6::text[], $7::text[], $8::jsonb, $9::timestamp, $10::jsonb,
    owner.change_seq, taskbase_last_key(owner.change_seq)
  from owner
  returning ${TASK_COLUMNS}`)
/**
 * Inserts in a project or under a parent, which must be the user's: the subtask takes its parent's
 * project and the next depth. No row: one of the conditions failed (see `whyNotCreated`). The parent
 * and the project are held (FOR KEY SHARE) before the user's row is locked (`owner` locks it only
 * once both are read): a delete of either, which holds its row and then wants the user's, waits or
 * went first, and never deadlocks with this.
 */
const INSERT_PLACED = statement(`with parent as (
    select t.project_id, t.depth from tasks t where t.user_id = $1 and t.id = $13::uuid for key share
  ), project as (
    select p.id from projects p where p.user_id = $1 and p.id = $12::uuid for key share
  ), owner as (
    select u.task_count from users u, (select count(*) from parent) held_parent, (select count(*) from project) held_project
    where u.id = $1 for no key update of u
  )
  insert into tasks as t (user_id, title, description, priority, due_at, tags, tag_keys, recurrence, due_local, reminders, project_id, parent_id, depth)
  select $1, $2, $3, $4::task_priority, $5::timestamptz, $6::text[], $7::text[], $8::jsonb, $9::timestamp, $10::jsonb,
    case when $13::uuid is null then $12::uuid else parent.project_id end, $13::uuid, coalesce(parent.depth + 1, 0)
  from (select 1) as one left join parent on true
  where (select owner.task_count from owner) < $11
    and ($13::uuid is null or parent.depth is not null)
    and ($12::uuid is null or exists (select 1 from project))
    and ($13::uuid is null or not $14::boolean or parent.project_id is not distinct from $12::uuid)
    and coalesce(parent.depth, -1) < 3
  returning ${TASK_COLUMNS}`)
/** What a refused INSERT_PLACED had to go on, to say which condition failed. */
const CREATION_CHECKS = statement(`select (select u.task_count from users u where u.id = $1) as "taskCount",
  exists (select 1 from projects p where p.user_id = $1 and p.id = $2::uuid) as "projectFound",
  exists (select 1 from tasks c where c.user_id = $1 and c.id = $3::uuid) as "parentFound",
  (select c.project_id from tasks c where c.user_id = $1 and c.id = $3::uuid) as "parentProject",
  (select c.depth from tasks c where c.user_id = $1 and c.id = $3::uuid) as "parentDepth"`)
const FOREIGN_KEY_VIOLATION = '23503'
/** Declines an open recurring task, whose completion is an occurrence's (see `writeLocked`). */
const TOGGLE = statement(`${SUBTREE}, target as (
    update tasks t set completed = not t.completed,
    completed_at = case when t.completed then null else now() end, version = t.version + 1, updated_at = now()
    where t.user_id = $1 and t.id = $2 and (t.recurrence is null or t.completed) returning ${TASK_COLUMNS}
  )${completingSubtree('target')}
  select * from target`)
/** The task, locked for a write decided in code (series.ts), with where its series stands and its owner's zone. */
const LOCK_FOR_WRITE = statement(`select ${TASK_COLUMNS}, to_char(t.due_local, 'YYYY-MM-DD"T"HH24:MI:SS.MS') as "dueLocal",
  t.occurrence_index as "occurrenceIndex", u.timezone as "userTimezone"
  from tasks t join users u on u.id = t.user_id where t.user_id = $1 and t.id = $2 for update of t`)
const FIND_SERIES = statement(`select ${TASK_COLUMNS}, to_char(t.due_local, 'YYYY-MM-DD"T"HH24:MI:SS.MS') as "dueLocal",
  t.occurrence_index as "occurrenceIndex" from tasks t where t.user_id = $1 and t.id = $2`)
const USER_TIMEZONE = statement('select u.timezone from users u where u.id = $1')
/**
 * The state series.ts planned, on the locked row, in one statement: $3 completed (completing keeps
 * the first completion's time), $4-$7 the due date and where the series stands; the descendants
 * reopened ($8 = 'reopen') or completed ($8 = 'complete'); the occurrence $9 recorded, if any.
 */
const WRITE_PLAN = (sets: string[]) => statement(`${SUBTREE}, reopened as (
    update tasks d set completed = false, completed_at = null, version = d.version + 1, updated_at = now()
    where $8::text = 'reopen' and d.user_id = $1 and d.id in (select id from subtree) and d.completed returning d.id
  ), closed as (
    update tasks d set completed = true, completed_at = now(), version = d.version + 1, updated_at = now()
    where $8::text = 'complete' and d.user_id = $1 and d.id in (select id from subtree) and not d.completed returning d.id
  ), recorded as (
    -- The moment it is recorded, not the transaction's start (now()): a completion that waited for
    -- the row behind another began before it, and would seem the older one.
    insert into task_completions (task_id, occurrence, completed_at)
    select $2, $9::timestamptz, clock_timestamp() where $9::timestamptz is not null returning id
  )
  update tasks t set due_at = $4::timestamptz,
    completed = $3::boolean, completed_at = case when $3::boolean then coalesce(t.completed_at, now()) else null end,
    recurrence = $5::jsonb, due_local = $6::timestamp, occurrence_index = $7${sets.map((set) => `, ${set}`).join('')},
    version = t.version + 1, updated_at = now() where t.user_id = $1 and t.id = $2 returning ${TASK_COLUMNS}`)
/**
 * A page of a task's history, newest first, below the cursor's id $3 (ids follow the order a task's
 * completions were made: each held the task's row); one row of nulls when the task has none, and
 * no row when the task is not the user's.
 */
const HISTORY = statement(`select c.occurrence, c."completedAt", c.id from tasks t left join lateral (
    select c.occurrence, c.completed_at as "completedAt", c.id from task_completions c
    where c.task_id = t.id and c.id < $3 order by c.id desc limit $4
  ) c on true where t.user_id = $1 and t.id = $2`)
const DELETE = statement('delete from tasks t where t.user_id = $1 and t.id = $2 returning t.id')
const DELETE_IF_VERSION = statement('delete from tasks t where t.user_id = $1 and t.id = $2 and t.version = any($3::int[]) returning t.id')

export interface TaskPage {
  items: Task[]
  nextCursor: string | null
}

export interface CompletionPage {
  items: Array<{ occurrence: string, completedAt: string }>
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

/** A new task's series, in stored form, and its first occurrence's wall-clock time; both null without one. */
interface NewSeries { recurrence: Recurrence | null, dueLocal: string | null }

/** A new task's stored values, checked: the reminders may be refused (a 400). */
function newTask (userId: string, input: CreateTaskBody, series: NewSeries): NewTask {
  const { tags, tagKeys } = normalizeTags(input.tags ?? [])
  const dueAt = input.dueAt ? toStoredTime(input.dueAt) : null
  return {
    userId, title: input.title.trim(), description: input.description ?? null, priority: input.priority ?? 'none', dueAt, tags, tagKeys,
    recurrence: series.recurrence, dueLocal: series.dueLocal, reminders: remindersOf(input.reminders ?? [], [], dueAt),
  }
}

/** $1-$10 of INSERT and INSERT_PLACED. */
function insertValues (task: NewTask): unknown[] {
  return [task.userId, task.title, task.description, task.priority, task.dueAt, task.tags, task.tagKeys,
    task.recurrence === null ? null : JSON.stringify(task.recurrence), task.dueLocal, JSON.stringify(task.reminders)]
}

/** The SET clauses of the fields a write changes as given (title, description, priority, tags). */
function fieldSets (changes: UpdateTaskBody, add: (value: unknown) => string): string[] {
  const set: string[] = []
  if (changes.title !== undefined) set.push(`title = ${add(changes.title.trim())}`)
  if (changes.description !== undefined) set.push(`description = ${add(changes.description)}`)
  if (changes.priority !== undefined) set.push(`priority = ${add(changes.priority)}::task_priority`)
  if (changes.tags !== undefined) {
    const { tags, tagKeys } = normalizeTags(changes.tags)
    set.push(`tags = ${add(tags)}::text[]`, `tag_keys = ${add(tagKeys)}::text[]`)
  }
  return set
}

export interface TaskQueryOptions {
  /**
   * Runs after each write that committed, with its user: the change log is written by triggers in
   * the write itself, and this tells event streams to read it (events/feed.ts).
   */
  changed?: (userId: string) => void
  /** TASKS_PER_USER_MAX: a create past it is a 409. */
  maxTasksPerUser: number
  /**
   * Runs after a write that committed, with the first time (ms since the epoch) a reminder of the
   * task is now due: the scheduler wakes for it (jobs/scheduler.ts). The trigger scheduled it.
   */
  reminderDue?: (at: number) => void
  /** How long a plain create may wait for a batch (create-batch.ts); the tests shorten it. */
  createWaitMs?: number
}

/**
 * The task statements. A write that cannot be done throws the problem to answer (http/problem.ts):
 * a task that is not the user's is a 404, a stale If-Match a 412.
 */
export function taskQueries (db: Database, { changed: logGrew = () => {}, maxTasksPerUser, reminderDue = () => {}, createWaitMs }: TaskQueryOptions) {
  /** After a write that committed: its user's log grew, and a reminder of the task may be due sooner. */
  const changed = (userId: string, task?: Task) => {
    logGrew(userId)
    if (task === undefined || task.completed || task.reminders.length === 0) return
    const next = nextFiring(task.reminders, task.dueAt)
    if (next !== undefined) reminderDue(next)
  }

  /** The single INSERT: the task, or undefined when its user is at the cap. */
  const insertOne = (sql: Sql, task: NewTask) => queryOne<Task>(sql, INSERT, [...insertValues(task), maxTasksPerUser])
  const together = createBatcher(db, maxTasksPerUser, (task) => insertOne(db, task), createWaitMs)

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

  /**
   * `sql` is a transaction when the task has a parent or an Idempotency-Key (see `create` below); a
   * plain create on the database goes with the others under way (create-batch.ts).
   */
  const insert = async (sql: Sql, userId: string, input: CreateTaskBody): Promise<Task> => {
    const placed = input.projectId != null || input.parentId !== undefined
    const task = newTask(userId, input, await newSeries(sql, userId, input))
    if (input.parentId !== undefined) await sql.query(SHARE_USER_MOVES, [userId])
    const created = placed
      ? await queryOne<Task>(sql, INSERT_PLACED, [...insertValues(task), maxTasksPerUser,
        input.projectId ?? null, input.parentId ?? null, input.projectId !== undefined])
      : sql === db ? await together.insert(task) : await insertOne(sql, task)
    if (!created) throw placed ? await whyNotCreated(sql, userId, input) : taskLimitReached(maxTasksPerUser)
    return created
  }

  /**
   * A new task's series, checked: it needs a dueAt, and a rule that can start there. The user's zone
   * is read only when the body names none.
   */
  async function newSeries (sql: Sql, userId: string, input: CreateTaskBody): Promise<NewSeries> {
    if (input.recurrence == null) return { recurrence: null, dueLocal: null }
    if (!input.dueAt) throw dueAtRequired(false)
    const timezone = input.recurrence.timezone ?? (await queryOne<{ timezone: string }>(sql, USER_TIMEZONE, [userId]))?.timezone ?? 'UTC'
    const recurrence = recurrenceOf({ ...input.recurrence, timezone }, timezone)
    const dueAt = toStoredTime(input.dueAt)
    checkStart(recurrence, dueAt)
    return { recurrence, dueLocal: localTime(dueAt, recurrence.timezone) }
  }

  /**
   * The write a single statement cannot make: an occurrence of a recurring task completed (or
   * skipped), a series set, a recurring task's dueAt changed. One transaction: the row is locked,
   * series.ts decides its new state, and the state, the history and the subtasks are written
   * together (the triggers log each row written, as for any write). Every completion of a recurring
   * task comes here, whichever route it came by; a task that does not repeat gets what the single
   * statement would have done. Throws the refusal (404, 412, 400, 409); a refused write changes nothing.
   */
  function writeLocked (userId: string, taskId: string, changes: UpdateTaskBody, ifVersions: IfVersions,
    options: Omit<WriteOptions, 'now'> = {}): Promise<Task> {
    return db.transaction(async (tx) => {
      const locked = await queryOne<LockedTask>(tx, LOCK_FOR_WRITE, [userId, taskId])
      if (!locked) throw notFound('task')
      if (ifVersions !== undefined && !ifVersions.includes(locked.version)) throw preconditionFailed('task')
      const plan = planWrite(locked, changes, { ...options, now: new Date() })
      const { values, add } = parameters(userId, taskId, plan.completed, plan.dueAt,
        plan.recurrence === null ? null : JSON.stringify(plan.recurrence), plan.dueLocal, plan.occurrenceIndex,
        plan.subtasks ?? null, plan.completes ?? null)
      const sets = fieldSets(changes, add)
      if (changes.reminders !== undefined) {
        sets.push(`reminders = ${add(JSON.stringify(remindersOf(changes.reminders, locked.reminders, plan.dueAt)))}::jsonb`)
      }
      return (await queryOne<Task>(tx, WRITE_PLAN(sets), values))!
    })
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

  /**
   * A PATCH (or a classic PUT, `replacing`) as one statement, which declines any write that may
   * concern a series when the task repeats (`t.recurrence is null`); those, and every change of
   * `recurrence`, go through `writeLocked`. A plain task's completion stays one statement.
   */
  async function write (userId: string, taskId: string, changes: UpdateTaskBody, ifVersions: IfVersions, replacing: boolean): Promise<Task> {
    // New reminders are checked against the task's current ones (the ids kept) and its dueAt.
    if (changes.recurrence !== undefined || changes.reminders !== undefined) return writeLocked(userId, taskId, changes, ifVersions, { replacing })
    const mayConcernSeries = replacing || changes.completed === true || changes.dueAt !== undefined
    // $1 and $2, as SUBTREE expects them.
    const { values, add } = parameters(userId, taskId)
    const where = ['t.user_id = $1', 't.id = $2']
    const set = fieldSets(changes, add)
    if (changes.dueAt !== undefined) set.push(`due_at = ${add(changes.dueAt === null ? null : toStoredTime(changes.dueAt))}::timestamptz`)
    else if (replacing) set.push('due_at = null')
    if (changes.completed !== undefined) {
      // Completing a completed task keeps the time it was first completed.
      set.push(changes.completed
        ? 'completed = true, completed_at = coalesce(t.completed_at, now())'
        : 'completed = false, completed_at = null')
    }
    if (mayConcernSeries) where.push('t.recurrence is null')
    if (ifVersions !== undefined) where.push(`t.version = any(${add(ifVersions)}::int[])`)
    // The version is bumped inside the UPDATE, not read-then-write: of two PATCHes with one
    // If-Match, the second re-checks the version after the first commits, and fails.
    const update = `update tasks t set ${set.join(', ')}, version = t.version + 1, updated_at = now() ` +
      `where ${where.join(' and ')} returning ${TASK_COLUMNS}`
    const text = changes.completed === true
      ? `${SUBTREE}, target as (${update})${completingSubtree('target')} select * from target`
      : update
    const task = await queryOne<Task>(db, statement(text), values)
    if (task) return task
    // Declined: a recurring task (or none, or a stale If-Match, which the locked write tells apart).
    return mayConcernSeries ? writeLocked(userId, taskId, changes, ifVersions, { replacing }) : refused(userId, taskId, ifVersions)
  }

  return {
    /** How many creates went together (create-batch.ts), for metrics. */
    createStats: together.stats,

    async create (userId: string, input: CreateTaskBody): Promise<Task> {
      // A subtask's creation waits for a move in progress, which could change its parent's project or depth.
      const task = await placedGone(userId, input, () => input.parentId === undefined
        ? insert(db, userId, input)
        : db.transaction((tx) => insert(tx, userId, input)))
      changed(userId, task)
      return task
    },

    /** Creates once per (user, key): see idempotency.ts. */
    async createIdempotent (userId: string, key: string, input: CreateTaskBody): Promise<Answer<Task>> {
      const answer = await placedGone(userId, input, () => db.transaction((tx) =>
        createOnce(tx, userId, key, requestHash(input), () => insert(tx, userId, input))))
      if (!answer.replayed) changed(userId, answer.body)
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
      if (query.recurring !== undefined) conditions.push(`t.recurrence is ${query.recurring ? 'not ' : ''}null`)
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
     * them. Completing a task completes its open subtasks at every level, in the same statement;
     * completing a recurring task completes its current occurrence instead (see `writeLocked`).
     */
    async update (userId: string, taskId: string, changes: UpdateTaskBody, ifVersions?: IfVersions): Promise<Task> {
      const task = await write(userId, taskId, changes, ifVersions, false)
      changed(userId, task)
      return task
    },

    /**
     * The classic PUT: every field replaced, omitted ones cleared, except a recurring task's series
     * and due date, which an omitted `recurrence` or due date leaves as they are (see series.ts).
     */
    async replace (userId: string, taskId: string, fields: UpdateTaskBody): Promise<Task> {
      const task = await write(userId, taskId, fields, undefined, true)
      changed(userId, task)
      return task
    },

    /**
     * Flips `completed` (and sets or clears `completedAt`) in one statement; completing completes the
     * subtasks too. On an open recurring task it completes the current occurrence instead (`update`).
     */
    async toggle (userId: string, taskId: string): Promise<Task> {
      const task = await queryOne<Task>(db, TOGGLE, [userId, taskId]) ?? await writeLocked(userId, taskId, { completed: true }, undefined)
      changed(userId, task)
      return task
    },

    /** Moves a recurring task to its next occurrence without recording a completion. */
    async skip (userId: string, taskId: string, ifVersions?: IfVersions): Promise<Task> {
      const task = await writeLocked(userId, taskId, {}, ifVersions, { skip: true })
      changed(userId, task)
      return task
    },

    /** A page of the task's history, newest first; undefined when the task is not the user's. */
    async completions (userId: string, taskId: string, query: CompletionsQuery): Promise<CompletionPage | undefined> {
      const limit = query.limit ?? 20
      const below = query.cursor === undefined ? Number.MAX_SAFE_INTEGER : decodeHistoryCursor(query.cursor)
      const rows = await db.query<{ occurrence: string | null, completedAt: string | null, id: number | null }>(HISTORY,
        [userId, taskId, below, limit + 1])
      if (rows.length === 0) return undefined
      const found = rows.filter((row) => row.id !== null) as Array<{ occurrence: string, completedAt: string, id: number }>
      const items = found.slice(0, limit)
      const last = items.at(-1)
      return {
        items: items.map(({ occurrence, completedAt }) => ({ occurrence, completedAt })),
        nextCursor: found.length > limit && last ? encodeHistoryCursor(last.id) : null,
      }
    },

    /**
     * The task's next due dates, at most `limit`: its current dueAt, then for a recurring task the
     * occurrences after it; undefined when the task is not the user's.
     */
    async occurrences (userId: string, taskId: string, limit: number): Promise<string[] | undefined> {
      const task = await queryOne<Task & { dueLocal: string | null, occurrenceIndex: number }>(db, FIND_SERIES, [userId, taskId])
      if (!task) return undefined
      if (task.completed || task.dueAt === null) return []
      if (task.recurrence === null || task.dueLocal === null) return [task.dueAt]
      return upcoming(ruleOf(task.recurrence.rule), task.recurrence,
        { dueAt: task.dueAt, local: task.dueLocal, index: task.occurrenceIndex }, limit)
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
