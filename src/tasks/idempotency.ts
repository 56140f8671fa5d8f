import { createHash } from 'node:crypto'
import { queryOne, statement, type Sql } from '../db/sql.js'
import { idempotencyKeyReused } from '../http/problem.js'

/**
 * Idempotency keys of `POST /tasks` (kept 24 hours): a retry with the same key and body gets the
 * first answer back; the same key with another body is a 422.
 */

const CLAIM = statement(`insert into idempotency_keys as k (user_id, key, request_hash, response_status, response_body)
  values ($1, $2, $3, 0, '{}') on conflict (user_id, key) do update
  set request_hash = excluded.request_hash, response_status = 0, response_body = '{}', created_at = now()
  where k.created_at < now() - interval '24 hours' returning k.key`)
const FIND = statement(`select request_hash as "requestHash", response_status as "responseStatus",
  response_body as "responseBody" from idempotency_keys where user_id = $1 and key = $2`)
const STORE_ANSWER = statement('update idempotency_keys set response_status = $3, response_body = $4 where user_id = $1 and key = $2')
const PRUNE = statement(`with pruned as (delete from idempotency_keys where created_at < now() - interval '24 hours' returning 1)
  select count(*)::int as count from pruned`)

/** A digest of the body with keys sorted, so a retry that reorders fields is still the same request. */
export function requestHash (body: unknown): string {
  const canonical = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(canonical)
    if (value !== null && typeof value === 'object') {
      return Object.fromEntries(Object.keys(value).sort().map((k) => [k, canonical((value as Record<string, unknown>)[k])]))
    }
    return value
  }
  return createHash('sha256').update(JSON.stringify(canonical(body))).digest('hex')
}

export interface Answer<T> {
  status: number
  body: T
  /** True when this is the stored answer of an earlier request with the key. */
  replayed: boolean
}

/**
 * Runs `create` once per (user, key), in the transaction `tx`, and stores its answer with the key.
 * Racing requests with one key serialize on the key's primary key: the second waits for the first
 * to commit, then replays its answer. A key older than 24 hours is taken over as if it were new.
 */
export async function createOnce<T> (tx: Sql, userId: string, key: string, hash: string, create: () => Promise<T>): Promise<Answer<T>> {
  if (await queryOne(tx, CLAIM, [userId, key, hash])) {
    const body = await create()
    await tx.query(STORE_ANSWER, [userId, key, 201, JSON.stringify(body)])
    return { status: 201, body, replayed: false }
  }
  const first = await queryOne<{ requestHash: string, responseStatus: number, responseBody: T }>(tx, FIND, [userId, key])
  if (!first || first.requestHash !== hash) throw idempotencyKeyReused()
  return { status: first.responseStatus, body: first.responseBody, replayed: true }
}

/** Drops idempotency keys past their 24 hours. Run from a timer, never inside a request. */
export async function pruneIdempotencyKeys (sql: Sql): Promise<number> {
  return (await queryOne<{ count: number }>(sql, PRUNE))?.count ?? 0
}
