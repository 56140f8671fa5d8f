import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm'
import { drizzle } from 'drizzle-orm/pglite'
import { migrate } from 'drizzle-orm/pglite/migrator'
import Fastify from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { migrationsFolder } from '../../src/db/shared.js'
import { TaskJson } from '../../src/tasks/schemas.js'

/** The committed migrations up to and including `lastTag`, in a folder of their own. */
async function migrationsUpTo (lastTag: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'taskbase-migrations-'))
  await cp(migrationsFolder, dir, { recursive: true })
  const journalPath = join(dir, 'meta', '_journal.json')
  const journal = JSON.parse(await readFile(journalPath, 'utf8')) as { entries: Array<{ tag: string }> }
  const last = journal.entries.findIndex((e) => e.tag === lastTag)
  if (last < 0) throw new Error(`no migration ${lastTag}`)
  journal.entries = journal.entries.slice(0, last + 1)
  await writeFile(journalPath, JSON.stringify(journal))
  return dir
}

/**
 * An empty in-memory database for one describe, and the migrations up to `lastTag` in a folder of
 * their own; `db()` and `oldFolder()` are theirs once the describe's tests run.
 */
function databaseBefore (lastTag: string): { db: () => PGlite, oldFolder: () => string } {
  let db: PGlite | undefined
  let oldFolder: string | undefined
  beforeAll(async () => {
    db = await PGlite.create(undefined, { extensions: { pg_trgm } })
    oldFolder = await migrationsUpTo(lastTag)
  })
  afterAll(async () => {
    await db?.close()
    if (oldFolder) await rm(oldFolder, { recursive: true, force: true })
  })
  return { db: () => db!, oldFolder: () => oldFolder! }
}

describe('migration 0008: the change log moves onto the rows', () => {
  const { db, oldFolder } = databaseBefore('0007_notify_after_commit')

  it('keeps every seq a client may hold: live tasks at their last change, deletes as tombstones', async () => {
    await migrate(drizzle({ client: db() }), { migrationsFolder: oldFolder() })
    const { rows: [user] } = await db().query<{ id: string }>(`insert into users (email, password_hash) values ('a@example.com', 'x') returning id`)
    const { rows: [kept] } = await db().query<{ id: string }>('insert into tasks (user_id, title) values ($1, $2) returning id', [user!.id, 'kept']) // seq 1
    const { rows: [gone] } = await db().query<{ id: string }>('insert into tasks (user_id, title) values ($1, $2) returning id', [user!.id, 'gone']) // seq 2
    await db().query('update tasks set title = $2 where id = $1', [kept!.id, 'kept, renamed']) // seq 3
    await db().query('delete from tasks where id = $1', [gone!.id]) // seq 4

    await migrate(drizzle({ client: db() }), { migrationsFolder })

    expect((await db().query('select title, seq from tasks order by seq')).rows).toEqual([{ title: 'kept, renamed', seq: 3 }])
    expect((await db().query('select entity, entity_id as "entityId", seq from tombstones')).rows)
      .toEqual([{ entity: 'task', entityId: gone!.id, seq: 4 }])
    expect((await db().query<{ exists: boolean }>(`select to_regclass('task_changes') is not null as exists`)).rows[0]!.exists).toBe(false)
    // Writes go on from where the log was.
    await db().query('update tasks set completed = true where id = $1', [kept!.id])
    expect((await db().query('select seq from tasks')).rows).toEqual([{ seq: 5 }])
    expect((await db().query('select change_seq as "changeSeq" from users')).rows).toEqual([{ changeSeq: 5 }])
  })
})

describe('migration 0011: projects, subtasks and order', () => {
  const { db, oldFolder } = databaseBefore('0010_server_settings')

  it('puts existing tasks in the inbox, at the top level, in the order they were last written', async () => {
    await migrate(drizzle({ client: db() }), { migrationsFolder: oldFolder() })
    const { rows: [user] } = await db().query<{ id: string }>(`insert into users (email, password_hash) values ('a@example.com', 'x') returning id`)
    const ids: string[] = []
    for (const title of ['first', 'second', 'third']) {
      ids.push((await db().query<{ id: string }>('insert into tasks (user_id, title) values ($1, $2) returning id', [user!.id, title])).rows[0]!.id)
    }
    await db().query('update tasks set title = $2 where id = $1', [ids[0], 'first, edited']) // now written last

    await migrate(drizzle({ client: db() }), { migrationsFolder })
    const { rows } = await db().query<{ title: string, projectId: string | null, parentId: string | null, depth: number }>(
      'select title, project_id as "projectId", parent_id as "parentId", depth from tasks where user_id = $1 order by position, id', [user!.id])
    expect(rows).toEqual(['second', 'third', 'first, edited'].map((title) => ({ title, projectId: null, parentId: null, depth: 0 })))
    // A task created now goes after all of them.
    await db().query('insert into tasks (user_id, title) values ($1, $2)', [user!.id, 'fourth'])
    const { rows: [last] } = await db().query<{ title: string }>('select title from tasks where user_id = $1 order by position desc, id desc limit 1', [user!.id])
    expect(last!.title).toBe('fourth')
  })
})

