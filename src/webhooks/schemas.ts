import { Type, type Static } from 'typebox'
import { DateTime, Nullable, StringEnum, Uuid } from '../http/schemas.js'
import { MAX_URL_LENGTH } from './urls.js'

/** What an endpoint can listen to; `*` is everything, types added later included. */
export const EVENT_TYPES = ['task.upsert', 'task.delete', 'project.upsert', 'project.delete', 'reminder.fired'] as const
export type EventType = (typeof EVENT_TYPES)[number]

/** Endpoints one user may hold. */
export const WEBHOOKS_PER_USER_MAX = 10

const EventName = StringEnum([...EVENT_TYPES, '*'], { description: 'An event type, or * for all of them (and types added later)' })
const Events = Type.Array(EventName, { minItems: 1, maxItems: EVENT_TYPES.length + 1, uniqueItems: true })
const Url = Type.String({
  minLength: 1, maxLength: MAX_URL_LENGTH,
  description: 'https, to a public address (checked again on every connection); no user name or password',
})
const Description = Nullable(Type.String({ maxLength: 500 }))

const WEBHOOK_EXAMPLE = {
  id: '3f0a2c1e-6b7d-4e8f-9a0b-1c2d3e4f5a6b',
  url: 'https://hooks.example.com/taskbase',
  events: ['task.upsert', 'reminder.fired'],
  description: 'Mailer',
  enabled: true,
  disabledReason: null,
  disabledAt: null,
  createdAt: '2026-11-20T09:00:00.000Z',
  updatedAt: '2026-11-20T09:00:00.000Z',
  version: 1,
}

export const WebhookJson = Type.Object({
  id: Uuid,
  url: Type.String(),
  events: Type.Array(Type.String()),
  description: Nullable(Type.String()),
  enabled: Type.Boolean({ description: 'false: nothing is recorded or sent for it. PATCH {enabled: true} resumes it with what happens from then on' }),
  disabledReason: Nullable(Type.String({ description: 'Why the server disabled it (an event ran out of retries); null otherwise' })),
  disabledAt: Nullable(DateTime()),
  createdAt: DateTime(),
  updatedAt: DateTime(),
  version: Type.Integer({ description: 'Starts at 1; +1 on every change' }),
}, { title: 'Webhook', examples: [WEBHOOK_EXAMPLE] })
export type Webhook = Static<typeof WebhookJson>

const SECRET = Type.String({ description: 'The signing secret, `whsec_` + base64 of 32 bytes: shown only in this answer; store it now' })
const SECRET_EXAMPLE = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw9UgJ0t5jp0s='

export const CreatedWebhookJson = Type.Object({ ...WebhookJson.properties, secret: SECRET }, {
  title: 'CreatedWebhook', examples: [{ ...WEBHOOK_EXAMPLE, secret: SECRET_EXAMPLE }],
})

export const WebhookSecretJson = Type.Object({ secret: SECRET }, {
  title: 'WebhookSecret',
  description: 'The new secret. For the next 24 hours every delivery is signed with it and with the previous one',
  examples: [{ secret: SECRET_EXAMPLE }],
})

export const WebhookListJson = Type.Object({
  items: Type.Array(WebhookJson, { maxItems: 10 }),
}, { title: 'WebhookList', description: 'All your endpoints (at most 10), oldest first', examples: [{ items: [WEBHOOK_EXAMPLE] }] })

export const CreateWebhookBody = Type.Object({
  url: Url,
  events: Events,
  description: Type.Optional(Description),
}, { additionalProperties: false, title: 'NewWebhook', examples: [{ url: 'https://hooks.example.com/taskbase', events: ['task.upsert', 'reminder.fired'], description: 'Mailer' }] })
export type CreateWebhookBody = Static<typeof CreateWebhookBody>

export const UpdateWebhookBody = Type.Object({
  url: Type.Optional(Url),
  events: Type.Optional(Events),
  description: Type.Optional(Description),
  enabled: Type.Optional(Type.Boolean()),
}, { additionalProperties: false, minProperties: 1, title: 'WebhookChanges', examples: [{ events: ['*'], enabled: true }] })
export type UpdateWebhookBody = Static<typeof UpdateWebhookBody>

export const WebhookParams = Type.Object({ id: Uuid })

export const TestDeliveryJson = Type.Object({
  eventId: Uuid,
}, { title: 'WebhookTestQueued', description: 'A `webhook.test` event is queued behind the endpoint\'s pending events; its webhook-id is eventId', examples: [{ eventId: '9b2f7c1d-0e3a-4b5c-8d6e-7f8a9b0c1d2e' }] })

export const DeliveryJson = Type.Object({
  eventId: Uuid,
  type: Type.String({ description: 'The event type, such as task.upsert or webhook.test' }),
  attempt: Type.Integer({ minimum: 1, description: '1 for the first attempt at this event, 2 for its first retry, ...' }),
  at: DateTime({ description: 'When the attempt ended' }),
  status: Nullable(Type.Integer({ description: 'The HTTP status the endpoint answered; null when it did not (refused, unreachable, timed out)' })),
  error: Nullable(Type.String({ description: 'Why the attempt failed; null for a 2xx' })),
  durationMs: Type.Integer({ minimum: 0 }),
}, {
  title: 'WebhookDelivery',
  examples: [{ eventId: '9b2f7c1d-0e3a-4b5c-8d6e-7f8a9b0c1d2e', type: 'task.upsert', attempt: 1, at: '2026-11-20T09:00:00.120Z', status: 200, error: null, durationMs: 84 }],
})

export const DeliveryPageJson = Type.Object({
  items: Type.Array(DeliveryJson),
  nextCursor: Nullable(Type.String({ description: 'Pass as `cursor` for the next (older) page; null on the last page' })),
}, { title: 'WebhookDeliveryPage', examples: [{ items: [], nextCursor: null }] })

export const DeliveriesQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'nextCursor of the previous page' })),
}, { additionalProperties: false })
export type DeliveriesQuery = Static<typeof DeliveriesQuery>
