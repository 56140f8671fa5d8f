import type { FastifyReply } from 'fastify'
import { decide, rateLimited, setLimitHeaders, type OnRateLimited, type RateLimitQueries } from '../http/rate-limit.js'

export interface LoginLimitOptions {
  /** Failed logins allowed per account and per client address in one window; 0 switches this off. */
  failures: number
  windowSeconds: number
}

/**
 * Failed logins, counted per account (the email as typed, lower-cased, so an unknown address is
 * limited exactly like a known one and the limit reveals nothing) and per client address. Only
 * failures count; once either is over the limit, login answers 429 before the password is
 * checked, until the window ends: never a permanent lockout.
 */
export interface LoginLimit {
  /** Throws the 429 when the account or the address is over the limit. */
  check (email: string, address: string, reply: FastifyReply): Promise<void>
  /** Counts a failed login against both. */
  fail (email: string, address: string, reply: FastifyReply): Promise<void>
}

const keysOf = (email: string, address: string) =>
  [`login:account:${email.trim().toLowerCase()}`, `login:ip:${address}`] as const

const TOO_MANY = 'Too many failed sign-ins for this account or from this address; try again after the Retry-After seconds'

export function loginLimit (limits: RateLimitQueries, { failures, windowSeconds }: LoginLimitOptions,
  onLimited: OnRateLimited): LoginLimit | undefined {
  if (failures === 0) return undefined
  return {
    async check (email, address, reply) {
      const keys = keysOf(email, address)
      const states = await limits.peek([...keys])
      const decisions = keys.map((k) => decide(failures, states.get(k), { counted: false, windowSeconds }))
      // Blocked until every exceeded window has ended, so Retry-After names the last of them.
      const exceeded = decisions.filter((d) => d.exceeded).sort((a, b) => b.secondsLeft - a.secondsLeft)
      if (exceeded[0]) {
        onLimited('login_failures')
        throw rateLimited(exceeded[0], TOO_MANY)
      }
      for (const decision of decisions) setLimitHeaders(reply, decision)
    },
    async fail (email, address, reply) {
      const keys = keysOf(email, address)
      const states = await limits.hit([...keys], windowSeconds)
      for (const k of keys) setLimitHeaders(reply, decide(failures, states.get(k), { counted: true, windowSeconds }))
    },
  }
}
