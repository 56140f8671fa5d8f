import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { errors, jwtVerify, SignJWT } from 'jose'

export interface TokenKeys {
  /** HS256 secret, at least 32 bytes. */
  readonly secret: Uint8Array
  readonly issuer: string
  readonly audience: string
  readonly accessTokenTtlSeconds: number
  readonly refreshTokenTtlDays: number
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export async function signAccessToken (keys: TokenKeys, userId: string): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(userId)
    .setIssuer(keys.issuer)
    .setAudience(keys.audience)
    .setIssuedAt()
    .setExpirationTime(`${keys.accessTokenTtlSeconds}s`)
    .setJti(randomUUID())
    .sign(keys.secret)
}

/**
 * The user id of a valid access token, or null for any token we did not issue or that has expired.
 * The algorithm is pinned: `alg: none`, RS256 or EdDSA headers are refused before any key is used.
 */
export async function verifyAccessToken (keys: TokenKeys, token: string): Promise<string | null> {
  try {
    const { payload } = await jwtVerify(token, keys.secret, {
      algorithms: ['HS256'],
      issuer: keys.issuer,
      audience: keys.audience,
      requiredClaims: ['sub', 'iat', 'exp', 'jti'],
    })
    return typeof payload.sub === 'string' && UUID.test(payload.sub) ? payload.sub : null
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
