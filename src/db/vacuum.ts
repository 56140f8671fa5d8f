/**
 * When the embedded database vacuums itself. PGlite runs PostgreSQL in single-user mode, where no
 * autovacuum worker runs and the statistics it would go by are never collected (measured on PGlite
 * 0.5.16: `pg_stat_user_tables` still said 0 live and 0 dead rows after 20,000 inserts and updates).
 * Left alone, a long-lived data directory keeps every dead row version and index entry, and the
 * planner never gets statistics. So the database thread does autovacuum's job with its own count of
 * the rows that statements changed, on autovacuum's rule: a base number of rows plus a share of the
 * rows there are (PostgreSQL's defaults are 50 and 20%; a VACUUM here stops every request, so the base
 * is larger and a pause between passes is kept).
 */
export interface VacuumPolicy {
  /** Rows changed before a pass is due, whatever the size of the database. */
  rows: number
  /** And this share of the rows the last pass counted. */
  share: number
  /** At least this long between two passes, in ms. */
  intervalMs: number
  /** The server is quiet once it has had no request for this long, in ms: a pass then cleans the indexes too. */
  quietMs: number
  /** Indexes left to clean are cleaned after this long at most, quiet or not, in ms. */
  indexWaitMs: number
}

export const VACUUM_POLICY: VacuumPolicy = { rows: 2_000, share: 0.2, intervalMs: 60_000, quietMs: 5_000, indexWaitMs: 3_600_000 }

/** How long a pass waits, at least, from the moment it became due: a burst of writes ends first. */
export const VACUUM_SETTLE_MS = 1_000

/** Whether `changed` rows since the last pass, of `counted` rows then, make a pass due. */
export function vacuumDue (policy: VacuumPolicy, changed: number, counted: number): boolean {
  return changed >= policy.rows + policy.share * counted
}

/**
 * A pass is a list of statements, each run on its own, and the requests that arrived while one ran
 * are answered before the next: every request waits while a statement runs, so no statement may be
 * long. One `VACUUM (ANALYZE)` of the whole database took 0.4-1.6 s in a run of the speed yardstick
 * (issue 21), and its parts, on a copy of that database (~110,000 tasks, after 20,000 inserts and
 * 5,000 updates): the heap of `tasks` 106 ms, its 14 indexes 470 ms, `ANALYZE tasks` 371 ms with
 * PostgreSQL's default statistics target and 94 ms with the 30 the embedded database is set to
 * (embedded-worker.ts), the pending lists of the two GIN indexes 20 and 50 ms, every other table 1-13 ms.
 *
 * Cleaning an index reads all of it, so it grows with the database, not with what changed. Unless
 * the server is quiet it is left out (`INDEX_CLEANUP OFF`): dead rows are cut down to the line
 * pointers the indexes still point at, and the GIN pending lists are merged by their own statement.
 * A quiet pass cleans the indexes; one that waited `indexWaitMs` for a quiet moment cleans them anyway.
 */
export function vacuumSteps (tables: readonly string[], ginIndexes: readonly string[], cleanIndexes: boolean): string[] {
  const steps = cleanIndexes ? [] : ginIndexes.map((index) => `select gin_clean_pending_list(${literal(index)}::regclass)`)
  for (const table of tables) {
    steps.push(cleanIndexes ? `VACUUM ${table}` : `VACUUM (INDEX_CLEANUP OFF) ${table}`, `ANALYZE ${table}`)
  }
  // The catalogs too (and every table's oldest transaction ids frozen, which single-user PostgreSQL
  // needs as much as any): the tables above are done, so this is short.
  if (cleanIndexes) steps.push('VACUUM')
  return steps
}

const literal = (text: string) => `'${text.replaceAll("'", "''")}'`

/** The application's tables, largest first, and its GIN indexes, as names that can be put in a statement. */
const TABLES = "select c.oid::regclass::text as name from pg_class c where c.relkind = 'r' and c.relnamespace = 'public'::regnamespace order by c.relpages desc, c.relname"
const GIN_INDEXES = "select c.oid::regclass::text as name from pg_class c join pg_am a on a.oid = c.relam where c.relkind = 'i' and a.amname = 'gin' and c.relnamespace = 'public'::regnamespace order by c.relname"

/** The steps of a pass over the database as it is now; `names` runs a query and gives its `name` column. */
export async function passSteps (names: (sql: string) => Promise<string[]>, cleanIndexes: boolean): Promise<string[]> {
  return vacuumSteps(await names(TABLES), await names(GIN_INDEXES), cleanIndexes)
}

/** How many rows the tables hold, as the last VACUUM counted them (PostgreSQL's reltuples). */
export const COUNTED_ROWS = "select coalesce(sum(greatest(reltuples, 0)), 0)::float8 as rows from pg_class where relkind = 'r'"
