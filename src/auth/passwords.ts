import { hash, verify } from '@node-rs/argon2'

// OWASP's Argon2id recommendation: 19 MiB, 2 iterations, 1 lane
// (https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html).
// Both calls run on libuv's thread pool, not the event loop.
const ARGON2ID = 2 // Algorithm.Argon2id; a const enum, which isolatedModules cannot import
const OPTIONS = { algorithm: ARGON2ID, memoryCost: 19_456, timeCost: 2, parallelism: 1 }

export function hashPassword (password: string): Promise<string> {
  return hash(password, OPTIONS)
}

/** A hash of a password nobody has, so that an unknown email costs a login as much as a wrong password. */
let decoy: Promise<string> | undefined

/** False for a wrong password, and after the same work when there is no hash to check. */
export async function verifyPassword (passwordHash: string | null | undefined, password: string): Promise<boolean> {
  try {
    const ok = await verify(passwordHash ?? await (decoy ??= hash('a password no account has', OPTIONS)), password)
    return ok && typeof passwordHash === 'string'
  } catch {
    return false
  }
}