describe('migration 0012: lists holding an over-long position get short keys', () => {
  const { db, oldFolder } = databaseBefore('0011_projects')

  it('rekeys only those lists, keeping their order, and rows added later still go last', async () => {
    await migrate(drizzle({ client: db() }), { migrationsFolder: oldFolder() })
    const { rows: [user] } = await db().query<{ id: string }>(`insert into users (email, password_hash) values ('a@example.com', 'x') returning id`)
    const { rows: [project] } = await db().query<{ id: string }>('insert into projects (user_id, name) values ($1, $2) returning id', [user!.id, 'P'])
    const insert = async (title: string, projectId: string | null) => (await db().query<{ id: string }>(
      'insert into tasks (user_id, title, project_id) values ($1, $2, $3) returning id', [user!.id, title, projectId])).rows[0]!.id
    for (const title of ['i1', 'i2', 'i3']) await insert(title, null)
    for (const title of ['p1', 'p2', 'p3']) await insert(title, project!.id)
    // The inbox as repeated moves into one spot left it: i3 between i1 and i2 on a 400-character key.
    await db().query(`update tasks set position = (select position from tasks where title = 'i1') || repeat('V', 400) where title = 'i3'`)
    const list = async (projectId: string | null) => (await db().query<{ title: string, position: string, version: number }>(
      'select title, position, version from tasks where project_id is not distinct from $1 order by position, id', [projectId])).rows
    const inboxBefore = await list(null)
    const projectBefore = await list(project!.id)
    expect(inboxBefore.map((r) => r.title)).toEqual(['i1', 'i3', 'i2'])

    await migrate(drizzle({ client: db() }), { migrationsFolder })

    const inbox = await list(null)
    expect(inbox.map((r) => r.title)).toEqual(['i1', 'i3', 'i2'])
    expect(inbox.every((r) => r.position.length <= 24)).toBe(true)
    expect(inbox.map((r) => r.version)).toEqual(inboxBefore.map((r) => r.version + 1)) // each a change, seen by sync
    expect(await list(project!.id)).toEqual(projectBefore) // a list with short keys is left alone
    await insert('i4', null)
    expect((await list(null)).map((r) => r.title)).toEqual(['i1', 'i3', 'i2', 'i4'])
  })
})

describe('migrations 0015 and 0016: answers stored for retried creates before recurring tasks and reminders', () => {
  const { db, oldFolder } = databaseBefore('0014_recurrence')

  it('gain recurrence: null and reminders: [], so a retry still gets the first answer, not a 500', async () => {
    await migrate(drizzle({ client: db() }), { migrationsFolder: oldFolder() })
    const { rows: [user] } = await db().query<{ id: string }>(`insert into users (email, password_hash) values ('a@example.com', 'x') returning id`)
    const stored = {
      id: '0b9a7c64-5b0f-4f7e-9a3e-4f1f2a8e6d11', title: 'Once', description: null, completed: false, completedAt: null, priority: 'none',
      dueAt: null, tags: [], createdAt: '2026-12-06T10:00:00.000Z', updatedAt: '2026-12-06T10:00:00.000Z', version: 1,
      projectId: null, parentId: null, position: 'a1',
    }
    const keep = async (key: string, status: number, body: object) => db().query(`insert into idempotency_keys
      (user_id, key, request_hash, response_status, response_body) values ($1, $2, 'h', $3, $4)`, [user!.id, key, status, JSON.stringify(body)])
    await keep('before', 201, stored)
    await keep('in progress', 0, {})
    // The stored answer sent back as POST /api/v1/tasks sends it: serialized by its response schema.
    let answer: object = stored
    const replay = Fastify({ logger: false }).get('/', { schema: { response: { 201: TaskJson } } }, async (_, reply) => reply.code(201).send(answer))
    expect((await replay.inject({ url: '/' })).statusCode).toBe(500)

    await migrate(drizzle({ client: db() }), { migrationsFolder })

    const body = async (key: string) => (await db().query<{ body: object }>('select response_body as body from idempotency_keys where key = $1', [key])).rows[0]!.body
    expect(await body('before')).toEqual({ ...stored, recurrence: null, reminders: [] })
    answer = await body('before')
    const replayed = await replay.inject({ url: '/' })
    expect(replayed.statusCode).toBe(201)
    expect(replayed.json()).toEqual({ ...stored, recurrence: null, reminders: [] })
    expect(await body('in progress')).toEqual({})
    await replay.close()
  })
})

describe('migration 0018: users with an enabled webhook endpoint are marked', () => {
  const { db, oldFolder } = databaseBefore('0017_webhooks')

  it('marks exactly them, and their writes after it are queued as before', async () => {
    await migrate(drizzle({ client: db() }), { migrationsFolder: oldFolder() })
    const user = async (email: string) => (await db().query<{ id: string }>(
      `insert into users (email, password_hash) values ($1, 'x') returning id`, [email])).rows[0]!.id
    const [hooked, disabled, none] = [await user('hooked@example.com'), await user('disabled@example.com'), await user('none@example.com')]
    const endpoint = (userId: string, enabled: boolean) => db().query(
      `insert into webhooks (user_id, url, events, secret, enabled) values ($1, 'https://hooks.invalid/', '{*}', 'x', $2)`, [userId, enabled])
    await endpoint(hooked, true)
    await endpoint(hooked, false)
    await endpoint(disabled, false)

    await migrate(drizzle({ client: db() }), { migrationsFolder })

    const { rows } = await db().query<{ id: string, hooked: boolean }>('select id, webhooks_enabled as hooked from users')
    expect(Object.fromEntries(rows.map((r) => [r.id, r.hooked]))).toEqual({ [hooked]: true, [disabled]: false, [none]: false })
    for (const userId of [hooked, disabled, none]) await db().query(`insert into tasks (user_id, title) values ($1, 'after')`, [userId])
    expect((await db().query('select user_id as "userId", type from webhook_events')).rows).toEqual([{ userId: hooked, type: 'task.upsert' }])
  })
})
