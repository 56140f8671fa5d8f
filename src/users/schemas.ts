import { Type, type Static } from '@fastify/type-provider-typebox'
import { Nullable, Uuid } from '../http/schemas.js'
import type { User } from './queries.js'

export const Email = Type.String({ format: 'email', maxLength: 254, description: 'Compared case-insensitively' })
export const Password = Type.String({ minLength: 8, maxLength: 128 })
export const UserName = Nullable(Type.String({ minLength: 1, maxLength: 100, pattern: '\\S' }))

export const UserJson = Type.Object({
  id: Uuid,
  email: Nullable(Type.String({ description: 'Null for a user of an external identity provider whose token carried none' })),
  name: Nullable(Type.String()),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
})
export type UserJson = Static<typeof UserJson>

export const UpdateUserBody = Type.Object({ name: UserName }, { additionalProperties: false })
export const ChangePasswordBody = Type.Object({
  currentPassword: Type.String({ minLength: 1, maxLength: 128 }),
  newPassword: Password,
}, { additionalProperties: false })
export const DeleteUserBody = Type.Object({
  password: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'Required for accounts with a password' })),
}, { additionalProperties: false })

export const toUserJson = (user: User): UserJson => ({
  id: user.id,
  email: user.email,
  name: user.name,
  createdAt: user.createdAt,
  updatedAt: user.updatedAt,
})
