/**
 * EXPLAIN ANALYZE of the task list queries on a large, realistic table, written to docs/explain.md.
 *
 *   npm run explain
 *   EXPLAIN_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run explain
 *
 * Creates a throwaway database `taskbase_explain_<random>` on that server, applies the committed
 * migrations, inserts 100,000 tasks for one user and 10,000 for each of five others with SQL (in
 * 20 projects each, a tenth in the inbox, and one task with 100 subtasks), ANALYZEs, then explains the SQL that `taskQueries(db).list(...)` really sends: a recording
 * database captures its text and parameters, and the same statement runs again under EXPLAIN. Also
 * times moving that task with its 100 subtasks to another project, and what each index and trigger
 * on tasks costs a single-row insert and update (`writeCosts`; EXPLAIN_WRITES=0 skips it). Exits
 * with 1 when a list query reads the tasks table without an index. The section on what the webhook
 * outbox guard saved an insert was measured by hand (pgbench, issue 21) and is copied in from
 * bench/insert-cost.md as it stands.
 */
import { randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { openPostgres, type Database } from '../src/db/client.js'
import { encodeCursor, sortValue } from '../src/tasks/cursor.js'
import { taskQueries } from '../src/tasks/queries.js'
import type { ListTasksQuery, Sort } from '../src/tasks/schemas.js'
import { taskTree } from '../src/tasks/tree.js'

const DEFAULT_URL = 'postgres://postgres@127.0.0.1:5432/postgres'
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]'])
const OUTPUT = fileURLToPath(new URL('../docs/explain.md', import.meta.url))
const INSERT_COST = fileURLToPath(new URL('./insert-cost.md', import.meta.url))
const MAIN_TASKS = 100_000
const OTHER_USERS = 5
const OTHER_TASKS = 10_000
/** Deep enough that an OFFSET would hurt; a keyset page should cost what the first one does. */
const LATER_PAGE_ROW = 50_000
const RUNS = 3
/** Rows a filter may discard for one page before the summary calls it out. */
const WASTEFUL_ROWS = 1_000
const PROJECTS_PER_USER = 20
/** Moves timed of the task with 100 subtasks, back and forth between two projects. */
const MOVES = 7

function adminUrl (): string {
  const raw = process.env.EXPLAIN_DATABASE_URL || DEFAULT_URL
  let url: URL | undefined
  try { url = new URL(raw) } catch { /* reported below */ }
  // Never echo the URL: it may hold a password.
  if (!url || !/^postgres(ql)?:$/.test(url.protocol)) throw new Error('EXPLAIN_DATABASE_URL must be a postgres:// or postgresql:// URL')
  if (!LOOPBACK.has(url.hostname) || url.searchParams.has('host')) {
    throw new Error('EXPLAIN_DATABASE_URL must point at 127.0.0.1, localhost or [::1]: a database is created and dropped there')
  }
  return raw
}

async function admin (url: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try { await client.query(statement) } finally { await client.end() }
}

/**
 * Rows shaped like real use, deterministic (no random()) so that two runs explain the same data.
 * Per task g: priority cycles through all four; 30% completed; one in five has no due date, the
 * rest fall within ±120 days; tags `Work` (1 in 3), `home` (1 in 4), `Urgent` (1 in 7), `errand`
 * (1 in 11) and `Travel` (1 in 53), with `tag_keys` their lower case; a quarter have no
 * description; the word "audit" is in about 1% of descriptions, "invoice" in about a fifth of tasks.
 * One in ten is in the inbox, the others spread over the projects $3 in turn; positions are the
 * ones the insert trigger gives (each new task last).
 */
