import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Database } from '../db/client.js'
import { queryOne, statement } from '../db/sql.js'
import { rateLimited, type Problem } from '../http/problem.js'
import { errorResponses } from '../http/schemas.js'

/** Where a key stands in its window after a hit (or a look). */
export interface LimitState {
  count: number
  /** Until the window ends, by the database's clock (every process shares it), at least 1. */
  secondsLeft: number
}

/** A limit applied to one key: the state, and whether this request goes over. */
export interface Decision {
  limit: number
  remaining: number
  secondsLeft: number
  exceeded: boolean
}

const SECONDS_LEFT = 'greatest(1, ceil(extract(epoch from r.reset_at - now())))::int as "secondsLeft"'
/**
 * Counts $3[i] hits on key $1[i], for every i, in one statement (one round trip); a window that has
 * ended restarts. Keys must be distinct: a multi-row INSERT ... ON CONFLICT cannot touch one row twice.
 */
const HIT = statement(`insert into rate_limits as r (key, count, reset_at)
  select k, n, now() + $2::int * interval '1 second' from unnest($1::text[], $3::int[]) as h (k, n)
  on conflict (key) do update set
    count = case when r.reset_at <= now() then excluded.count else r.count + excluded.count end,
    reset_at = case when r.reset_at <= now() then excluded.reset_at else r.reset_at end
  returning r.key, r.count, ${SECONDS_LEFT}`)
const PEEK = statement(`select r.key, r.count, ${SECONDS_LEFT} from rate_limits r
  where r.key = any($1::text[]) and r.reset_at > now()`)
/** Takes back hits counted on keys whose window is still the same one. */
const REFUND = statement(`update rate_limits r set count = greatest(0, r.count - $2::int)
  where r.key = any($1::text[]) and r.reset_at > now()`)
const PRUNE = statement('with pruned as (delete from rate_limits where reset_at <= now() returning 1) select count(*)::int as count from pruned')

/**
 * Fixed-window counters in PostgreSQL, so every process on one database enforces one limit.
 * A window that has ended restarts at the next hit; expired rows are harmless, and `prune` (run
 * by the server's hourly timer, never by a request) only keeps the table small.
 */
export function rateLimitQueries (db: Database) {
  const states = (rows: Array<LimitState & { key: string }>) => new Map(rows.map(({ key, ...state }) => [key, state]))
  return {
    /** Counts `by` hits (one by default; or one count per key) on each key, in one statement. */
    hit: async (keys: string[], windowSeconds: number, by: number | number[] = 1): Promise<Map<string, LimitState>> =>
      states(await db.query(HIT, [keys, windowSeconds, typeof by === 'number' ? keys.map(() => by) : by])),

    /** The live windows among `keys`, without counting: keys with no live window are absent. */
    peek: async (keys: string[]): Promise<Map<string, LimitState>> => states(await db.query(PEEK, [keys])),

    /** Takes back `by` hits on each key (a failure that turned out not to be one). */
    refund: async (keys: string[], by = 1): Promise<void> => { await db.query(REFUND, [keys, by]) },

    /** Deletes the rows whose window has ended; returns how many. */
    prune: async (): Promise<number> => (await queryOne<{ count: number }>(db, PRUNE))?.count ?? 0,
  }
}

export type RateLimitQueries = ReturnType<typeof rateLimitQueries>

/** What a limit decides for a count already taken (`hit`) or looked at (`peek`). */
export function decide (limit: number, state: LimitState | undefined,
  { counted, windowSeconds }: { counted: boolean, windowSeconds: number }): Decision {
  const count = state?.count ?? 0
  // No live window: the next hit would start one.
  const secondsLeft = state?.secondsLeft ?? windowSeconds
  // A hit has counted this request already: the limit-th request is the last one allowed. A peek
  // asks whether one more may start.
  const exceeded = counted ? count > limit : count >= limit
  return { limit, remaining: Math.max(0, limit - count), secondsLeft, exceeded }
}

/**
 * Sets RateLimit-Limit/-Remaining/-Reset, unless a limit closer to running out already has:
 * a client sees the limit that will stop it first.
 */
export function setLimitHeaders (reply: FastifyReply, decision: Decision): void {
  const shown = Number(reply.getHeader('ratelimit-remaining') ?? Infinity)
  if (decision.remaining > shown) return
  reply.header('ratelimit-limit', String(decision.limit))
  reply.header('ratelimit-remaining', String(decision.remaining))
  reply.header('ratelimit-reset', String(decision.secondsLeft))
}

/** Which limit refused a request, as the `limit` label of the rate-limited counter. */
export type LimitName = 'login_failures' | 'auth' | 'api'

export type OnRateLimited = (name: LimitName) => void


/** Counts one hit on a key; what `limitRequests` needs of a counter. */
export interface HitCounter {
  /** Counts the hit in memory and returns where the key stands, when that is allowed; else undefined. */
  hitInMemory? (key: string): LimitState | undefined
  hit (key: string): Promise<LimitState>
  /** Adds what is still only counted in memory to the shared counters; stops the timer. */
  close (): Promise<void>
}

/**
 * A limit checked on every request (the API's) cost a database write per request: measured with
 * `BENCH_COUNT_API_LIMIT=1 npm run bench:api`, GET /tasks/:id fell from 992 to 624 req/s on
 * PostgreSQL and from 562 to 295 on PGlite. So while a key is far from its limit (at most half used,
 * as last read from the database) its hits are counted in memory and added to the shared counter
 * every `flushMs`; nearer the limit, and for a key not seen yet, every hit goes to the database at
 * once. Near the limit it is then exact across processes; far from it, each process's view of the
 * others lags by at most one flush.
 */
