import { Type, type Static } from 'typebox'
import { DateTime, Nullable, TimeZone, Uuid } from '../http/schemas.js'
import type { User } from './queries.js'

export const Email = Type.String({ format: 'email', maxLength: 254, description: 'Compared case-insensitively' })
export const Password = Type.String({ minLength: 8, maxLength: 128 })
export const UserName = Nullable(Type.String({ minLength: 1, maxLength: 100, pattern: '\\S' }))

export const USER_EXAMPLE = {
  id: '5f2d3c1a-8e4b-4a6f-9c7d-2b1e0f3a4c5d',
  email: 'ada@example.com',
  name: 'Ada Lovelace',
  timezone: 'Europe/London',
  createdAt: '2026-11-20T09:00:00.000Z',
  updatedAt: '2026-11-20T09:00:00.000Z',
}

export const UserJson = Type.Object({
  id: Uuid,
  email: Nullable(Type.String({ description: 'Null for a user of an external identity provider whose token carried none' })),
  name: Nullable(Type.String()),
  timezone: Type.String({ description: 'The time zone of the user\'s recurring tasks unless a task names its own (an IANA name); UTC until set' }),
  createdAt: DateTime(),
  updatedAt: DateTime(),
}, { title: 'User', examples: [USER_EXAMPLE] })
export type UserJson = Static<typeof UserJson>

export const UpdateUserBody = Type.Object({
  name: Type.Optional(UserName),
  timezone: Type.Optional(TimeZone('Where the user lives: the default zone of the recurring tasks they create from now on (existing ones keep theirs)')),
}, { additionalProperties: false, minProperties: 1, title: 'UserChanges', examples: [{ name: 'Ada King', timezone: 'Europe/London' }] })
export type UpdateUserBody = Static<typeof UpdateUserBody>
export const ChangePasswordBody = Type.Object({
  currentPassword: Type.String({ minLength: 1, maxLength: 128 }),
  newPassword: Password,
}, { additionalProperties: false, title: 'PasswordChange', examples: [{ currentPassword: 'correct horse battery', newPassword: 'correct horse battery staple' }] })
export const DeleteUserBody = Type.Object({
  password: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'Required for accounts with a password' })),
}, { additionalProperties: false, title: 'AccountDeletion', examples: [{ password: 'correct horse battery staple' }] })

export const toUserJson = (user: User): UserJson => ({
  id: user.id,
  email: user.email,
  name: user.name,
  timezone: user.timezone,
  createdAt: user.createdAt,
  updatedAt: user.updatedAt,
})
