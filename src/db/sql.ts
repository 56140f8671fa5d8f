import { createHash } from 'node:crypto'

/**
 * A SQL statement: its text, and the name it is prepared under on a server connection. Queries are
 * written as SQL text once, at module load or once per query shape, never rebuilt per request: an ORM
 * building the same text on every call cost ~16% of the server's CPU (measured with --cpu-prof on
 * GET /tasks, issue 10).
 */
export interface Statement {
  readonly name: string
  readonly text: string
}

/** Anything that runs statements: the database, or one transaction on it. */
export interface Sql {
  /** The rows of `statement` with `values` as its $1, $2, ...; columns as named by the SQL. */
  query<R = Record<string, unknown>>(statement: Statement, values?: readonly unknown[]): Promise<R[]>
}

/** Bounds the cache below: query shapes are few (filters x sorts), but never trust that for memory. */
const MAX_CACHED = 5_000
const cache = new Map<string, Statement>()

/**
 * The statement of `text`, named by a digest of the text so that one text has one name on every
 * connection and process. Dynamic queries (the task list's filters) call this per request: after
 * the first call per shape it is a map lookup.
 */
export function statement (text: string): Statement {
  let found = cache.get(text)
  if (found === undefined) {
    found = { name: `tb_${createHash('sha256').update(text).digest('base64url').slice(0, 20)}`, text }
    if (cache.size < MAX_CACHED) cache.set(text, found)
  }
  return found
}

/** The one row of a statement that returns at most one, or undefined. */
export async function queryOne<R> (sql: Sql, s: Statement, values?: readonly unknown[]): Promise<R | undefined> {
  const rows = await sql.query<R>(s, values)
  return rows[0]
}
