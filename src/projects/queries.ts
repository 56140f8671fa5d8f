import type { Database } from '../db/client.js'
import { LOCK_USER_MOVES } from '../db/locks.js'
import { placement, type Placed, type PlaceTo, type Siblings } from '../db/position.js'
import { fieldsOf, selectList } from '../db/rows.js'
import { projects } from '../db/schema.js'
import { queryOne, statement, type Sql } from '../db/sql.js'
import type { IfVersions } from '../http/conditional.js'
import { badRequest, notFound, preconditionFailed, projectLimitReached } from '../http/problem.js'
import { createOnce, requestHash, type Answer } from '../tasks/idempotency.js'
import { ProjectJson, type CreateProjectBody, type ListProjectsQuery, type Project, type UpdateProjectBody } from './schemas.js'

/** A project's JSON, field by field, and its columns (see db/rows.ts). */
export const PROJECT_FIELDS = fieldsOf(projects, ProjectJson)

/** Every column of a project, named as the API names it: a row is the project's JSON. */
export const PROJECT_COLUMNS = selectList(PROJECT_FIELDS, 'p')

// The owner's id is in every WHERE clause: another user's project and a missing one are the same nothing.
const FIND = statement(`select ${PROJECT_COLUMNS} from projects p where p.user_id = $1 and p.id = $2`)
/**
 * Taken before a project's creation counts the user's projects: concurrent creates then count one
 * after the other, each seeing the projects the previous one committed (the count comes in a
 * statement of its own, whose snapshot starts after the lock is held). Counted without the lock,
 * 60 creates at once stored up to 13 projects of 5 on PostgreSQL.
 */
const LOCK_OWNER = statement('select 1 as locked from users u where u.id = $1 for no key update')
/** Inserts unless the user already has $4 projects; the trigger places it last. */
const INSERT = statement(`insert into projects as p (user_id, name, color)
  select $1, $2, $3 where (select count(*) from projects c where c.user_id = $1) < $4
  returning ${PROJECT_COLUMNS}`)
const LIST_FIRST = statement(`select ${PROJECT_COLUMNS} from projects p where p.user_id = $1 and p.archived = $2
  order by p.position, p.id limit $3`)
const LIST_AFTER = statement(`select ${PROJECT_COLUMNS} from projects p where p.user_id = $1 and p.archived = $2
  and (p.position, p.id) > ($4, $5::uuid) order by p.position, p.id limit $3`)
const DELETE = statement('delete from projects p where p.user_id = $1 and p.id = $2 returning p.id')
const DELETE_IF_VERSION = statement('delete from projects p where p.user_id = $1 and p.id = $2 and p.version = any($3::int[]) returning p.id')
const EXISTS = statement('select 1 as found from projects p where p.user_id = $1 and p.id = $2')
const LOCK = statement(`select ${PROJECT_COLUMNS} from projects p where p.user_id = $1 and p.id = $2 for update`)
const SIBLING = statement('select p.id, p.position from projects p where p.user_id = $1 and p.id = $2')
// $3 rows beyond ($4, $5) on one side, nearest first; or from an end of the list.
const NEAR_AFTER = statement(`select p.id, p.position from projects p where p.user_id = $1 and p.id <> $2
  and (p.position, p.id) > ($4, $5::uuid) order by p.position, p.id limit $3`)
const NEAR_BEFORE = statement(`select p.id, p.position from projects p where p.user_id = $1 and p.id <> $2
  and (p.position, p.id) < ($4, $5::uuid) order by p.position desc, p.id desc limit $3`)
const FIRST = statement(`select p.id, p.position from projects p where p.user_id = $1 and p.id <> $2
  order by p.position, p.id limit $3`)
const LAST = statement(`select p.id, p.position from projects p where p.user_id = $1 and p.id <> $2
  order by p.position desc, p.id desc limit $3`)
const REPOSITION = statement(`update projects p set position = k.position, version = p.version + 1, updated_at = now()
  from unnest($2::uuid[], $3::text[]) as k (id, position) where p.user_id = $1 and p.id = k.id`)
const PLACE = statement(`update projects p set position = $3, version = p.version + 1, updated_at = now()
  where p.user_id = $1 and p.id = $2 returning ${PROJECT_COLUMNS}`)

const cursorValues = ({ position, id }: Placed) => [position, id]
const encodeCursor = (row: Placed) => Buffer.from(JSON.stringify([row.position, row.id])).toString('base64url')

function decodeCursor (raw: string): Placed {
  const invalid = () => badRequest('The cursor is not valid', [{ path: 'query.cursor', message: 'is not a cursor returned by this API' }])
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'))
  } catch {
    throw invalid()
  }
  const [position, id] = Array.isArray(parsed) ? parsed as unknown[] : []
  if (typeof position !== 'string' || !/^[0-9A-Za-z]{1,2000}$/.test(position) ||
      typeof id !== 'string' || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) throw invalid()
  return { position, id }
}

export interface ProjectQueryOptions {
  /** Runs after each write that committed, with its user (see events/feed.ts). */
  changed?: (userId: string) => void
  /** PROJECTS_PER_USER_MAX: a create past it is a 409. */
  maxProjectsPerUser: number
}

/**
 * The user's projects, in the order the user gave them. A write that cannot be done throws the
 * problem to answer: a project that is not the user's is a 404, a stale If-Match a 412.
 */
