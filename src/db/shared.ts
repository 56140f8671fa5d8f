import { fileURLToPath } from 'node:url'
import { timeFromPostgres } from './timestamps.js'

/** What both drivers share: where the migrations are, and how values come back. */

// Resolves to <root>/src/db/migrations from both src/db (tsx) and dist/db (built).
export const migrationsFolder = fileURLToPath(new URL('../../src/db/migrations', import.meta.url))

/** NOTIFY $1 once for each payload in $2. */
export const NOTIFY_EACH = 'select pg_notify($1, payload) from unnest($2::text[]) as payload'

const TIMESTAMPTZ = 1184
const INT8 = 20

/**
 * Text-format parsers by type OID: timestamps as the exact ISO text we send (see timestamps.ts),
 * bigints (change-log seqs, far below 2^53) as numbers.
 */
export const typeParsers: Record<number, (text: string) => unknown> = {
  [TIMESTAMPTZ]: timeFromPostgres,
  [INT8]: Number,
}
