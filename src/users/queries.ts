import { eq, sql } from 'drizzle-orm'
import type { Db } from '../db/client.js'
import { users, type User } from '../db/schema.js'

/** Emails are kept as typed (trimmed) and compared case-insensitively. */
const emailIs = (email: string) => sql`lower(${users.email}) = lower(${email.trim()})`

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

    async findByEmail (email: string): Promise<User | undefined> {
      const [user] = await db.select().from(users).where(emailIs(email))
      return user
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
