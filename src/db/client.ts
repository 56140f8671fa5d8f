/**
 * The database, whichever it is: the importers' one entry point. `database.ts` holds what both
 * drivers implement; `postgres.ts` (node-postgres, with DATABASE_URL) and `embedded.ts` (PGlite in a
 * worker thread) each implement it and import neither this file nor each other.
 */
export type { Database, ListenHandlers, PoolStats, WarnLog } from './database.js'
export { openEmbedded, startEmbedded } from './embedded.js'
export { LISTEN_APPLICATION_NAME, openPostgres, type PostgresOptions } from './postgres.js'
