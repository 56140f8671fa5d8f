import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { emailTaken, refreshTokenReused, sessionEnded, unauthorized } from '../http/problem.js'
import { errorResponses, sendEmpty } from '../http/schemas.js'
import type { UserQueries } from '../users/queries.js'
import type { LoginLimit } from '../limits/login-limit.js'
import { toUserJson } from '../users/schemas.js'
import { hashPassword, verifyPassword } from './passwords.js'
import { LoginBody, RefreshBody, RegisterBody, SessionJson, TokenPairJson } from './schemas.js'
import type { SessionQueries } from './sessions.js'

export interface AuthRoutesOptions {
  users: UserQueries
  sessions: SessionQueries
  /** Failed-login limits; undefined when switched off. */
  loginLimit?: LoginLimit
}

const INVALID_LOGIN = 'The email or password is incorrect'

export const authRoutes: FastifyPluginAsyncTypebox<AuthRoutesOptions> = async (app, { users, sessions, loginLimit }) => {
  app.post('/auth/register', {
    // Emails are trimmed before the format check: " ada@example.com " is that address, not a 400.
    preValidation: async (request) => {
      const body = request.body as { email?: unknown } | undefined
      if (typeof body?.email === 'string') body.email = body.email.trim()
    },
    schema: {
      tags: ['auth'],
      operationId: 'register', summary: 'Create an account and sign in',
      body: RegisterBody,
      response: { 201: SessionJson, ...errorResponses(400, [409, 'An account with this email already exists (compared case-insensitively)']) },
    },
  }, async (request, reply) => {
    const { email, password, name } = request.body
    const user = await users.create({ email, name, passwordHash: await hashPassword(password) })
    if (!user) throw emailTaken()
    const tokens = await sessions.start(user.id)
    return reply.code(201).send({ user: toUserJson(user), ...tokens })
  })

  app.post('/auth/login', {
    schema: {
      tags: ['auth'],
      operationId: 'login', summary: 'Sign in with email and password',
      body: LoginBody,
      response: { 200: SessionJson, ...errorResponses(400, [401, 'The email or password is incorrect (one answer for both)'], [429, 'Too many failed password checks for this account or address, or too many sign-in requests (type rate-limited); retry after Retry-After']) },
    },
  }, async (request, reply) => {
    const { email, password } = request.body
    const user = await users.findByEmail(email)
    // Over the limit, even the right password is refused: the slot is claimed before the check.
    const attempt = await loginLimit?.attempt([user ? { user: user.id } : { email }, { address: request.ip }], reply)
    // One message and about the same time for an unknown email and a wrong password: the
    // decoy hash is checked when there is no user.
    if (!await verifyPassword(user?.passwordHash, password) || !user) throw unauthorized(INVALID_LOGIN)
    await attempt?.succeeded()
    return { user: toUserJson(user), ...await sessions.start(user.id) }
  })

  app.post('/auth/refresh', {
    schema: {
      tags: ['auth'],
      operationId: 'refreshSession', summary: 'Trade a refresh token for a new token pair',
      description: 'The presented refresh token stops working. Presenting it again revokes every token of its session.',
      body: RefreshBody,
      response: { 200: TokenPairJson, ...errorResponses(400, [401, 'The refresh token is unknown or expired; or was used already (type ' +
        'refresh-token-reused: its session is now ended, sign in again); or its session has ended (type session-ended: signed out, ' +
        'password changed, sign in again)']) },
    },
  }, async (request) => {
    const outcome = await sessions.refresh(request.body.refreshToken)
    if (outcome.ok) return outcome.tokens
    if (outcome.reason === 'reused') throw refreshTokenReused()
    if (outcome.reason === 'ended') throw sessionEnded()
    throw unauthorized(outcome.reason === 'expired' ? 'The refresh token has expired' : 'The refresh token is not valid')
  })

  app.post('/auth/logout', {
    schema: {
      tags: ['auth'],
      operationId: 'logout', summary: 'End the session of a refresh token',
      body: RefreshBody,
      response: { 204: Type.Null({ description: 'Signed out (also for a token already ended or unknown)' }), ...errorResponses(400) },
    },
  }, async (request, reply) => {
    await sessions.logout(request.body.refreshToken)
    return sendEmpty(reply, 204)
  })
}
