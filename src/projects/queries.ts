import type { Database } from '../db/client.js'
import { LOCK_USER_MOVES } from '../db/locks.js'
import { placement, type Placed, type Placement, type Siblings } from '../db/position.js'
import { queryOne, statement, type Sql } from '../db/sql.js'
import { badRequest, projectLimitReached } from '../http/problem.js'
import type { ConditionalResult, IfVersions } from '../tasks/queries.js'
import type { CreateProjectBody, ListProjectsQuery, Project, UpdateProjectBody } from './schemas.js'

/** Every column of a project, named as the API names it: a row is the project's JSON. */
export const PROJECT_COLUMNS = 'p.id, p.name, p.color, p.archived, p.position, p.created_at as "createdAt", ' +
  'p.updated_at as "updatedAt", p.version'

// The owner's id is in every WHERE clause: another user's project and a missing one are the same nothing.
const FIND = statement(`select ${PROJECT_COLUMNS} from projects p where p.user_id = $1 and p.id = $2`)
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
const NEXT_AFTER = statement(`select p.id, p.position from projects p where p.user_id = $1 and p.id <> $2
  and (p.position, p.id) > ($3, $4::uuid) order by p.position, p.id limit 1`)
const NEXT_BEFORE = statement(`select p.id, p.position from projects p where p.user_id = $1 and p.id <> $2
  and (p.position, p.id) < ($3, $4::uuid) order by p.position desc, p.id desc limit 1`)
const LAST = statement(`select p.id, p.position from projects p where p.user_id = $1 and p.id <> $2
  order by p.position desc, p.id desc limit 1`)
const REPOSITION = statement('update projects p set position = $3, version = p.version + 1, updated_at = now() where p.user_id = $1 and p.id = $2')
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

/** The user's projects, in the order the user gave them. */
export function projectQueries (db: Database, { changed = (_userId: string) => {}, maxProjectsPerUser = 1_000 } = {}) {
  /** Tells a stale If-Match (412) from a project that is not the user's (404). */
  async function staleOrMissing (userId: string, projectId: string): Promise<{ status: 'stale' } | { status: 'missing' }> {
    return await queryOne(db, EXISTS, [userId, projectId]) ? { status: 'stale' } : { status: 'missing' }
  }

  /** Every project of the user is a sibling of every other: one order for them all, archived ones included. */
  const siblingsOf = (tx: Sql, userId: string, moving: string): Siblings => ({
    async find (id) {
      const row = id === moving ? undefined : await queryOne<Placed>(tx, SIBLING, [userId, id])
      return row && { row, sibling: true }
    },
    next: (row, side) => queryOne<Placed>(tx, side === 'after' ? NEXT_AFTER : NEXT_BEFORE, [userId, moving, row.position, row.id]),
    last: () => queryOne<Placed>(tx, LAST, [userId, moving]),
    async reposition (id, key) { await tx.query(REPOSITION, [userId, id, key]) },
  })

  return {
    async create (userId: string, input: CreateProjectBody): Promise<Project> {
      const project = await queryOne<Project>(db, INSERT, [userId, input.name.trim(), input.color ?? null, maxProjectsPerUser])
      if (!project) throw projectLimitReached(maxProjectsPerUser)
      changed(userId)
      return project
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

    async update (userId: string, projectId: string, changes: UpdateProjectBody, ifVersions?: IfVersions): Promise<ConditionalResult<Project>> {
      const values: unknown[] = [userId, projectId]
      const add = (value: unknown) => `$${values.push(value)}`
      const set: string[] = []
      if (changes.name !== undefined) set.push(`name = ${add(changes.name.trim())}`)
      if (changes.color !== undefined) set.push(`color = ${add(changes.color)}`)
      if (changes.archived !== undefined) set.push(`archived = ${add(changes.archived)}`)
      const condition = ifVersions === undefined ? '' : ` and p.version = any(${add(ifVersions)}::int[])`
      const project = await queryOne<Project>(db, statement(`update projects p set ${set.join(', ')}, version = p.version + 1, ` +
        `updated_at = now() where p.user_id = $1 and p.id = $2${condition} returning ${PROJECT_COLUMNS}`), values)
      if (!project) return staleOrMissing(userId, projectId)
      changed(userId)
      return { status: 'ok', value: project }
    },

    /** The project and every task in it (each leaves a tombstone: the foreign keys cascade, the triggers bury). */
    async delete (userId: string, projectId: string, ifVersions?: IfVersions): Promise<ConditionalResult<true>> {
      const deleted = ifVersions === undefined
        ? await queryOne(db, DELETE, [userId, projectId])
        : await queryOne(db, DELETE_IF_VERSION, [userId, projectId, ifVersions])
      if (!deleted) return staleOrMissing(userId, projectId)
      changed(userId)
      return { status: 'ok', value: true }
    },

    /** Puts the project just before `beforeId`, just after `afterId`, or last: one row written. */
    async move (userId: string, projectId: string, to: { beforeId?: string, afterId?: string }, ifVersions?: IfVersions):
      Promise<ConditionalResult<Project> | Extract<Placement, { ok: false }>> {
      const result = await db.transaction(async (tx) => {
        await tx.query(LOCK_USER_MOVES, [userId])
        const current = await queryOne<Project>(tx, LOCK, [userId, projectId])
        if (!current) return { status: 'missing' } as const
        if (ifVersions !== undefined && !ifVersions.includes(current.version)) return { status: 'stale' } as const
        const placed = await placement(siblingsOf(tx, userId, projectId), to)
        if (!placed.ok) return placed
        const project = (await queryOne<Project>(tx, PLACE, [userId, projectId, placed.key]))!
        return { status: 'ok', value: project } as const
      })
      if ('status' in result && result.status === 'ok') changed(userId)
      return result
    },
  }
}

export type ProjectQueries = ReturnType<typeof projectQueries>
