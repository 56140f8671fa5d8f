import { Type } from '@fastify/type-provider-typebox'
import { Email, Password, UserJson, UserName } from '../users/schemas.js'

export const RegisterBody = Type.Object({
  email: Email,
  password: Password,
  name: Type.Optional(UserName),
}, { additionalProperties: false })

export const LoginBody = Type.Object({
  email: Type.String({ minLength: 1, maxLength: 254 }),
  password: Type.String({ minLength: 1, maxLength: 128 }),
}, { additionalProperties: false })

export const RefreshBody = Type.Object({
  refreshToken: Type.String({ minLength: 1, maxLength: 200 }),
}, { additionalProperties: false })

const tokenFields = {
  accessToken: Type.String({ description: 'JWT (HS256); send as `Authorization: Bearer <token>`' }),
  refreshToken: Type.String({ description: 'Opaque; single use: each refresh returns the next one' }),
  tokenType: Type.Literal('Bearer'),
  expiresIn: Type.Integer({ description: 'Seconds until the access token expires' }),
}

export const TokenPairJson = Type.Object(tokenFields)
export const SessionJson = Type.Object({ user: UserJson, ...tokenFields })
