import { StoredSecretError } from './auth/secret.js'
import { ConfigError } from './config.js'
import { DataDirLockedError } from './db/data-dir-lock.js'

/**
 * The exit code of a start refused for what the operator must fix: the configuration, a data
 * directory in use, a kept signing secret too short. Anything else that stops a start (a database
 * that cannot be reached) exits 1, as a crash does.
 */
export const EXIT_REFUSED = 2

/**
 * Ends a process that could not start (the server, `npm run db:migrate`). A refusal prints its
 * message alone, which says what to fix: a stack trace would only bury it. Anything else prints
 * `failure: <cause>`.
 */
export function exitAfterFailedStart (error: unknown, failure: string): never {
  if (error instanceof ConfigError || error instanceof DataDirLockedError || error instanceof StoredSecretError) {
    console.error(error.message)
    process.exit(EXIT_REFUSED)
  }
  console.error(`${failure}:`, error instanceof Error ? error.message : error)
  process.exit(1)
}
