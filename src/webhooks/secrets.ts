import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto'

/** Standard Webhooks' prefix of a signing secret; what follows is base64 of its 32 bytes. */
const PREFIX = 'whsec_'
const SEALED = 'v1'

/** A new signing secret: `whsec_` + base64 of 32 random bytes. Clients never choose one. */
export const newSecret = (): string => PREFIX + randomBytes(32).toString('base64')

/**
 * Signing secrets at rest: AES-256-GCM under a key derived (HKDF-SHA256) from the server's signing
 * secret (JWT_SECRET, or the generated one in server_settings), bound to their endpoint's id (the
 * additional data), so that a reader of the database alone cannot sign, and a secret copied onto
 * another endpoint does not open. Stored as `v1.<base64url of iv | ciphertext | tag>`.
 */
export function secretBox (serverSecret: Uint8Array) {
  const key = Buffer.from(hkdfSync('sha256', serverSecret, 'taskbase', 'webhook signing secrets', 32))
  return {
    seal (webhookId: string, secret: string): string {
      const iv = randomBytes(12)
      const cipher = createCipheriv('aes-256-gcm', key, iv)
      cipher.setAAD(Buffer.from(webhookId))
      const sealed = Buffer.concat([iv, cipher.update(secret, 'utf8'), cipher.final(), cipher.getAuthTag()])
      return `${SEALED}.${sealed.toString('base64url')}`
    },

    /** The secret, or undefined when it cannot be opened (sealed under another server secret). */
    open (webhookId: string, sealed: string): string | undefined {
      const [version, data] = sealed.split('.')
      if (version !== SEALED || !data) return undefined
      const bytes = Buffer.from(data, 'base64url')
      if (bytes.length < 12 + 16) return undefined
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, 12))
        decipher.setAAD(Buffer.from(webhookId))
        decipher.setAuthTag(bytes.subarray(bytes.length - 16))
        return Buffer.concat([decipher.update(bytes.subarray(12, bytes.length - 16)), decipher.final()]).toString('utf8')
      } catch {
        return undefined
      }
    },
  }
}

export type SecretBox = ReturnType<typeof secretBox>

/**
 * The `webhook-signature` header (Standard Webhooks): `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`
 * with each secret's decoded bytes, space-separated when two secrets sign.
 */
export function signatures (secrets: readonly string[], id: string, timestamp: number, body: string): string {
  return secrets.map((secret) => {
    const key = Buffer.from(secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret, 'base64')
    return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`
  }).join(' ')
}
