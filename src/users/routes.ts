import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { hashPassword, verifyPassword } from '../auth/passwords.js'
import type { SessionQueries } from '../auth/sessions.js'
import { badRequest, noPassword, unauthorized, wrongPassword } from '../http/problem.js'
import { errorResponses, sendEmpty } from '../http/schemas.js'
import type { LoginLimit } from '../limits/login-limit.js'
import type { FastifyReply } from 'fastify'
import { zoneName } from '../recurrence/zones.js'
import type { User, UserQueries } from './queries.js'
import { ChangePasswordBody, DeleteUserBody, toUserJson, UpdateUserBody, UserJson } from './schemas.js'

export interface UserRoutesOptions {
  users: UserQueries
  sessions: SessionQueries
  /** Drops the user from this process's cache of known users at once (others hear the deletion). */
  forgetUser: (userId: string) => void
  /** Failed password checks count against the account's failed-login limit; undefined when off. */
  loginLimit?: LoginLimit
}

const noContent = Type.Null({ description: 'Done' })

export const userRoutes: FastifyPluginAsyncTypebox<UserRoutesOptions> = async (app, { users, sessions, forgetUser, loginLimit }) => {
  /** The signed-in user; a token outliving its user is a 401 like any invalid token. */
  const currentUser = async (userId: string) => {
    const user = await users.find(userId)
    if (!user) throw unauthorized()
    return user
  }
  /**
   * A password check behind a valid token counts like a login: a stolen access token must not buy
   * unlimited guesses at the password (~18,000 under the API limit alone, issue 11).
   */
  const checkPassword = async (user: User, password: string, reply: FastifyReply) => {
    const attempt = await loginLimit?.attempt([{ user: user.id }], reply)
    if (!await verifyPassword(user.passwordHash, password)) throw wrongPassword()
    await attempt?.succeeded()
  }

  app.get('/users/me', {
    schema: { tags: ['users'], operationId: 'getMe', summary: 'The signed-in user', response: { 200: UserJson, ...errorResponses(401) } },
  }, async (request) => toUserJson(await currentUser(request.userId)))

  app.patch('/users/me', {
    schema: {
      tags: ['users'],
      operationId: 'updateMe', summary: 'Change the display name or the time zone',
      body: UpdateUserBody,
      response: { 200: UserJson, ...errorResponses(400, 401) },
    },
  }, async (request) => {
    const { name, timezone } = request.body
    const user = await users.update(request.userId, {
      name: name === undefined ? undefined : name?.trim() ?? null,
      // The schema has checked the zone exists; it is stored as the time-zone database spells it.
      timezone: timezone === undefined ? undefined : zoneName(timezone),
    })
    if (!user) throw unauthorized()
    return toUserJson(user)
  })

  app.post('/users/me/password', {
    schema: {
      tags: ['users'],
      operationId: 'changePassword', summary: 'Change the password',
      description: 'Every other session of the user ends: its refresh token stops working, its access tokens are refused within a ' +
        'second on every server process, its event streams end. The session that made the change goes on.',
      body: ChangePasswordBody,
      response: { 204: noContent, ...errorResponses(400, 401, [403, 'The current password is incorrect'], [409, 'The account signs in through an identity provider and has no password here']) },
    },
  }, async (request, reply) => {
    const user = await currentUser(request.userId)
    if (user.passwordHash === null) throw noPassword()
    await checkPassword(user, request.body.currentPassword, reply)
    await users.updatePassword(user.id, await hashPassword(request.body.newPassword))
    await sessions.revokeOthers(user.id, request.principal?.sessionId)
    return sendEmpty(reply, 204)
  })

  app.delete('/users/me', {
    // An external user deletes with no body at all; validate that as an empty object.
    preValidation: async (request) => { request.body ??= {} },
    schema: {
      tags: ['users'],
      operationId: 'deleteMe', summary: 'Delete the account and all its tasks',
      body: DeleteUserBody,
      response: { 204: noContent, ...errorResponses([400, 'The password is required for an account that has one'], 401, [403, 'The password is incorrect']) },
    },
  }, async (request, reply) => {
    const user = await currentUser(request.userId)
    // A password account proves it is its owner again; an external one already did, to its provider.
    if (user.passwordHash !== null) {
      if (request.body?.password === undefined) throw badRequest('The password is required to delete this account', [{ path: 'body.password', message: 'is required' }])
      await checkPassword(user, request.body.password, reply)
    }
    await users.delete(user.id)
    forgetUser(user.id)
    return sendEmpty(reply, 204)
  })
}