const INSERT_TASKS = `
insert into tasks (user_id, title, description, completed, completed_at, priority, due_at, tags, tag_keys, created_at, updated_at, project_id)
select $1::uuid, t.title, t.description, t.completed,
       case when t.completed then t.created_at + interval '1 day' end,
       t.priority, t.due_at, t.tags,
       coalesce((select array_agg(lower(tag)) from unnest(t.tags) tag), '{}'),
       t.created_at, t.created_at,
       case when t.g % 10 = 0 then null else ($3::uuid[])[1 + (t.g / 10) % array_length($3::uuid[], 1)] end
from (
  select g,
    (array['Write','Review','Call','Email','Fix','Plan','Book','Pay','Clean','Read'])[1 + g % 10]
      || ' ' || (array['report','invoice','dentist','landlord','roadmap','budget','flight','garden','slides','contract','newsletter'])[1 + (g * 7) % 11]
      || ' ' || g as title,
    case when g % 4 = 0 then null
      else 'Remember the ' || (array['report','invoice','dentist','landlord','roadmap','budget','flight','garden','slides','contract','newsletter'])[1 + (g * 3) % 11]
        || ' before the ' || (array['report','invoice','dentist','landlord','roadmap','budget','flight','garden','slides','contract','newsletter'])[1 + (g * 5) % 11]
        || case when g % 97 = 0 then ', and book the quarterly audit' else '' end
    end as description,
    g % 10 < 3 as completed,
    (array['none','low','medium','high']::task_priority[])[1 + (g * 7 + g / 8) % 4] as priority,
    case when g % 5 = 0 then null
      else now() + ((g * 37) % 240 - 120) * interval '1 day' + (g % 1440) * interval '1 minute' end as due_at,
    array_remove(array[
      case when g % 3 = 0 then 'Work' end,
      case when g % 4 = 1 then 'home' end,
      case when g % 7 = 2 then 'Urgent' end,
      case when g % 11 = 3 then 'errand' end,
      case when g % 53 = 4 then 'Travel' end
    ], null) as tags,
    now() - g * interval '37 seconds' as created_at
  from generate_series(1, $2::int) g
) t`

interface Case {
  title: string
  /** The request that leads to this query. */
  request: string
  query: ListTasksQuery
  /** Page `LATER_PAGE_ROW` of this sort: the cursor of the row just before it, ordered by `orderBy`. */
  laterPage?: { sort: Sort, orderBy: string }
}

/** What the tree cases name: a project of the user, and the task with 100 subtasks (10 of them direct). */
interface TreeIds { projectId: string, parentId: string }

