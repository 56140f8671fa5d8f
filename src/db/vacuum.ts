/**
 * When the embedded database vacuums itself. PGlite runs PostgreSQL in single-user mode, where no
 * autovacuum worker runs and the statistics it would go by are never collected (measured on PGlite
 * 0.5.16: `pg_stat_user_tables` still said 0 live and 0 dead rows after 20,000 inserts and updates).
 * Left alone, a long-lived data directory keeps every dead row version and index entry, and the
 * planner never gets statistics. So the database thread does autovacuum's job with its own count of
 * the rows that statements changed, on autovacuum's rule: a base number of rows plus a share of the
 * rows there are (PostgreSQL's defaults are 50 and 20%; a VACUUM here stops every request, so the base
 * is larger and a pause between runs is kept).
 */
export interface VacuumPolicy {
  /** Rows changed before a VACUUM (ANALYZE) is due, whatever the size of the database. */
  rows: number
  /** And this share of the rows the last VACUUM counted. */
  share: number
  /** At least this long between two runs, in ms. */
  intervalMs: number
  /** A due run waits for a moment without requests or open transactions, at most this long, in ms. */
  idleWaitMs: number
}

export const VACUUM_POLICY: VacuumPolicy = { rows: 2_000, share: 0.2, intervalMs: 60_000, idleWaitMs: 30_000 }

/** How long a run waits, at least, from the moment it became due: a burst of writes ends first. */
export const VACUUM_SETTLE_MS = 1_000

/** Whether `changed` rows since the last run, of `counted` rows then, make a run due. */
export function vacuumDue (policy: VacuumPolicy, changed: number, counted: number): boolean {
  return changed >= policy.rows + policy.share * counted
}

/** The statement: every table of the database, dead rows reclaimed and statistics taken. */
export const VACUUM = 'VACUUM (ANALYZE)'

/** How many rows the tables hold, as the last VACUUM counted them (PostgreSQL's reltuples). */
export const COUNTED_ROWS = "select coalesce(sum(greatest(reltuples, 0)), 0)::float8 as rows from pg_class where relkind = 'r'"
