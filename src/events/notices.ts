/**
 * What travels on the one NOTIFY channel every process LISTENs to. Payloads start with the user's id,
 * so a process wakes only that user's streams: `<userId>:changed` (the user's change log grew; sent
 * after the write commits, see feed.ts), `<userId>:deleted` (the account is gone, sent by a trigger),
 * and the session notices below, sent in the transaction that revokes. `<userId>:<seq>` is what the
 * triggers sent before migration 0007, still understood.
 */
export const CHANGES_CHANNEL = 'taskbase_changes'

export const changedNotice = (userId: string) => `${userId}:changed`

/** Every session of the user ended (password change, refresh-token reuse); with `sessionId`, that one (logout). */
export const sessionsNotice = (userId: string, sessionId?: string) =>
  sessionId === undefined ? `${userId}:sessions` : `${userId}:session:${sessionId}`

export type Notice =
  | { userId: string, kind: 'change' }
  | { userId: string, kind: 'deleted' }
  | { userId: string, kind: 'sessions', sessionId?: string }

/** The notice of a payload, or undefined for one this version does not know (a newer process's). */
export function parseNotice (payload: string): Notice | undefined {
  const [userId, what, sessionId] = payload.split(':')
  if (!userId || what === undefined) return undefined
  if (what === 'deleted') return { userId, kind: 'deleted' }
  if (what === 'sessions') return { userId, kind: 'sessions' }
  if (what === 'session' && sessionId) return { userId, kind: 'sessions', sessionId }
  if (what === 'changed' || /^[0-9]+$/.test(what)) return { userId, kind: 'change' }
  return undefined
}