const cases = (dueBefore: string, { projectId, parentId }: TreeIds): Case[] => [
  { title: 'default sort (-createdAt), first page', request: 'GET /api/v1/tasks', query: {} },
  {
    title: `default sort, page at row ${LATER_PAGE_ROW.toLocaleString('en-US')}`,
    request: 'GET /api/v1/tasks?cursor=...',
    query: {},
    laterPage: { sort: '-createdAt', orderBy: 'created_at desc, id desc' },
  },
  { title: 'sort=createdAt', request: 'GET /api/v1/tasks?sort=createdAt', query: { sort: 'createdAt' } },
  { title: 'sort=dueAt', request: 'GET /api/v1/tasks?sort=dueAt', query: { sort: 'dueAt' } },
  {
    title: `sort=dueAt, page at row ${LATER_PAGE_ROW.toLocaleString('en-US')}`,
    request: 'GET /api/v1/tasks?sort=dueAt&cursor=...',
    query: { sort: 'dueAt' },
    laterPage: { sort: 'dueAt', orderBy: `coalesce(due_at, 'infinity'::timestamptz) asc, id asc` },
  },
  { title: 'sort=-dueAt', request: 'GET /api/v1/tasks?sort=-dueAt', query: { sort: '-dueAt' } },
  { title: 'sort=priority', request: 'GET /api/v1/tasks?sort=priority', query: { sort: 'priority' } },
  { title: 'sort=-priority', request: 'GET /api/v1/tasks?sort=-priority', query: { sort: '-priority' } },
  { title: 'sort=title', request: 'GET /api/v1/tasks?sort=title', query: { sort: 'title' } },
  {
    title: `sort=title, page at row ${LATER_PAGE_ROW.toLocaleString('en-US')}`,
    request: 'GET /api/v1/tasks?sort=title&cursor=...',
    query: { sort: 'title' },
    laterPage: { sort: 'title', orderBy: 'lower(title) asc, id asc' },
  },
  { title: 'sort=-title', request: 'GET /api/v1/tasks?sort=-title', query: { sort: '-title' } },
  { title: 'completed=false', request: 'GET /api/v1/tasks?completed=false', query: { completed: false } },
  { title: 'priority=high', request: 'GET /api/v1/tasks?priority=high', query: { priority: 'high' } },
  { title: 'tag=work', request: 'GET /api/v1/tasks?tag=work', query: { tag: ['work'] } },
  { title: 'tag=travel (a rare tag)', request: 'GET /api/v1/tasks?tag=travel', query: { tag: ['travel'] } },
  { title: 'tag=work&sort=dueAt (the benchmark\'s scenario)', request: 'GET /api/v1/tasks?tag=work&sort=dueAt', query: { tag: ['work'], sort: 'dueAt' } },
  { title: 'tag=nosuchtag (no task has it)', request: 'GET /api/v1/tasks?tag=nosuchtag', query: { tag: ['nosuchtag'] } },
  { title: 'q=invoice (a common word)', request: 'GET /api/v1/tasks?q=invoice', query: { q: 'invoice' } },
  { title: 'q=audit (a rare word)', request: 'GET /api/v1/tasks?q=audit', query: { q: 'audit' } },
  { title: 'q=zebra (in no task)', request: 'GET /api/v1/tasks?q=zebra', query: { q: 'zebra' } },
  { title: 'dueBefore (90 days ago)', request: `GET /api/v1/tasks?dueBefore=${dueBefore}`, query: { dueBefore } },
  { title: 'a project, in its order', request: 'GET /api/v1/tasks?projectId=<id>&sort=position', query: { projectId, sort: 'position' } },
  {
    title: 'a project\'s top level, in its order',
    request: 'GET /api/v1/tasks?projectId=<id>&parentId=none&sort=position',
    query: { projectId, parentId: 'none', sort: 'position' },
  },
  { title: 'a project, default sort', request: 'GET /api/v1/tasks?projectId=<id>', query: { projectId } },
  { title: 'the inbox, in its order', request: 'GET /api/v1/tasks?projectId=inbox&sort=position', query: { projectId: 'inbox', sort: 'position' } },
  { title: 'a task\'s subtasks, in their order', request: 'GET /api/v1/tasks?parentId=<id>&sort=position', query: { parentId, sort: 'position' } },
]

interface Explained {
  case: Case
  sql: string
  params: unknown[]
  /** How many of the user's tasks match the filters: the page is the first 20 of them. */
  matching: number
  plan: string
  executionMs: number
  indexes: string[]
  seqScanOnTasks: boolean
  /** Rows read and then thrown away by a filter or a recheck. */
  removed: number
  sentence: string
}

