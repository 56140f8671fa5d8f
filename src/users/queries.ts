import { and, eq, isNull, sql } from 'drizzle-orm'
import type { Db } from '../db/client.js'
import { users, type User } from '../db/schema.js'

/** Emails of local accounts are kept as typed (trimmed) and compared case-insensitively. */
const localEmailIs = (email: string) => and(sql`lower(${users.email}) = lower(${email.trim()})`, isNull(users.authIssuer))

export interface ExternalIdentity {
  issuer: string
  subject: string
  email?: string
  name?: string
}

export function userQueries (db: Db) {
  return {
    /** Undefined when the email is taken (whatever its case). */
    async create (input: { email: string, name?: string | null, passwordHash: string }): Promise<User | undefined> {
      const [user] = await db.insert(users)
        .values({ email: input.email.trim(), name: input.name ?? null, passwordHash: input.passwordHash })
        .onConflictDoNothing()
        .returning()
      return user
    },

    /** The local (password) account of this email. */
    async findByEmail (email: string): Promise<User | undefined> {
      const [user] = await db.select().from(users).where(localEmailIs(email))
      return user
    },

    /**
     * The local record of an external identity, created on its first request. Two concurrent
     * first requests both insert; the unique (issuer, subject) index lets one win and the other
     * read the winner's row.
     */
    async provisionExternal (identity: ExternalIdentity): Promise<User> {
      const identifies = and(eq(users.authIssuer, identity.issuer), eq(users.authSubject, identity.subject))
      const [existing] = await db.select().from(users).where(identifies)
      if (existing) return existing
      const [created] = await db.insert(users)
        .values({ authIssuer: identity.issuer, authSubject: identity.subject, email: identity.email ?? null, name: identity.name ?? null })
        .onConflictDoNothing({ target: [users.authIssuer, users.authSubject] })
        .returning()
      if (created) return created
      const [winner] = await db.select().from(users).where(identifies)
      return winner!
    },

    async find (userId: string): Promise<User | undefined> {
      const [user] = await db.select().from(users).where(eq(users.id, userId))
      return user
    },

    async exists (userId: string): Promise<boolean> {
      const rows = await db.select({ id: users.id }).from(users).where(eq(users.id, userId))
      return rows.length > 0
    },

    async update (userId: string, changes: { name?: string | null, passwordHash?: string }): Promise<User | undefined> {
      const [user] = await db.update(users)
        .set({ ...changes, updatedAt: sql`now()` })
        .where(eq(users.id, userId))
        .returning()
      return user
    },

    /** Tasks, refresh tokens and idempotency keys go with the user (ON DELETE CASCADE). */
    async delete (userId: string): Promise<boolean> {
      const rows = await db.delete(users).where(eq(users.id, userId)).returning({ id: users.id })
      return rows.length > 0
    },
  }
}

export type UserQueries = ReturnType<typeof userQueries>
