import type { FastifyReply } from 'fastify'
import type { Answer } from '../tasks/idempotency.js'
import { etagOf } from './conditional.js'

/**
 * The answer to a create (`POST /api/v1/tasks`, `POST /api/v1/projects`): 201 with Location and
 * ETag. With an Idempotency-Key, the answer first given to that key, marked Idempotent-Replayed
 * when this request is a retry.
 */
export async function sendCreated<T extends { id: string, version: number }> (reply: FastifyReply, collection: string,
  key: string | undefined, create: () => Promise<T>, createOnce: (key: string) => Promise<Answer<T>>): Promise<FastifyReply> {
  const answer = key === undefined ? { status: 201, body: await create(), replayed: false } : await createOnce(key)
  if (answer.replayed) reply.header('idempotent-replayed', 'true')
  const { body } = answer
  return reply.code(answer.status).header('location', `${collection}/${body.id}`).header('etag', etagOf(body.id, body.version)).send(body)
}