export function batchedCounter (limits: RateLimitQueries, limit: number, windowSeconds: number, flushMs = 250): HitCounter {
  /**
   * Per key: `count` as the database last answered, `sending` hits a flush has sent and not yet
   * heard back about, `pending` hits counted in memory only. A key stands at their sum.
   */
  const known = new Map<string, { count: number, expiresAt: number, sending: number, pending: number }>()

  /** Adds `counts[i]` hits to `keys[i]` in the shared counters and remembers where each stands. */
  const store = async (keys: string[], counts: number[]): Promise<Map<string, LimitState>> => {
    const states = await limits.hit(keys, windowSeconds, counts)
    const now = Date.now()
    for (const [key, state] of states) {
      const entry = known.get(key)
      const expiresAt = now + state.secondsLeft * 1000
      // Hits counted in memory while the statement ran stay pending.
      if (entry) Object.assign(entry, { count: state.count, expiresAt })
      else known.set(key, { count: state.count, expiresAt, sending: 0, pending: 0 })
    }
    return states
  }

  /** Every key's pending hits in one statement: one round trip per flush, however many users. */
  const flush = async () => {
    const now = Date.now()
    const keys: string[] = []
    const counts: number[] = []
    for (const [key, entry] of known) {
      if (entry.pending > 0) {
        keys.push(key)
        counts.push(entry.pending)
        entry.sending = entry.pending
        entry.pending = 0
      } else if (entry.expiresAt <= now) {
        known.delete(key)
      }
    }
    if (keys.length === 0) return
    try {
      await store(keys, counts)
    } catch {
      // The database is away: keep them for the next flush.
      for (const key of keys) { const entry = known.get(key); if (entry) entry.pending += entry.sending }
    } finally {
      for (const key of keys) { const entry = known.get(key); if (entry) entry.sending = 0 }
    }
  }
  let flushing: Promise<void> | undefined
  const timer = setInterval(() => { flushing ??= flush().finally(() => { flushing = undefined }) }, flushMs)
  timer.unref()

  const hitInMemory = (key: string): LimitState | undefined => {
    const now = Date.now()
    const entry = known.get(key)
    if (!entry || entry.expiresAt <= now) return undefined
    const count = entry.count + entry.sending + entry.pending + 1
    if (count > limit / 2) return undefined
    entry.pending++
    return { count, secondsLeft: Math.max(1, Math.ceil((entry.expiresAt - now) / 1000)) }
  }

  return {
    hitInMemory,
    async hit (key) {
      const counted = hitInMemory(key)
      if (counted) return counted
      // Near the limit the answer must be exact: let a flush in flight land first, so the count the
      // database returns holds every hit sent and none is counted twice.
      await flushing
      const entry = known.get(key)
      const by = (entry?.pending ?? 0) + 1
      if (entry) entry.pending = 0
      return (await store([key], [by])).get(key)!
    },
    async close () {
      clearInterval(timer)
      await flushing
      await flush().catch(() => {})
    },
  }
}

export interface RequestLimit {
  name: LimitName
  /** Requests per window; 0 means this limit is off and nothing is registered. */
  limit: number
  windowSeconds: number
  /** The counter a request belongs to, e.g. `api:user:<id>`. */
  key (request: FastifyRequest): string
  detail: string
  /** Counts the hits; by default each goes to the database at once. */
  counter?: HitCounter
}

/**
 * Counts `more` requests beyond the one the hook counted, for a request that carries several (a
 * JSON-RPC batch of MCP calls); the 429 to answer when that goes past the limit.
 */
export type CountMore = (request: FastifyRequest, reply: FastifyReply, more: number) => Promise<Problem | undefined>

/**
 * Counts every request of `scope` (and its children) against one limit, in an onRequest hook
 * registered after any guard already in the scope, so `key` may use `request.userId`. The routes
 * document the 429.
 */
export function limitRequests (scope: FastifyInstance, limits: RateLimitQueries, onLimited: OnRateLimited,
  { name, limit, windowSeconds, key, detail, counter }: RequestLimit): CountMore {
  if (limit === 0) return async () => undefined
  const hit = counter
    ? (k: string) => counter.hit(k)
    : async (k: string) => (await limits.hit([k], windowSeconds)).get(k)
  scope.addHook('onRoute', (route) => {
    const schema = route.schema as { response?: Record<string, unknown> } | undefined
    if (schema?.response && !schema.response[429]) {
      route.schema = { ...schema, response: { ...schema.response, ...errorResponses(429) } } as typeof route.schema
    }
  })
  const apply = (state: LimitState | undefined, reply: FastifyReply): Problem | undefined => {
    const decision = decide(limit, state, { counted: true, windowSeconds })
    if (decision.exceeded) {
      onLimited(name)
      return rateLimited(detail, decision)
    }
    setLimitHeaders(reply, decision)
    return undefined
  }
  // A callback hook, so that a hit counted in memory (the usual case) costs no promise at all: the
  // API limit ran on every request and cost 5-6% of the throughput as an async hook.
  scope.addHook('onRequest', (request, reply, done) => {
    const k = key(request)
    const counted = counter?.hitInMemory?.(k)
    if (counted) {
      done(apply(counted, reply))
      return
    }
    hit(k).then((state) => done(apply(state, reply)), done)
  })
  return async (request, reply, more) => {
    const k = key(request)
    let state: LimitState | undefined
    if (counter) {
      for (let i = 0; i < more; i++) state = await counter.hit(k)
    } else if (more > 0) {
      state = (await limits.hit([k], windowSeconds, more)).get(k)
    }
    return more > 0 ? apply(state, reply) : undefined
  }
}
