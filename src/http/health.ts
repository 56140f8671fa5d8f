import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { Database } from '../db/client.js'
import { databaseUnavailable } from './problem.js'
import { errorResponses } from './schemas.js'

const HealthJson = Type.Object({ status: Type.Literal('ok') }, { title: 'Health', examples: [{ status: 'ok' }] })

/** What an orchestrator asks: is the process up (`/healthz`), can it serve (`/readyz`, the database answers). */
export const healthRoutes: FastifyPluginAsyncTypebox<{ database: Database }> = async (app, { database }) => {
  app.get('/healthz', {
    schema: { tags: ['operations'], operationId: 'health', summary: 'The process is up (no database check)', response: { 200: HealthJson } },
  }, async () => ({ status: 'ok' as const }))

  app.get('/readyz', {
    schema: {
      tags: ['operations'],
      operationId: 'readiness',
      summary: 'The database answers; 503 when it does not',
      response: { 200: HealthJson, ...errorResponses([503, 'The database does not answer (type database-unavailable)']) },
    },
  }, async () => {
    try {
      await database.ping()
    } catch {
      throw databaseUnavailable('The database is not reachable')
    }
    return { status: 'ok' as const }
  })
}