export function projectQueries (db: Database, { changed = () => {}, maxProjectsPerUser }: ProjectQueryOptions) {
  /** A conditional write changed nothing: not the user's (404), or moved on from `ifVersions` (412). */
  async function refused (userId: string, projectId: string, ifVersions: IfVersions): Promise<never> {
    if (ifVersions !== undefined && await queryOne(db, EXISTS, [userId, projectId])) throw preconditionFailed('project')
    throw notFound('project')
  }

  /** Every project of the user is a sibling of every other: one order for them all, archived ones included. */
  const siblingsOf = (tx: Sql, userId: string, moving: string): Siblings => ({
    moving,
    async find (id) {
      const row = await queryOne<Placed>(tx, SIBLING, [userId, id])
      return row && { row, sibling: true }
    },
    near: (row, side, count) => row === null
      ? tx.query<Placed>(side === 'after' ? FIRST : LAST, [userId, moving, count])
      : tx.query<Placed>(side === 'after' ? NEAR_AFTER : NEAR_BEFORE, [userId, moving, count, row.position, row.id]),
    async reposition (rows) {
      await tx.query(REPOSITION, [userId, rows.map((r) => r.id), rows.map((r) => r.position)])
    },
  })

  /** In the transaction `tx`; throws the 409 past the cap. */
  async function insert (tx: Sql, userId: string, input: CreateProjectBody): Promise<Project> {
    await tx.query(LOCK_OWNER, [userId])
    const project = await queryOne<Project>(tx, INSERT, [userId, input.name.trim(), input.color ?? null, maxProjectsPerUser])
    if (!project) throw projectLimitReached(maxProjectsPerUser)
    return project
  }

  return {
    async create (userId: string, input: CreateProjectBody): Promise<Project> {
      const project = await db.transaction((tx) => insert(tx, userId, input))
      changed(userId)
      return project
    },

    /**
     * Creates once per (user, key), as a task create with Idempotency-Key does (tasks/idempotency.ts),
     * in the same table: the body is hashed as a project's, so a key used for a task is never
     * replayed as a project (a 422, as any reuse with another body).
     */
    async createIdempotent (userId: string, key: string, input: CreateProjectBody): Promise<Answer<Project>> {
      const answer = await db.transaction((tx) =>
        createOnce(tx, userId, key, requestHash({ project: input }), () => insert(tx, userId, input)))
      if (!answer.replayed) changed(userId)
      return answer
    },

    find: (userId: string, projectId: string): Promise<Project | undefined> => queryOne<Project>(db, FIND, [userId, projectId]),

    async list (userId: string, query: ListProjectsQuery): Promise<{ items: Project[], nextCursor: string | null }> {
      const limit = query.limit ?? 20
      const archived = query.archived ?? false
      const rows = query.cursor === undefined
        ? await db.query<Project>(LIST_FIRST, [userId, archived, limit + 1])
        : await db.query<Project>(LIST_AFTER, [userId, archived, limit + 1, ...cursorValues(decodeCursor(query.cursor))])
      const items = rows.slice(0, limit)
      return { items, nextCursor: rows.length > limit ? encodeCursor(items.at(-1)!) : null }
    },

    /** Changes the given fields; with `ifVersions` (from If-Match) only if the project is still at one of them. */
    async update (userId: string, projectId: string, changes: UpdateProjectBody, ifVersions?: IfVersions): Promise<Project> {
      const values: unknown[] = [userId, projectId]
      const add = (value: unknown) => `$${values.push(value)}`
      const set: string[] = []
      if (changes.name !== undefined) set.push(`name = ${add(changes.name.trim())}`)
      if (changes.color !== undefined) set.push(`color = ${add(changes.color)}`)
      if (changes.archived !== undefined) set.push(`archived = ${add(changes.archived)}`)
      const condition = ifVersions === undefined ? '' : ` and p.version = any(${add(ifVersions)}::int[])`
      const project = await queryOne<Project>(db, statement(`update projects p set ${set.join(', ')}, version = p.version + 1, ` +
        `updated_at = now() where p.user_id = $1 and p.id = $2${condition} returning ${PROJECT_COLUMNS}`), values) ??
        await refused(userId, projectId, ifVersions)
      changed(userId)
      return project
    },

    /** The project and every task in it (each leaves a tombstone: the foreign keys cascade, the triggers bury). */
    async delete (userId: string, projectId: string, ifVersions?: IfVersions): Promise<void> {
      const deleted = ifVersions === undefined
        ? await queryOne(db, DELETE, [userId, projectId])
        : await queryOne(db, DELETE_IF_VERSION, [userId, projectId, ifVersions])
      if (!deleted) await refused(userId, projectId, ifVersions)
      changed(userId)
    },

    /** Puts the project just before `beforeId`, just after `afterId`, or last (see db/position.ts). */
    async move (userId: string, projectId: string, to: PlaceTo, ifVersions?: IfVersions): Promise<Project> {
      const project = await db.transaction(async (tx) => {
        await tx.query(LOCK_USER_MOVES, [userId])
        const current = await queryOne<Project>(tx, LOCK, [userId, projectId])
        if (!current) throw notFound('project')
        if (ifVersions !== undefined && !ifVersions.includes(current.version)) throw preconditionFailed('project')
        const key = await placement(siblingsOf(tx, userId, projectId), to, 'project')
        return (await queryOne<Project>(tx, PLACE, [userId, projectId, key]))!
      })
      changed(userId)
      return project
    },
  }
}

export type ProjectQueries = ReturnType<typeof projectQueries>
