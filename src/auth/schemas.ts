import { Type } from 'typebox'
import { Email, Password, USER_EXAMPLE, UserJson, UserName } from '../users/schemas.js'

export const RegisterBody = Type.Object({
  email: Email,
  password: Password,
  name: Type.Optional(UserName),
}, { additionalProperties: false, title: 'Registration', examples: [{ email: 'ada@example.com', password: 'correct horse battery', name: 'Ada Lovelace' }] })

export const LoginBody = Type.Object({
  email: Type.String({ minLength: 1, maxLength: 254 }),
  password: Type.String({ minLength: 1, maxLength: 128 }),
}, { additionalProperties: false, title: 'Credentials', examples: [{ email: 'ada@example.com', password: 'correct horse battery' }] })

export const RefreshBody = Type.Object({
  refreshToken: Type.String({ minLength: 1, maxLength: 200, description: 'The refreshToken of the session (from register, login or the last refresh)' }),
}, { additionalProperties: false, title: 'RefreshRequest', examples: [{ refreshToken: 'tQq0v6kN2mU8yP1c7xL3zR5sW9bJ4hD0eG2fA6iK8oM' }] })

const tokenFields = {
  accessToken: Type.String({ description: 'JWT (HS256); send as `Authorization: Bearer <token>`' }),
  refreshToken: Type.String({ description: 'Opaque; single use: each refresh returns the next one' }),
  tokenType: Type.Literal('Bearer'),
  expiresIn: Type.Integer({ description: 'Seconds until the access token expires' }),
}

const TOKENS_EXAMPLE = {
  accessToken: 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIuLi4ifQ.c2lnbmF0dXJl',
  refreshToken: 'tQq0v6kN2mU8yP1c7xL3zR5sW9bJ4hD0eG2fA6iK8oM',
  tokenType: 'Bearer',
  expiresIn: 900,
}
export const TokenPairJson = Type.Object(tokenFields, { title: 'TokenPair', examples: [TOKENS_EXAMPLE] })
export const SessionJson = Type.Object({ user: UserJson, ...tokenFields }, {
  title: 'Session',
  examples: [{ user: USER_EXAMPLE, ...TOKENS_EXAMPLE }],
})
