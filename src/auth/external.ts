import { createLocalJWKSet, decodeProtectedHeader, errors, jwtVerify, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey } from 'jose'
import { identityProviderUnavailable as providerUnavailable, Problem } from '../http/problem.js'
import type { ExternalIdentity } from '../users/queries.js'

/** Tokens of an external identity provider (Better Auth and the like). */
export interface ExternalAuthConfig {
  /** A JWK Set URL, e.g. `https://app.example.com/api/auth/jwks` for Better Auth. */
  readonly jwksUrl?: string
  /** A shared HS256 secret (at least 32 bytes). */
  readonly sharedSecret?: string
  /** Checked against `iss` when set. */
  readonly issuer?: string
  /** Checked against `aud` when set. */
  readonly audience?: string
  /** After a fetch, a token naming an unknown `kid` waits this long before the next fetch (10 s). */
  readonly jwksCooldownMs?: number
  /**
   * The claim that holds the user's id: `sub` by default, or a dotted path such as `user.id` (Better
   * Auth's session_data token). Email and name are read beside it when not at the top level.
   */
  readonly subjectClaim?: string
}

/**
 * Asymmetric algorithms only for JWK Set keys: a token claiming HS256 can never be checked
 * against a public key used as an HMAC secret (the classic algorithm-confusion attack).
 */
const JWKS_ALGORITHMS = ['EdDSA', 'Ed25519', 'ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']

/** Keys older than this are fetched again on the next token (the old ones serve while it runs). */
const JWKS_MAX_AGE_MS = 10 * 60_000
/** After a failed fetch, the next waits 1 s, then 2, 4, ... up to this. */
const JWKS_MAX_BACKOFF_MS = 60_000

async function fetchJwks (url: string): Promise<JSONWebKeySet> {
  const res = await fetch(url, { signal: AbortSignal.timeout(3_000), headers: { accept: 'application/json' } })
  if (!res.ok) throw new Error(`the JWK Set answered ${res.status}`)
  const body = await res.json() as JSONWebKeySet
  if (!Array.isArray(body?.keys)) throw new Error('the JWK Set has no keys array')
  return body
}

/**
 * The provider's keys, fetched on first use and again (in the background) after 10 minutes. Two rules keep us from
 * hammering it and from sending users back to sign-in:
 * - A token naming a `kid` we do not have fetches again, at most once per cooldown (10 s by default,
 *   so a key minted just after a fetch is accepted within seconds, and forged kids cost at most six
 *   fetches a minute); still unknown after that, the token is refused.
 * - A failed fetch backs off (1 s, doubling to 60 s): meanwhile its tokens get a 503, neither
 *   accepted nor called invalid, and no request waits on a fetch doomed to fail.
 */
function jwksKeys (url: string, cooldownMs: number): JWTVerifyGetKey {
  let local: JWTVerifyGetKey | undefined
  let fetchedAt = 0
  let failures = 0
  let nextAttemptAt = 0
  let fetching: Promise<boolean> | undefined

  /** Fetches unless one is under way or a failure is being backed off; true when keys were (just) fetched. */
  const refresh = (): Promise<boolean> => {
    if (fetching) return fetching
    if (Date.now() < nextAttemptAt) return Promise.resolve(false)
    fetching = fetchJwks(url).then((set) => {
      local = createLocalJWKSet(set)
      fetchedAt = Date.now()
      failures = 0
      return true
    }, () => {
      failures++
      nextAttemptAt = Date.now() + Math.min(JWKS_MAX_BACKOFF_MS, 1_000 * 2 ** (failures - 1))
      return false
    }).finally(() => { fetching = undefined })
    return fetching
  }

  return async (header, token) => {
    if (!local) {
      await refresh()
      if (!local) throw providerUnavailable()
    } else if (Date.now() - fetchedAt > JWKS_MAX_AGE_MS) {
      void refresh() // in the background: the keys we have serve meanwhile
    }
    try {
      return await local(header, token)
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey)) throw error
      // A kid we have not seen: the provider may have rotated since our last fetch.
      if (Date.now() - fetchedAt < cooldownMs) throw error
      if (!await refresh()) {
        if (failures > 0) throw providerUnavailable() // cannot know: the provider is down
        throw error
      }
      return local(header, token)
    }
  }
}

/** An external token's identity, and when the token expires (milliseconds since the epoch). */
export type VerifiedIdentity = ExternalIdentity & { expiresAt: number }

export type ExternalVerifier = (token: string) => Promise<VerifiedIdentity | null>

/** Undefined when no external provider is configured. */
/** The value at a dotted path of the claims, such as user.id; undefined when any step is missing. */
function claimAt (payload: JWTPayload, path: string[]): unknown {
  let value: unknown = payload
  for (const step of path) {
    if (value === null || typeof value !== 'object' || !Object.hasOwn(value, step)) return undefined
    value = (value as Record<string, unknown>)[step]
  }
  return value
}

export function externalVerifier (config: ExternalAuthConfig): ExternalVerifier | undefined {
  const jwks = config.jwksUrl ? jwksKeys(config.jwksUrl, config.jwksCooldownMs ?? 10_000) : undefined
  const secret = config.sharedSecret ? new TextEncoder().encode(config.sharedSecret) : undefined
  if (!jwks && !secret) return undefined
  const subjectPath = (config.subjectClaim ?? 'sub').split('.')
  // iss and aud are checked when configured; a token without expiry is never accepted.
  const claimChecks = {
    ...(config.issuer && { issuer: config.issuer }),
    ...(config.audience && { audience: config.audience }),
    requiredClaims: subjectPath.length === 1 ? [subjectPath[0]!, 'exp'] : ['exp'],
  }
  // Users are keyed by the verifier that vouched for them, never by what the token says of itself:
  // a token signed with the shared secret cannot claim to be one of the JWK Set provider's users.
  const jwksIssuer = config.issuer ?? config.jwksUrl!
  const sharedSecretIssuer = `shared-secret:${config.issuer ?? ''}`

  return async (token) => {
    let alg: string | undefined
    try {
      alg = decodeProtectedHeader(token).alg
    } catch {
      return null
    }
    let payload: JWTPayload
    try {
      if (alg === 'HS256') {
        if (!secret) return null
        ;({ payload } = await jwtVerify(token, secret, { algorithms: ['HS256'], ...claimChecks }))
      } else {
        if (!jwks) return null
        ;({ payload } = await jwtVerify(token, jwks, { algorithms: JWKS_ALGORITHMS, ...claimChecks }))
      }
    } catch (error) {
      if (error instanceof Problem) throw error
      if (error instanceof errors.JOSEError || error instanceof TypeError) return null
      throw error
    }
    const subject = claimAt(payload, subjectPath)
    if (typeof subject !== 'string' || subject.length === 0 || subject.length > 255) return null
    // Beside the subject (user.email next to user.id) when the token keeps its user in an object.
    const holder = claimAt(payload, subjectPath.slice(0, -1)) as Record<string, unknown> | undefined
    const email = payload.email ?? holder?.email
    const name = payload.name ?? holder?.name
    return {
      issuer: alg === 'HS256' ? sharedSecretIssuer : jwksIssuer,
      subject,
      expiresAt: payload.exp! * 1000,
      email: typeof email === 'string' && email.length <= 254 ? email : undefined,
      name: typeof name === 'string' && name.length <= 100 ? name : undefined,
    }
  }
}
