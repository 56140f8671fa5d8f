import { createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose'
import { Problem, ProblemType } from '../http/problem.js'
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
  /** After a successful fetch, an unknown `kid` waits this long before the next fetch (30 s). */
  readonly jwksCooldownMs?: number
}

/**
 * Asymmetric algorithms only for JWK Set keys: a token claiming HS256 can never be checked
 * against a public key used as an HMAC secret (the classic algorithm-confusion attack).
 */
const JWKS_ALGORITHMS = ['EdDSA', 'Ed25519', 'ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']

export const providerUnavailable = () => new Problem(503,
  'The identity provider that signed this token cannot be reached to check it; retry shortly',
  undefined, ProblemType.identityProviderUnavailable, { 'retry-after': '5' })

/** Errors of the key fetch that say "this token is wrong", not "the provider is down". */
const isTokenError = (error: unknown) =>
  error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys ||
  error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported

/**
 * Keys of the JWK Set, fetched on first use and cached by jose (10 minutes); an unknown `kid`
 * refetches at most once per cooldown, so forged kids cannot make us hammer the provider. When the
 * fetch itself fails, the token is neither accepted nor called invalid: the caller gets a 503.
 */
function jwksKeys (url: string, cooldownMs: number): JWTVerifyGetKey {
  const remote = createRemoteJWKSet(new URL(url), { timeoutDuration: 3_000, cooldownDuration: cooldownMs })
  return async (header, token) => {
    try {
      return await remote(header, token)
    } catch (error) {
      if (isTokenError(error)) throw error
      throw providerUnavailable()
    }
  }
}

/** An external token's identity, and when the token expires (milliseconds since the epoch). */
export type VerifiedIdentity = ExternalIdentity & { expiresAt: number }

export type ExternalVerifier = (token: string) => Promise<VerifiedIdentity | null>

/** Undefined when no external provider is configured. */
export function externalVerifier (config: ExternalAuthConfig): ExternalVerifier | undefined {
  const jwks = config.jwksUrl ? jwksKeys(config.jwksUrl, config.jwksCooldownMs ?? 30_000) : undefined
  const secret = config.sharedSecret ? new TextEncoder().encode(config.sharedSecret) : undefined
  if (!jwks && !secret) return undefined
  const claimChecks = {
    ...(config.issuer && { issuer: config.issuer }),
    ...(config.audience && { audience: config.audience }),
    requiredClaims: ['sub', 'exp'],
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
    const subject = payload.sub
    if (typeof subject !== 'string' || subject.length === 0 || subject.length > 255) return null
    return {
      issuer: alg === 'HS256' ? sharedSecretIssuer : jwksIssuer,
      subject,
      expiresAt: payload.exp! * 1000,
      email: typeof payload.email === 'string' && payload.email.length <= 254 ? payload.email : undefined,
      name: typeof payload.name === 'string' && payload.name.length <= 100 ? payload.name : undefined,
    }
  }
}
