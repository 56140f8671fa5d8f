import type { Database } from '../db/client.js'
import { queryOne, statement } from '../db/sql.js'

export interface User {
  id: string
  /** As the user typed it, trimmed; null for an external user whose token carried none. */
  email: string | null
  name: string | null
  /** An IANA name, as the time-zone database spells it; `UTC` until the user sets one. */
  timezone: string
  /** Argon2id PHC string; null for users of an external identity provider, who have no password. */
  passwordHash: string | null
  createdAt: string
  updatedAt: string
}

export interface ExternalIdentity {
  /** Who vouches for the user: the verifier that accepted the token (see auth/external.ts). */
  issuer: string
  subject: string
  email?: string
  name?: string
}

const USER_COLUMNS = 'id, email, name, timezone, password_hash as "passwordHash", created_at as "createdAt", updated_at as "updatedAt"'

// Emails of local accounts are kept as typed (trimmed) and compared case-insensitively; external
// users are never matched by email.
const INSERT = statement(`insert into users (email, name, password_hash) values ($1, $2, $3)
  on conflict do nothing returning ${USER_COLUMNS}`)
const FIND_BY_EMAIL = statement(`select ${USER_COLUMNS} from users where lower(email) = lower($1) and auth_issuer is null`)
const FIND = statement(`select ${USER_COLUMNS} from users where id = $1`)
const EXISTS = statement('select 1 as found from users where id = $1')
const FIND_EXTERNAL = statement(`select ${USER_COLUMNS} from users where auth_issuer = $1 and auth_subject = $2`)
const INSERT_EXTERNAL = statement(`insert into users (auth_issuer, auth_subject, email, name) values ($1, $2, $3, $4)
  on conflict (auth_issuer, auth_subject) do nothing returning ${USER_COLUMNS}`)
const UPDATE_PROFILE = statement(`update users set email = $2, name = $3, updated_at = now()
  where id = $1 and (email is distinct from $2 or name is distinct from $3) returning ${USER_COLUMNS}`)
/** $2: whether to set the name (to $3, which may be null); $4: the time zone, or null to keep it. */
const UPDATE_PROFILE_FIELDS = statement(`update users set name = case when $2::boolean then $3 else name end,
  timezone = coalesce($4, timezone), updated_at = now() where id = $1 returning ${USER_COLUMNS}`)
const UPDATE_PASSWORD = statement(`update users set password_hash = $2, updated_at = now() where id = $1 returning ${USER_COLUMNS}`)
const DELETE = statement('delete from users where id = $1 returning id')

export function userQueries (db: Database) {
  return {
    /** Undefined when the email is taken (whatever its case). */
    create: (input: { email: string, name?: string | null, passwordHash: string }): Promise<User | undefined> =>
      queryOne<User>(db, INSERT, [input.email.trim(), input.name ?? null, input.passwordHash]),

    /** The local (password) account of this email. */
    findByEmail: (email: string): Promise<User | undefined> => queryOne<User>(db, FIND_BY_EMAIL, [email.trim()]),

    /**
     * The local record of an external identity, created on its first request. Two concurrent
     * first requests both insert; the unique (issuer, subject) index lets one win and the other
     * read the winner's row.
     */
    async provisionExternal (identity: ExternalIdentity): Promise<User> {
      const key = [identity.issuer, identity.subject]
      const existing = await queryOne<User>(db, FIND_EXTERNAL, key)
      if (existing) return existing
      const created = await queryOne<User>(db, INSERT_EXTERNAL, [...key, identity.email ?? null, identity.name ?? null])
      return created ?? (await queryOne<User>(db, FIND_EXTERNAL, key))!
    },

    /** Sets an external user's email and name as their latest token says; writes only when they differ. */
    followProfile: (userId: string, email: string | null, name: string | null): Promise<User | undefined> =>
      queryOne<User>(db, UPDATE_PROFILE, [userId, email, name]),

    find: (userId: string): Promise<User | undefined> => queryOne<User>(db, FIND, [userId]),

    exists: async (userId: string): Promise<boolean> => (await queryOne(db, EXISTS, [userId])) !== undefined,

    /** Sets the fields given: `name` (null clears it) and `timezone` (an IANA name the caller has checked). */
    update: (userId: string, changes: { name?: string | null, timezone?: string }): Promise<User | undefined> =>
      queryOne<User>(db, UPDATE_PROFILE_FIELDS, [userId, changes.name !== undefined, changes.name ?? null, changes.timezone ?? null]),

    updatePassword: (userId: string, passwordHash: string): Promise<User | undefined> =>
      queryOne<User>(db, UPDATE_PASSWORD, [userId, passwordHash]),

    /** Tasks, refresh tokens and idempotency keys go with the user (ON DELETE CASCADE). */
    delete: async (userId: string): Promise<boolean> => (await queryOne(db, DELETE, [userId])) !== undefined,
  }
}

export type UserQueries = ReturnType<typeof userQueries>
