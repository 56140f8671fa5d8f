import type { FastifyReply } from 'fastify'
import { rateLimited } from '../http/problem.js'
import { decide, setLimitHeaders, type OnRateLimited, type RateLimitQueries } from './rate-limit.js'

export interface LoginLimitOptions {
  /** Failed password checks allowed per account and per client address in one window; 0 switches this off. */
  failures: number
  windowSeconds: number
}

/** One password check under way: it failed unless `succeeded` is called. */
export interface PasswordAttempt {
  /** The password was right: the slot it took is given back (only failures count). */
  succeeded (): Promise<void>
}

/**
 * Failed password checks, counted per account and per client address. Only failures count; once
 * either is over the limit, the check is refused with a 429 before the password is even looked at,
 * until the window ends: never a permanent lockout.
 *
 * A slot is claimed atomically before the (slow) Argon2 check and given back on success: N guesses
 * in parallel get at most the limit's worth of checks, the rest 429 (reading the counter first and
 * counting the failure after let 60 parallel guesses through a limit of 10, issue 11).
 */
export interface LoginLimit {
  /** Claims a slot on every key; throws the 429 when one of them is already at the limit. */
  attempt (keys: LoginKey[], reply: FastifyReply): Promise<PasswordAttempt>
}

/**
 * What a password check is counted against. An account is keyed by its user when the email found one
 * (so every spelling the database matches to it, `İ` for `I` included, shares one counter), else by
 * the email as typed, lower-cased, so an unknown address is limited exactly like a known one and the
 * limit reveals nothing.
 */
export type LoginKey =
  | { user: string }
  | { email: string }
  | { address: string }

const keyOf = (key: LoginKey) => 'user' in key
  ? `login:user:${key.user}`
  : 'email' in key ? `login:email:${key.email.trim().toLowerCase()}` : `login:ip:${key.address}`

const TOO_MANY = 'Too many failed password checks for this account or from this address; try again after the Retry-After seconds'

export function loginLimit (limits: RateLimitQueries, { failures, windowSeconds }: LoginLimitOptions,
  onLimited: OnRateLimited): LoginLimit | undefined {
  if (failures === 0) return undefined
  return {
    async attempt (loginKeys, reply) {
      const keys = [...new Set(loginKeys.map(keyOf))]
      const states = await limits.hit(keys, windowSeconds)
      const decisions = keys.map((k) => decide(failures, states.get(k), { counted: true, windowSeconds }))
      // Blocked until every exceeded window has ended, so Retry-After names the last of them.
      const exceeded = decisions.filter((d) => d.exceeded).sort((a, b) => b.secondsLeft - a.secondsLeft)
      if (exceeded[0]) {
        onLimited('login_failures')
        throw rateLimited(TOO_MANY, exceeded[0])
      }
      for (const decision of decisions) setLimitHeaders(reply, decision)
      return {
        async succeeded () {
          await limits.refund(keys)
          // The headers say what is left once this attempt is given back.
          for (const name of ['ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset']) reply.removeHeader(name)
          for (const decision of decisions) setLimitHeaders(reply, { ...decision, remaining: Math.min(failures, decision.remaining + 1) })
        },
      }
    },
  }
}
