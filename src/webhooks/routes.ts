import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { etagOf, ifMatchVersions, noneMatchHits } from '../http/conditional.js'
import { notFound } from '../http/problem.js'
import { errorResponses, sendEmpty } from '../http/schemas.js'
import type { WebhookQueries } from './queries.js'
import {
  CreatedWebhookJson, CreateWebhookBody, DeliveriesQuery, DeliveryPageJson, TestDeliveryJson, UpdateWebhookBody, WebhookJson,
  WebhookListJson, WebhookParams, WebhookSecretJson,
} from './schemas.js'

export interface WebhookRoutesOptions {
  webhooks: WebhookQueries
}

const IfMatchHeaders = Type.Object({
  'if-match': Type.Optional(Type.String({ description: 'An ETag of the endpoint: the write happens only if it is still current' })),
})

const WEBHOOK_LIMIT: [number, string] = [409, 'The account holds 10 webhook endpoints already (type webhook-limit-reached)']
const BAD_URL: [number, string] = [400, 'The body does not match the schema, or body.url is refused: not https, or a private, loopback or local host']

export const webhookRoutes: FastifyPluginAsyncTypebox<WebhookRoutesOptions> = async (app, { webhooks }) => {
  const tags = ['webhooks']

  app.get('/webhooks', {
    schema: {
      tags,
      operationId: 'listWebhooks',
      summary: 'List your webhook endpoints',
      response: { 200: WebhookListJson, ...errorResponses(401) },
    },
  }, async (request) => webhooks.list(request.userId))

  app.post('/webhooks', {
    schema: {
      tags,
      operationId: 'createWebhook',
      summary: 'Add a webhook endpoint; the answer shows its signing secret, this once',
      description: 'No Idempotency-Key: a replayed answer would have to keep the secret readable. A create retried after a lost answer ' +
        'makes a second endpoint, which you delete.',
      body: CreateWebhookBody,
      response: { 201: CreatedWebhookJson, ...errorResponses(BAD_URL, 401, WEBHOOK_LIMIT) },
    },
  }, async (request, reply) => {
    const webhook = await webhooks.create(request.userId, request.body)
    return reply.code(201).header('location', `/api/v1/webhooks/${webhook.id}`).header('etag', etagOf(webhook.id, webhook.version)).send(webhook)
  })

  app.get('/webhooks/:id', {
    schema: {
      tags,
      operationId: 'getWebhook',
      summary: 'Get a webhook endpoint (never its secret)',
      params: WebhookParams,
      headers: Type.Object({ 'if-none-match': Type.Optional(Type.String()) }),
      response: { 200: WebhookJson, 304: Type.Null({ description: 'Not modified' }), ...errorResponses(400, 401, 404) },
    },
  }, async (request, reply) => {
    const webhook = await webhooks.find(request.userId, request.params.id)
    if (!webhook) throw notFound('webhook')
    const etag = etagOf(webhook.id, webhook.version)
    reply.header('etag', etag)
    if (noneMatchHits(request.headers['if-none-match'], etag)) return sendEmpty(reply, 304)
    return webhook
  })

  app.patch('/webhooks/:id', {
    schema: {
      tags,
      operationId: 'updateWebhook',
      summary: 'Change a webhook endpoint\'s URL, events or description; disable it, or enable it again',
      description: 'Disabling drops its pending events; enabled again, it receives what happens from then on.',
      params: WebhookParams,
      headers: IfMatchHeaders,
      body: UpdateWebhookBody,
      response: { 200: WebhookJson, ...errorResponses(BAD_URL, 401, 404, 412) },
    },
  }, async (request, reply) => {
    const { id } = request.params
    const webhook = await webhooks.update(request.userId, id, request.body, ifMatchVersions(request.headers['if-match'], id))
    return reply.header('etag', etagOf(webhook.id, webhook.version)).send(webhook)
  })

  app.delete('/webhooks/:id', {
    schema: {
      tags,
      operationId: 'deleteWebhook',
      summary: 'Delete a webhook endpoint, its pending events and its delivery log',
      params: WebhookParams,
      headers: IfMatchHeaders,
      response: { 204: Type.Null({ description: 'Deleted' }), ...errorResponses(400, 401, 404, 412) },
    },
  }, async (request, reply) => {
    const { id } = request.params
    await webhooks.delete(request.userId, id, ifMatchVersions(request.headers['if-match'], id))
    return sendEmpty(reply, 204)
  })

  app.post('/webhooks/:id/rotate-secret', {
    schema: {
      tags,
      operationId: 'rotateWebhookSecret',
      summary: 'Replace the signing secret; for 24 hours deliveries carry both signatures',
      params: WebhookParams,
      response: { 200: WebhookSecretJson, ...errorResponses(400, 401, 404) },
    },
  }, async (request) => ({ secret: await webhooks.rotateSecret(request.userId, request.params.id) }))

  app.post('/webhooks/:id/test', {
    schema: {
      tags,
      operationId: 'testWebhook',
      summary: 'Send the endpoint a webhook.test event',
      params: WebhookParams,
      response: {
        202: TestDeliveryJson,
        ...errorResponses(400, 401, 404, [409, 'The endpoint is disabled (type webhook-disabled)']),
      },
    },
  }, async (request, reply) => reply.code(202).send(await webhooks.test(request.userId, request.params.id)))

  app.get('/webhooks/:id/deliveries', {
    schema: {
      tags,
      operationId: 'listWebhookDeliveries',
      summary: 'The endpoint\'s delivery attempts, newest first (kept 30 days)',
      params: WebhookParams,
      querystring: DeliveriesQuery,
      response: { 200: DeliveryPageJson, ...errorResponses([400, 'limit or cursor is invalid'], 401, 404) },
    },
  }, async (request) => webhooks.deliveries(request.userId, request.params.id, request.query))
}
