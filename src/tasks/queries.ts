import { and, eq, sql, type SQL } from 'drizzle-orm'
import type { Db } from '../db/client.js'
import { idempotencyKeys, tasks, type Task } from '../db/schema.js'
import { decodeCursor, encodeCursor, sortValue } from './cursor.js'
import type { CreateTaskBody, ListTasksQuery, Sort, TaskJson, UpdateTaskBody } from './schemas.js'

/** The ownership predicate. Every statement on tasks goes through it. */
const owned = (userId: string, taskId: string) => and(eq(tasks.userId, userId), eq(tasks.id, taskId))

interface SortSpec {
  /** The indexed expression the list is ordered by; id breaks ties. */
  key: SQL
  /** The same expression over a cursor's value. */
  keyOf: (value: string | null) => SQL
  descending: boolean
}

const createdKey: Omit<SortSpec, 'descending'> = { key: sql`${tasks.createdAt}`, keyOf: (v) => sql`${v}::timestamptz` }
const priorityKey: Omit<SortSpec, 'descending'> = { key: sql`${tasks.priority}`, keyOf: (v) => sql`${v}::task_priority` }
const titleKey: Omit<SortSpec, 'descending'> = { key: sql`lower(${tasks.title})`, keyOf: (v) => sql`lower(${v})` }
// Tasks with no due date come last in both directions, hence a different stand-in for null.
const dueKey = (end: 'infinity' | '-infinity'): Omit<SortSpec, 'descending'> => ({
  key: sql`coalesce(${tasks.dueAt}, ${sql.raw(`'${end}'`)}::timestamptz)`,
  keyOf: (v) => sql`coalesce(${v}::timestamptz, ${sql.raw(`'${end}'`)}::timestamptz)`,
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

export interface TaskPage {
  items: Task[]
  nextCursor: string | null
}

/** What a write conditioned on `If-Match` found: the task, a stale version, or no task of the user's. */
export type ConditionalResult<T> = { status: 'ok', value: T } | { status: 'stale' } | { status: 'missing' }

export type IdempotentCreate =
  | { status: 'created' | 'replayed', responseStatus: number, body: TaskJson }
  | { status: 'conflict' }

export function taskQueries (db: Db) {
  /** Tells a stale `If-Match` (412) from a task that is not the user's (404). */
  async function staleOrMissing (userId: string, taskId: string): Promise<{ status: 'stale' } | { status: 'missing' }> {
    const rows = await db.select({ id: tasks.id }).from(tasks).where(owned(userId, taskId))
    return rows.length > 0 ? { status: 'stale' } : { status: 'missing' }
  }

  async function create (tx: Db, userId: string, input: CreateTaskBody): Promise<Task> {
    const [task] = await tx.insert(tasks).values({
      userId,
      title: input.title.trim(),
      description: input.description ?? null,
      priority: input.priority ?? 'none',
      dueAt: input.dueAt ? new Date(input.dueAt) : null,
      ...normalizeTags(input.tags ?? []),
    }).returning()
    return task!
  }

  const versionIs = (version: number | undefined) => version === undefined ? undefined : eq(tasks.version, version)

  return {
    create: (userId: string, input: CreateTaskBody) => create(db, userId, input),

    /**
     * Creates once per (user, key): a retry with the same body gets the first answer back, the
     * same key with another body is a conflict. Racing requests with one key serialize on the key's
     * primary key: the second waits for the first to commit, then replays its answer.
     */
    async createIdempotent (userId: string, key: string, requestHash: string, input: CreateTaskBody,
      present: (task: Task) => TaskJson): Promise<IdempotentCreate> {
      return db.transaction(async (tx) => {
        // A key older than 24 hours is taken over as if it were new.
        const [claimed] = await tx.insert(idempotencyKeys)
          .values({ userId, key, requestHash, responseStatus: 0, responseBody: {} })
          .onConflictDoUpdate({
            target: [idempotencyKeys.userId, idempotencyKeys.key],
            set: { requestHash, responseStatus: 0, responseBody: {}, createdAt: sql`now()` },
            setWhere: sql`${idempotencyKeys.createdAt} < now() - interval '24 hours'`,
          })
          .returning({ key: idempotencyKeys.key })
        if (!claimed) {
          const [first] = await tx.select().from(idempotencyKeys)
            .where(and(eq(idempotencyKeys.userId, userId), eq(idempotencyKeys.key, key)))
          if (!first || first.requestHash !== requestHash) return { status: 'conflict' } as const
          return { status: 'replayed', responseStatus: first.responseStatus, body: first.responseBody as TaskJson } as const
        }
        const body = present(await create(tx, userId, input))
        await tx.update(idempotencyKeys)
          .set({ responseStatus: 201, responseBody: body })
          .where(and(eq(idempotencyKeys.userId, userId), eq(idempotencyKeys.key, key)))
        return { status: 'created', responseStatus: 201, body } as const
      })
    },

    async find (userId: string, taskId: string): Promise<Task | undefined> {
      const [task] = await db.select().from(tasks).where(owned(userId, taskId))
      return task
    },

    async list (userId: string, query: ListTasksQuery): Promise<TaskPage> {
      const sort = query.sort ?? '-createdAt'
      const limit = query.limit ?? 20
      const spec = SORT_SPECS[sort]
      const conditions: Array<SQL | undefined> = [eq(tasks.userId, userId)]
      if (query.completed !== undefined) conditions.push(eq(tasks.completed, query.completed))
      if (query.priority !== undefined) conditions.push(eq(tasks.priority, query.priority))
      if (query.tag?.length) {
        const keys = [...new Set(query.tag.map((t) => t.trim().toLowerCase()))]
        conditions.push(sql`${tasks.tagKeys} @> ${sql.param(keys)}::text[]`)
      }
      if (query.q !== undefined) {
        // Each side is served by its own trigram index (a BitmapOr); a match never spans the two.
        const pattern = likePattern(query.q)
        conditions.push(sql`(${tasks.title} ilike ${pattern} or ${tasks.description} ilike ${pattern})`)
      }
      if (query.dueBefore !== undefined) conditions.push(sql`${tasks.dueAt} < ${query.dueBefore}::timestamptz`)
      if (query.dueAfter !== undefined) conditions.push(sql`${tasks.dueAt} > ${query.dueAfter}::timestamptz`)
      if (query.cursor !== undefined) {
        const cursor = decodeCursor(query.cursor, sort)
        const after = spec.descending ? sql`<` : sql`>`
        conditions.push(sql`(${spec.key}, ${tasks.id}) ${after} (${spec.keyOf(cursor.value)}, ${cursor.id}::uuid)`)
      }
      const direction = spec.descending ? sql`desc` : sql`asc`
      const rows = await db.select().from(tasks)
        .where(and(...conditions))
        .orderBy(sql`${spec.key} ${direction}`, sql`${tasks.id} ${direction}`)
        .limit(limit + 1)
      const items = rows.slice(0, limit)
      const last = items.at(-1)
      const nextCursor = rows.length > limit && last
        ? encodeCursor({ sort, value: sortValue(sort, last), id: last.id })
        : null
      return { items, nextCursor }
    },

    /** `ifVersion` (from If-Match) makes the write conditional: any other version is 'stale'. */
    async update (userId: string, taskId: string, changes: UpdateTaskBody, ifVersion?: number): Promise<ConditionalResult<Task>> {
      const { title, description, completed, priority, dueAt, tags: newTags } = changes
      const [task] = await db.update(tasks).set({
        ...(title !== undefined && { title: title.trim() }),
        ...(description !== undefined && { description }),
        ...(priority !== undefined && { priority }),
        ...(dueAt !== undefined && { dueAt: dueAt === null ? null : new Date(dueAt) }),
        ...(newTags !== undefined && normalizeTags(newTags)),
        ...(completed !== undefined && {
          completed,
          // Completing a completed task keeps the time it was first completed.
          completedAt: completed ? sql`coalesce(${tasks.completedAt}, now())` : null,
        }),
        // Bumped inside the UPDATE, not read-then-write: of two PATCHes with one If-Match, the
        // second re-checks the version after the first commits, and fails.
        version: sql`${tasks.version} + 1`,
        updatedAt: sql`now()`,
      }).where(and(owned(userId, taskId), versionIs(ifVersion))).returning()
      return task ? { status: 'ok', value: task } : staleOrMissing(userId, taskId)
    },

    /** Flips `completed` (and sets or clears `completedAt`) in one statement. */
    async toggle (userId: string, taskId: string): Promise<Task | undefined> {
      const [task] = await db.update(tasks).set({
        completed: sql`not ${tasks.completed}`,
        completedAt: sql`case when ${tasks.completed} then null else now() end`,
        version: sql`${tasks.version} + 1`,
        updatedAt: sql`now()`,
      }).where(owned(userId, taskId)).returning()
      return task
    },

    async delete (userId: string, taskId: string, ifVersion?: number): Promise<ConditionalResult<Task>> {
      const [task] = await db.delete(tasks).where(and(owned(userId, taskId), versionIs(ifVersion))).returning()
      return task ? { status: 'ok', value: task } : staleOrMissing(userId, taskId)
    },

    /** Drops idempotency keys past their 24 hours. Run from a timer, never inside a request. */
    async pruneIdempotencyKeys (): Promise<number> {
      const rows = await db.delete(idempotencyKeys)
        .where(sql`${idempotencyKeys.createdAt} < now() - interval '24 hours'`)
        .returning({ key: idempotencyKeys.key })
      return rows.length
    },
  }
}

export type TaskQueries = ReturnType<typeof taskQueries>