/** One sentence on how the plan reads the tasks table, from the plan text. */
function describe (plan: string, hasCursor: boolean): { sentence: string, indexes: string[], seqScanOnTasks: boolean, removed: number } {
  const scans = [...plan.matchAll(/(Index Only Scan|Index Scan)( Backward)? using (\S+) on tasks|Bitmap Index Scan on (\S+)|Seq Scan on tasks/g)]
  const indexes = [...new Set(scans.map((m) => m[3] ?? m[4]).filter((i): i is string => i !== undefined))]
  const seqScanOnTasks = scans.some((m) => m[0] === 'Seq Scan on tasks')
  const sorted = /(^|\s)(Incremental )?Sort( |$)/m.test(plan)
  const removed = [...plan.matchAll(/Rows Removed by (?:Index Recheck|Filter): (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0)
  const keysetInIndex = /Index Cond: .*ROW\(/.test(plan)
  const list = (names: string[]) => names.map((n) => `\`${n}\``).join(' and ')
  let sentence: string
  if (seqScanOnTasks) {
    sentence = `**No index: a Seq Scan reads the whole tasks table**${indexes.length ? ` (besides ${list(indexes)})` : ''}.`
  } else if (scans.some((m) => m[4] !== undefined)) {
    sentence = `Finds the matching rows through ${list(indexes)} (bitmap scan), then ${sorted ? 'sorts them for the page' : 'reads them in order'}` +
      `${removed ? `; ${removed.toLocaleString('en-US')} rows were rechecked away` : ''}.`
  } else if (indexes.length > 0) {
    const backward = scans.some((m) => m[2] !== undefined)
    sentence = `Walks ${list(indexes)}${backward ? ' backwards' : ''}, ${sorted ? 'then sorts (the index gives only part of the order)' : 'already in the requested order, and stops once the page is full'}` +
      `${hasCursor ? (keysetInIndex ? '; the keyset condition is an Index Cond, so the scan starts at the cursor' : '; the keyset condition is only a filter, not an Index Cond') : ''}` +
      `${removed ? `; its filter skipped ${removed.toLocaleString('en-US')} rows` : ''}.`
  } else {
    sentence = 'Reads no index on tasks.'
  }
  return { sentence, indexes, seqScanOnTasks, removed }
}

/** The rows the statement would return without its LIMIT (the last parameter, by construction). */
async function countMatching (pool: pg.Pool, sql: string, params: unknown[]): Promise<number> {
  if (!sql.endsWith(`limit $${params.length}`)) throw new Error(`expected the statement to end with its limit: ${sql}`)
  const { rows } = await pool.query<{ n: string }>(`select count(*) as n from (${sql}) page`, [...params.slice(0, -1), 1e9])
  return Number(rows[0]!.n)
}

/** A task in `projectId` with 10 subtasks, each with 9 of its own: 100 descendants. */
async function insertTree (pool: pg.Pool, userId: string, projectId: string): Promise<{ root: string, descendants: number }> {
  const insert = async (title: string, parentId: string | null, depth: number) => (await pool.query<{ id: string }>(
    'insert into tasks (user_id, title, project_id, parent_id, depth) values ($1, $2, $3, $4, $5) returning id',
    [userId, title, projectId, parentId, depth])).rows[0]!.id
  const root = await insert('Plan the move', null, 0)
  let descendants = 0
  for (let i = 0; i < 10; i++) {
    const child = await insert(`Step ${i}`, root, 1)
    descendants++
    for (let j = 0; j < 9; j++) {
      await insert(`Step ${i}.${j}`, child, 2)
      descendants++
    }
  }
  return { root, descendants }
}

/** Moves the tree's root (with its subtasks) to each project of `projects` in turn, MOVES times. */
async function timeMoves (database: Database, userId: string, tree: { root: string, descendants: number }, projects: string[]): Promise<MoveTiming> {
  const moves = taskTree(database)
  const runs: number[] = []
  for (let i = 0; i < MOVES; i++) {
    const started = performance.now()
    await moves.move(userId, tree.root, { projectId: projects[i % projects.length]! }) // throws when refused
    runs.push(performance.now() - started)
  }
  return { descendants: tree.descendants, runs }
}

/** Single-row writes per timed run of `timeWrites`, and rounds over all variants (the median is kept). */
const WRITES_PER_RUN = 2_000
const WRITE_ROUNDS = 5

/**
 * One single-row write per user of `owners`, as requests make them, timed inside the server (no
 * network, no parsing): the INSERT of POST /tasks (the cap read with the user's row locked), then
 * the UPDATE of PATCH {completed: true} on each new task. Each write starts the change-log state
 * afresh, as each request's own transaction does, so each one pays the update of its user's row
 * (seq and count). One user per write: a row updated thousands of times in one transaction grows
 * a version chain every later update walks (measured: 900 µs an insert instead of ~150). Returns
 * microseconds per insert and per update. Runs in the caller's transaction, which rolls back: the
 * table is left as it was.
 */
const TIMED_WRITES = `create function pg_temp.timed_writes (owners uuid[], out insert_us float8, out update_us float8)
language plpgsql as $$
declare
  started timestamptz;
  n int := cardinality(owners);
  ids uuid[] := '{}';
  new_id uuid;
begin
  started := clock_timestamp();
  for i in 1..n loop
    perform set_config('taskbase.changes', '', true);
    insert into tasks as t (user_id, title, description, priority, due_at, tags, tag_keys, recurrence, due_local, reminders)
      select owners[i], 'Write cost ' || i, 'measured by npm run explain', 'none', null, '{}', '{}', null, null, '[]'
      where (select u.task_count from users u where u.id = owners[i] for no key update) < 1000000000
      returning t.id into new_id;
    ids := ids || new_id;
  end loop;
  insert_us := extract(epoch from clock_timestamp() - started) * 1e6 / n;
  started := clock_timestamp();
  for i in 1..n loop
    perform set_config('taskbase.changes', '', true);
    update tasks t set completed = true, completed_at = coalesce(t.completed_at, now()), version = t.version + 1, updated_at = now()
      where t.user_id = owners[i] and t.id = ids[i];
  end loop;
  update_us := extract(epoch from clock_timestamp() - started) * 1e6 / n;
end $$`

/** One thing a task write maintains, and how to leave it out for a run. */
interface WritePart { name: string, kind: 'index' | 'trigger', without: string }

interface WriteCost { part: WritePart | undefined, insertUs: number, updateUs: number }

/**
 * What each secondary index and optional trigger on tasks costs a single-row insert and update:
 * every variant (all in place, then each part left out in turn, inside a transaction that rolls
 * back) is timed WRITE_ROUNDS times round-robin, so that the machine's noise hits all alike; the
 * medians are kept. The change-log trigger (seq, count, position) is not optional and not measured.
 */
async function writeCosts (url: string): Promise<WriteCost[]> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await client.query(TIMED_WRITES)
    const { rows: writers } = await client.query<{ id: string }>(
      `insert into users (email, password_hash)
       select 'writer-' || n || '@example.com', 'not a password hash' from generate_series(1, $1::int) n returning id`, [WRITES_PER_RUN])
    const owners = writers.map((w) => w.id)
    const { rows: indexes } = await client.query<{ name: string }>(
      `select indexname as name from pg_indexes where tablename = 'tasks' and indexname <> 'tasks_pkey' order by indexname`)
    const { rows: triggers } = await client.query<{ name: string }>(
      `select tgname as name from pg_trigger where tgrelid = 'tasks'::regclass and not tgisinternal
       and tgname in ('tasks_webhook_outbox', 'tasks_schedule_reminders', 'tasks_reschedule_reminders') order by tgname`)
    const parts: Array<WritePart | undefined> = [
      undefined,
      ...indexes.map(({ name }): WritePart => ({ name, kind: 'index', without: `drop index ${name}` })),
      ...triggers.map(({ name }): WritePart => ({ name, kind: 'trigger', without: `alter table tasks disable trigger ${name}` })),
    ]
    const runs = new Map<WritePart | undefined, Array<{ insertUs: number, updateUs: number }>>(parts.map((part) => [part, []]))
    for (let round = 0; round < WRITE_ROUNDS; round++) {
      // Each round starts at another part, and each run on a vacuumed table: a run leaves the dead
      // rows of its rolled-back writes, which made every later run of a round slower (measured: the
      // first, with everything in place, came out the fastest of all).
      for (const part of [...parts.slice(round), ...parts.slice(0, round)]) {
        await client.query('vacuum tasks')
        await client.query('begin')
        try {
          if (part) await client.query(part.without)
          const { rows: [timed] } = await client.query<{ insert_us: number, update_us: number }>('select * from pg_temp.timed_writes($1)', [owners])
          runs.get(part)!.push({ insertUs: timed!.insert_us, updateUs: timed!.update_us })
        } finally {
          await client.query('rollback')
        }
      }
      console.log(`write costs: round ${round + 1} of ${WRITE_ROUNDS}`)
    }
    return parts.map((part) => ({
      part,
      insertUs: median(runs.get(part)!.map((r) => r.insertUs)),
      updateUs: median(runs.get(part)!.map((r) => r.updateUs)),
    }))
  } finally {
    await client.end()
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

interface MoveTiming { descendants: number, runs: number[] }

/** The table of `writeCosts`: what leaving each part out saves, against everything in place. */
function writeCostSection (out: string[], costs: WriteCost[]): void {
  const all = costs.find((c) => c.part === undefined)!
  const share = (saved: number, total: number) => `${saved.toFixed(1)} µs (${Math.round(100 * saved / total)}%)`
  out.push('## What a write pays for each index and trigger', '')
  out.push('Single-row writes, timed inside the server with each part left out in turn ' +
    `(bench/explain.ts, \`writeCosts\`): ${WRITES_PER_RUN.toLocaleString('en-US')} inserts as POST /tasks makes them, then an update of each as ` +
    `PATCH {completed: true} does, each write for another user and starting the change log afresh, as its own request's transaction would ` +
    `(into the same table of ${(MAIN_TASKS + OTHER_USERS * OTHER_TASKS).toLocaleString('en-US')} tasks and their indexes). Medians of ${WRITE_ROUNDS} ` +
    'rounds, all variants in turn within each round. One backend, no network, no concurrency: under concurrent writers an index also costs ' +
    'its share of page locks, so these are the least it costs. A difference within about 2 µs is noise on a shared machine.', '')
  out.push(`Everything in place: **${all.insertUs.toFixed(1)} µs per insert, ${all.updateUs.toFixed(1)} µs per update.**`, '')
  out.push('| left out | kind | insert saves | update saves |', '|---|---|--:|--:|')
  for (const c of costs) {
    if (!c.part) continue
    out.push(`| \`${c.part.name}\` | ${c.part.kind} | ${share(all.insertUs - c.insertUs, all.insertUs)} | ${share(all.updateUs - c.updateUs, all.updateUs)} |`)
  }
  out.push('')
}

function markdown (results: Explained[], meta: { version: string, seconds: number, generated: string, move: MoveTiming, writes?: WriteCost[], insertCost: string }): string {
  const out: string[] = []
  out.push('# EXPLAIN ANALYZE of the task list queries', '')
  out.push(`Generated by \`npm run explain\` (bench/explain.ts) on ${meta.generated}, ${meta.version}; regenerate rather than edit.`, '')
  out.push(`Data: ${MAIN_TASKS.toLocaleString('en-US')} tasks for the user whose lists are explained and ` +
    `${OTHER_TASKS.toLocaleString('en-US')} for each of ${OTHER_USERS} others ` +
    `(${(MAIN_TASKS + OTHER_USERS * OTHER_TASKS).toLocaleString('en-US')} rows, inserted with SQL in ${meta.seconds.toFixed(1)} s, then ANALYZE). ` +
    'Each statement is the one `taskQueries(db).list(userId, query)` in src/tasks/queries.ts sends, captured with its parameters by ' +
    'a recording database and run again as `EXPLAIN (ANALYZE, COSTS OFF, BUFFERS OFF)`. The limit is the default 20, so 21 rows ' +
    `are fetched (one more tells whether there is a next page); "matching tasks" counts the rows the filters let through, without the limit. Times are the median Execution Time of ${RUNS} runs after a warm-up. ` +
    `Each user has ${PROJECTS_PER_USER} projects holding nine tasks in ten; the tenth are in the inbox.`, '')
  const { descendants, runs } = meta.move
  out.push('## Moving a task with its subtasks', '')
  out.push(`\`POST /api/v1/tasks/{id}/move\` of a task with ${descendants} subtasks (10 children, 90 grandchildren) to another project, ` +
    `as \`taskTree(db).move\` in src/tasks/tree.ts runs it (one transaction: lock, checks, the task's new place, then every subtask in ` +
    `one UPDATE), ${runs.length} times back and forth: median ${median(runs).toFixed(1)} ms ` +
    `(all runs: ${runs.map((ms) => ms.toFixed(1)).join(', ')} ms), measured from the client side of the pool.`, '')
  if (meta.writes) writeCostSection(out, meta.writes)
  out.push(meta.insertCost.trimEnd(), '')
  out.push('## Summary', '')
  out.push('| # | query | index on tasks | matching tasks | execution ms |', '|--:|---|---|--:|--:|')
  results.forEach((r, i) => {
    const index = r.seqScanOnTasks ? '**Seq Scan**' : r.indexes.map((n) => `\`${n}\``).join(', ')
    out.push(`| ${i + 1} | ${r.case.title} | ${index} | ${r.matching.toLocaleString('en-US')} | ${r.executionMs.toFixed(3)} |`)
  })
  const bad = results.filter((r) => r.seqScanOnTasks)
  out.push('', bad.length === 0
    ? 'Every query reads tasks through an index; none does a Seq Scan on tasks.'
    : `**${bad.length} quer${bad.length === 1 ? 'y reads' : 'ies read'} tasks without an index:** ${bad.map((r) => r.case.title).join('; ')}.`, '')
  // An index walk in sort order with a filter costs what the planner guessed only if matches are
  // common; when they are rare it reads on until it has a page, at worst every task of the user.
  const wasteful = results.filter((r) => r.removed >= WASTEFUL_ROWS)
  if (wasteful.length > 0) {
    out.push(`Read and discarded ${WASTEFUL_ROWS.toLocaleString('en-US')} rows or more to fill one page: ` +
      wasteful.map((r) => `${r.case.title} (${r.removed.toLocaleString('en-US')} rows, ${r.executionMs.toFixed(1)} ms)`).join('; ') + '.', '')
  }
  results.forEach((r, i) => {
    out.push(`## ${i + 1}. ${r.case.title}`, '')
    out.push(`\`${r.case.request}\`: ${r.sentence} Execution time ${r.executionMs.toFixed(3)} ms.`, '')
    out.push('```sql', r.sql, `-- parameters: ${JSON.stringify(r.params)}`, '```', '')
    out.push('```', r.plan, '```', '')
  })
  return out.join('\n')
}

async function main (): Promise<void> {
  const rootUrl = adminUrl()
  const name = `taskbase_explain_${randomBytes(6).toString('hex')}`
  const url = new URL(rootUrl)
  url.pathname = `/${name}`
  let created = false
  const drop = async () => { if (created) { created = false; await admin(rootUrl, `drop database if exists ${name} with (force)`) } }
  process.once('SIGINT', () => { void drop().finally(() => process.exit(130)) })

  await admin(rootUrl, `create database ${name}`)
  created = true
  const pool = new pg.Pool({ connectionString: url.toString(), max: 2 })
  pool.on('error', () => { /* an idle connection dropped with the database at the end */ })
  try {
    const database = await openPostgres({ url: url.toString(), poolSize: 2 })
    await database.migrate()

    const started = performance.now()
    const { rows: users } = await pool.query<{ id: string }>(
      `insert into users (email, password_hash)
       select 'explain-' || n || '@example.com', 'not a password hash' from generate_series(0, $1::int) n
       returning id`, [OTHER_USERS])
    const [owner, ...others] = users.map((u) => u.id)
    const projectsOf = async (userId: string) => (await pool.query<{ id: string }>(
      `insert into projects (user_id, name) select $1, 'Project ' || n from generate_series(1, $2::int) n returning id`,
      [userId, PROJECTS_PER_USER])).rows.map((row) => row.id)
    const ownProjects = await projectsOf(owner!)
    await pool.query(INSERT_TASKS, [owner, MAIN_TASKS, ownProjects])
    for (const other of others) await pool.query(INSERT_TASKS, [other, OTHER_TASKS, await projectsOf(other)])
    const tree = await insertTree(pool, owner!, ownProjects[0]!)
    await pool.query('analyze')
    const seconds = (performance.now() - started) / 1000
    console.log(`inserted ${(MAIN_TASKS + OTHER_USERS * OTHER_TASKS).toLocaleString('en-US')} tasks and analyzed in ${seconds.toFixed(1)} s`)

    // The code path the API runs, on a database that records each statement sent.
    const sent: Array<{ sql: string, params: unknown[] }> = []
    const recording: Database = {
      ...database,
      query: (statement, values = []) => {
        sent.push({ sql: statement.text, params: [...values] })
        return database.query(statement, values)
      },
    }
    const tasks = taskQueries(recording, { maxTasksPerUser: Number.MAX_SAFE_INTEGER })

    const cursorAt = async (sort: Sort, orderBy: string): Promise<string> => {
      const { rows } = await pool.query<{ id: string }>(
        `select id from tasks where user_id = $1 order by ${orderBy} offset $2 limit 1`, [owner, LATER_PAGE_ROW - 1])
      const task = await tasks.find(owner!, rows[0]!.id)
      return encodeCursor({ sort, value: sortValue(sort, task!), id: task!.id })
    }

    const dueBefore = new Date(Date.now() - 90 * 24 * 60 * 60 * 1000).toISOString()
    const results: Explained[] = []
    for (const c of cases(dueBefore, { projectId: ownProjects[1]!, parentId: tree.root })) {
      const query = c.laterPage ? { ...c.query, cursor: await cursorAt(c.laterPage.sort, c.laterPage.orderBy) } : c.query
      sent.length = 0
      await tasks.list(owner!, query) // also the warm-up run
      if (sent.length !== 1) throw new Error(`${c.title}: expected list() to send one statement, it sent ${sent.length}`)
      const { sql, params } = sent[0]!
      const matching = await countMatching(pool, sql, params)
      const times: number[] = []
      let plan = ''
      for (let run = 0; run < RUNS; run++) {
        const { rows } = await pool.query<{ 'QUERY PLAN': string }>(`explain (analyze, costs off, buffers off) ${sql}`, params)
        const lines = rows.map((r) => r['QUERY PLAN'])
        times.push(Number(/Execution Time: ([\d.]+) ms/.exec(lines.at(-1) ?? '')?.[1] ?? Number.NaN))
        plan = lines.join('\n')
      }
      const described = describe(plan, query.cursor !== undefined)
      results.push({ case: c, sql, params, matching, plan, executionMs: median(times), ...described })
      console.log(`${described.seqScanOnTasks ? 'SEQ SCAN' : 'ok      '} ${median(times).toFixed(3).padStart(8)} ms  ${c.title}: ${described.indexes.join(', ') || '-'}`)
    }

    const move = await timeMoves(database, owner!, tree, [ownProjects[2]!, ownProjects[0]!])
    console.log(`moved a task with ${tree.descendants} subtasks: median ${median(move.runs).toFixed(1)} ms`)

    const writes = process.env.EXPLAIN_WRITES === '0' ? undefined : await writeCosts(url.toString())

    const { rows: [version] } = await pool.query<{ server_version: string }>('show server_version')
    const markdownText = markdown(results, {
      version: `PostgreSQL ${version!.server_version}`,
      seconds,
      generated: new Date().toISOString().slice(0, 10),
      move,
      writes,
      insertCost: await readFile(INSERT_COST, 'utf8'),
    })
    await writeFile(OUTPUT, markdownText)
    console.log(`wrote ${OUTPUT}`)
    const bad = results.filter((r) => r.seqScanOnTasks)
    if (bad.length > 0) {
      console.error(`${bad.length} list quer${bad.length === 1 ? 'y reads' : 'ies read'} tasks with a Seq Scan: ${bad.map((r) => r.case.title).join('; ')}`)
      process.exitCode = 1
    }
    await database.close()
  } finally {
    await pool.end()
    await drop()
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error)
  process.exitCode = 1
})
