import { createHash, createSecretKey, randomBytes, randomUUID, type KeyObject } from 'node:crypto'
import { errors, jwtVerify, SignJWT } from 'jose'

export interface TokenKeys {
  /** HS256 secret, at least 32 bytes. */
  readonly secret: Uint8Array
  readonly issuer: string
  readonly audience: string
  readonly accessTokenTtlSeconds: number
  readonly refreshTokenTtlDays: number
}

/** What a valid access token of ours proves. */
export interface AccessClaims {
  userId: string
  /** The session (refresh-token family) it was issued in; absent in tokens issued before sessions were named. */
  sessionId: string | undefined
  /** When it stops being valid, in milliseconds since the epoch. */
  expiresAt: number
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * The secret as a KeyObject, made once per secret. Given raw bytes, jose imports a key on every
 * sign and verify: ~5% of the server's CPU under load (issue 10).
 */
const keyObjects = new WeakMap<Uint8Array, KeyObject>()
function keyOf (secret: Uint8Array): KeyObject {
  let key = keyObjects.get(secret)
  if (!key) keyObjects.set(secret, key = createSecretKey(secret))
  return key
}

export async function signAccessToken (keys: TokenKeys, userId: string, sessionId: string): Promise<string> {
  return new SignJWT({ sid: sessionId })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(userId)
    .setIssuer(keys.issuer)
    .setAudience(keys.audience)
    .setIssuedAt()
    .setExpirationTime(`${keys.accessTokenTtlSeconds}s`)
    .setJti(randomUUID())
    .sign(keyOf(keys.secret))
}

/**
 * The claims of a valid access token, or null for any token we did not issue or that has expired.
 * The algorithm is pinned: `alg: none`, RS256 or EdDSA headers are refused before any key is used.
 */
export async function verifyAccessToken (keys: TokenKeys, token: string): Promise<AccessClaims | null> {
  try {
    const { payload } = await jwtVerify(token, keyOf(keys.secret), {
      algorithms: ['HS256'],
      issuer: keys.issuer,
      audience: keys.audience,
      requiredClaims: ['sub', 'iat', 'exp', 'jti'],
    })
    if (typeof payload.sub !== 'string' || !UUID.test(payload.sub)) return null
    const sessionId = typeof payload.sid === 'string' && UUID.test(payload.sid) ? payload.sid : undefined
    return { userId: payload.sub, sessionId, expiresAt: payload.exp! * 1000 }
  } catch (error) {
    if (error instanceof errors.JOSEError || error instanceof TypeError) return null
    throw error
  }
}

/** An opaque refresh token: 256 random bits. Only its hash is stored. */
export function newRefreshToken (): string {
  return randomBytes(32).toString('base64url')
}

export function hashToken (token: string): string {
  return createHash('sha256').update(token).digest('hex')
}
