import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { badRequest, syncExpired } from '../http/problem.js'

/**
 * A position in one user's change log. Delta: the client has everything up to `seq`. A first sync
 * in progress reads the live projects, then the live tasks, by seq; once both are done it goes on as
 * a delta from `resumeAt`, the log position read before the last page of projects (so a project
 * changed while the tasks were read is sent again, not lost).
 */
export type SyncPosition =
  | { seq: number }
  | { phase: 'projects', seq: number }
  | { phase: 'tasks', seq: number, resumeAt: number }

interface Minted { position: SyncPosition, mintedAt: number }

/**
 * Cursors are opaque to clients and bound to their user by an HMAC: a cursor edited by hand, or
 * minted for someone else, is refused (400) before it reaches a query. Each also names the secret it
 * was signed with (a digest, `keyId`): one signed with a secret the server no longer has (JWT_SECRET
 * rotated, the generated one lost) verified once and never will again, a 410 like an expired cursor,
 * so that clients start over instead of failing for ever.
 */
export function syncCursors (secret: Uint8Array, retentionMs: number) {
  const mac = (userId: string, payload: string) =>
    createHmac('sha256', secret).update(`sync:${userId}:${payload}`).digest().subarray(0, 16)
  const keyId = createHash('sha256').update('taskbase sync cursor key').update(secret).digest('base64url').slice(0, 8)

  return {
    mint (userId: string, position: SyncPosition): string {
      const now = Date.now()
      const fields = !('phase' in position)
        ? ['d', position.seq, now, null, keyId]
        : position.phase === 'projects' ? ['p', position.seq, now, null, keyId] : ['t', position.seq, now, position.resumeAt, keyId]
      const payload = Buffer.from(JSON.stringify(fields)).toString('base64url')
      return `${payload}.${mac(userId, payload).toString('base64url')}`
    },

    /**
     * The position, or a 400 for a cursor that is not this user's, or a 410 for one older than the
     * change log's retention (the client starts over without `since`). `floorSeq`: the highest seq
     * whose tombstone was pruned.
     */
    read (userId: string, cursor: string, floorSeq: number, parameter = 'since'): Minted {
      const invalid = () => badRequest('The sync cursor is not valid for this user',
        [{ path: `query.${parameter}`, message: 'is not a cursor this API gave you' }])
      const [payload, signature, extra] = cursor.split('.')
      if (!payload || !signature || extra !== undefined) throw invalid()
      let fields: unknown
      try {
        fields = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'))
      } catch {
        throw invalid()
      }
      if (!Array.isArray(fields)) throw invalid()
      const [mode, seq, mintedAt, resumeAt, signedWith] = fields as [string, number, number, number | null | undefined, string | undefined]
      // Cursors minted before they named their key (issue 16) are checked against the current one.
      if (signedWith !== undefined && signedWith !== keyId) throw syncExpired()
      const expected = mac(userId, payload)
      const given = Buffer.from(signature, 'base64url')
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalid()
      // 'f': a first sync paging by task id, from before the change log moved onto the rows
      // (migration 0008). It cannot be continued as it was; starting over loses nothing.
      const position: SyncPosition = mode === 'p' || mode === 'f'
        ? { phase: 'projects', seq: mode === 'f' ? 0 : seq }
        : mode === 't' ? { phase: 'tasks', seq, resumeAt: resumeAt ?? 0 } : { seq }
      // A first sync in progress has missed nothing pruned: it reads live rows.
      if (Date.now() - mintedAt > retentionMs || (!('phase' in position) && seq < floorSeq)) {
        throw syncExpired()
      }
      return { position, mintedAt }
    },
  }
}

export type SyncCursors = ReturnType<typeof syncCursors>
