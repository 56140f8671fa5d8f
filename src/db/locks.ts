import { statement } from './sql.js'

/**
 * One user's moves (of tasks and of projects) take turns, for the length of their transaction: a
 * move reads its neighbours and the tree around it, and two at once could each act on what the
 * other is changing (and, between them, make a cycle).
 */
export const LOCK_USER_MOVES = statement('select pg_advisory_xact_lock(1703, hashtext($1)) as locked')
/**
 * Taken by a subtask's creation: several can run at once, but not while a move runs, which could
 * change the parent's project or depth between the read and the insert.
 */
export const SHARE_USER_MOVES = statement('select pg_advisory_xact_lock_shared(1703, hashtext($1)) as locked')
