import { randomUUID } from 'node:crypto'
import type { Database } from '../db/client.js'
import { fieldsOf, selectList } from '../db/rows.js'
import { webhooks } from '../db/schema.js'
import { queryOne, statement } from '../db/sql.js'
import type { IfVersions } from '../http/conditional.js'
import { badRequest, notFound, preconditionFailed, webhookDisabled, webhookLimitReached } from '../http/problem.js'
import {
  WEBHOOKS_PER_USER_MAX, WebhookJson, type CreateWebhookBody, type DeliveriesQuery, type UpdateWebhookBody, type Webhook,
} from './schemas.js'
import { newSecret, type SecretBox } from './secrets.js'
import { urlProblem } from './urls.js'

/** An endpoint's JSON, field by field: never its secrets. */
const WEBHOOK_COLUMNS = selectList(fieldsOf(webhooks, WebhookJson), 'w')

/**
 * Taken before a write that creates (the cap is counted under it), changes or deletes an endpoint. A
 * task write locks this row, then its outbox (migration 0017) the endpoint's job and key; a change of
 * whether an endpoint is enabled updates this row too (users.webhooks_enabled, migration 0018), after
 * it has locked the endpoint and its job. With the owner's row taken first, the two take turns, never
 * waiting for each other in opposite orders.
 */
const LOCK_OWNER = statement('select 1 as locked from users u where u.id = $1 for no key update')
const INSERT = statement(`insert into webhooks as w (id, user_id, url, events, description, secret)
  select $2, $1, $3, $4, $5, $6 where (select count(*) from webhooks c where c.user_id = $1) < $7
  returning ${WEBHOOK_COLUMNS}`)
const LIST = statement(`select ${WEBHOOK_COLUMNS} from webhooks w where w.user_id = $1 order by w.created_at, w.id`)
const FIND = statement(`select ${WEBHOOK_COLUMNS} from webhooks w where w.user_id = $1 and w.id = $2`)
const EXISTS = statement('select w.enabled from webhooks w where w.user_id = $1 and w.id = $2')
const DELETE = statement('delete from webhooks w where w.user_id = $1 and w.id = $2 and ($3::int[] is null or w.version = any($3::int[])) returning w.id')
/** The previous secret keeps signing for 24 hours. */
const ROTATE = statement(`update webhooks w set previous_secret = w.secret, previous_secret_until = now() + interval '24 hours',
  secret = $3, version = w.version + 1, updated_at = now() where w.user_id = $1 and w.id = $2 returning w.id`)
/**
 * Queues a `webhook.test` event behind the endpoint's pending ones, as the outbox trigger queues any
 * (migration 0017); its cursor is the user's log position now.
 */
const QUEUE_TEST = statement(`with added as (
    insert into webhook_events (webhook_id, user_id, type, seq, snapshot)
    select w.id, w.user_id, 'webhook.test', u.change_seq,
      jsonb_build_object('type', 'webhook', 'op', 'test', 'webhook', jsonb_build_object('id', w.id, 'url', w.url))
    from webhooks w join users u on u.id = w.user_id where w.user_id = $1 and w.id = $2 and w.enabled
    returning webhook_id, user_id, event_id
  ), queued as (
    insert into jobs as j (kind, user_id, webhook_id, run_at, payload)
    select 'webhook', a.user_id, a.webhook_id, now(), jsonb_build_object('webhookId', a.webhook_id, 'gen', 0) from added a
    on conflict (webhook_id) do update set payload = j.payload || jsonb_build_object('gen', coalesce((j.payload->>'gen')::int, 0) + 1)
    returning j.id
  )
  select a.event_id as "eventId", (select count(*) from queued)::int as queued from added a`)
const DELIVERIES = statement(`select d.id, d.event_id as "eventId", d.type, d.attempt, d.at, d.status, d.error, d.duration_ms as "durationMs"
  from webhook_deliveries d where d.webhook_id = $1 and ($3::bigint is null or d.id < $3) order by d.id desc limit $2`)
const PRUNE_DELIVERIES = statement(`with gone as (delete from webhook_deliveries d where d.at < now() - interval '30 days' returning 1)
  select count(*)::int as pruned from gone`)

export interface WebhookQueryOptions {
  box: SecretBox
  /** WEBHOOKS_ALLOW_PRIVATE. */
  allowPrivate: boolean
  /** A delivery was queued to run now (the test event): wake the scheduler. */
  queued: (at: number) => void
  /** An endpoint of the user was created or enabled (committed). */
  added: (userId: string) => void
}

export interface Delivery {
  eventId: string
  type: string
  attempt: number
  at: string
  status: number | null
  error: string | null
  durationMs: number
}

const checkUrl = (url: string, allowPrivate: boolean) => {
  const problem = urlProblem(url, allowPrivate)
  if (problem) throw badRequest(`The webhook URL ${problem}`, [{ path: 'body.url', message: problem }])
}

/** Endpoints' CRUD, the owner's id in every WHERE: another user's endpoint is the same 404 as a missing one. */
export function webhookQueries (db: Database, { box, allowPrivate, queued, added }: WebhookQueryOptions) {
  async function refused (userId: string, id: string, ifVersions: IfVersions): Promise<never> {
    if (ifVersions !== undefined && await queryOne(db, EXISTS, [userId, id])) throw preconditionFailed('webhook')
    throw notFound('webhook')
  }

  return {
    list: async (userId: string): Promise<{ items: Webhook[] }> => ({ items: await db.query<Webhook>(LIST, [userId]) }),

    find: (userId: string, id: string): Promise<Webhook | undefined> => queryOne<Webhook>(db, FIND, [userId, id]),

    /** The endpoint and its secret, shown this once. A 409 past the cap, counted under the user's row lock. */
    async create (userId: string, input: CreateWebhookBody): Promise<Webhook & { secret: string }> {
      checkUrl(input.url, allowPrivate)
      const id = randomUUID()
      const secret = newSecret()
      const webhook = await db.transaction(async (tx) => {
        await tx.query(LOCK_OWNER, [userId])
        return queryOne<Webhook>(tx, INSERT, [userId, id, input.url, input.events, input.description ?? null, box.seal(id, secret), WEBHOOKS_PER_USER_MAX])
      })
      if (!webhook) throw webhookLimitReached(WEBHOOKS_PER_USER_MAX)
      added(userId)
      return { ...webhook, secret }
    },

    /**
     * Changes the given fields. Disabling drops the endpoint's pending events (a re-enabled endpoint
     * gets what happens from then on); enabling clears the reason it was disabled for.
     */
    async update (userId: string, id: string, changes: UpdateWebhookBody, ifVersions?: IfVersions): Promise<Webhook> {
      if (changes.url !== undefined) checkUrl(changes.url, allowPrivate)
      const values: unknown[] = [userId, id]
      const add = (value: unknown) => `$${values.push(value)}`
      const set: string[] = []
      if (changes.url !== undefined) set.push(`url = ${add(changes.url)}`)
      if (changes.events !== undefined) set.push(`events = ${add(changes.events)}::text[]`)
      if (changes.description !== undefined) set.push(`description = ${add(changes.description)}`)
      if (changes.enabled !== undefined) {
        set.push(`enabled = ${add(changes.enabled)}`)
        // Re-enabled: the reason goes. Disabled by its owner: no reason, and when.
        set.push(changes.enabled ? 'disabled_reason = null, disabled_at = null'
          : 'disabled_reason = case when w.enabled then null else w.disabled_reason end, disabled_at = case when w.enabled then now() else w.disabled_at end')
      }
      const condition = ifVersions === undefined ? '' : ` and w.version = any(${add(ifVersions)}::int[])`
      const webhook = await db.transaction(async (tx) => {
        await tx.query(LOCK_OWNER, [userId])
        return queryOne<Webhook>(tx, statement(`with updated as (
            update webhooks w set ${set.join(', ')}, version = w.version + 1, updated_at = now()
            where w.user_id = $1 and w.id = $2${condition} returning w.*
          ), dropped as (
            delete from webhook_events e where e.webhook_id in (select u.id from updated u where not u.enabled)
          ), unqueued as (
            delete from jobs j where j.webhook_id in (select u.id from updated u where not u.enabled)
          )
          select ${WEBHOOK_COLUMNS} from updated w`), values)
      }) ?? await refused(userId, id, ifVersions)
      if (webhook.enabled) added(userId)
      return webhook
    },

    async delete (userId: string, id: string, ifVersions?: IfVersions): Promise<void> {
      const deleted = await db.transaction(async (tx) => {
        await tx.query(LOCK_OWNER, [userId])
        return queryOne(tx, DELETE, [userId, id, ifVersions ?? null])
      })
      if (!deleted) await refused(userId, id, ifVersions)
    },

    /** A new secret, returned this once; the previous one signs too for 24 hours. */
    async rotateSecret (userId: string, id: string): Promise<string> {
      const secret = newSecret()
      if (!await queryOne(db, ROTATE, [userId, id, box.seal(id, secret)])) throw notFound('webhook')
      return secret
    },

    /** Queues a `webhook.test` delivery; a 409 when the endpoint is disabled. */
    async test (userId: string, id: string): Promise<{ eventId: string }> {
      const row = await queryOne<{ eventId: string }>(db, QUEUE_TEST, [userId, id])
      if (!row) {
        const found = await queryOne<{ enabled: boolean }>(db, EXISTS, [userId, id])
        throw found ? webhookDisabled() : notFound('webhook')
      }
      queued(Date.now())
      return { eventId: row.eventId }
    },

    /** The endpoint's delivery attempts, newest first. */
    async deliveries (userId: string, id: string, query: DeliveriesQuery): Promise<{ items: Delivery[], nextCursor: string | null }> {
      if (!await queryOne(db, EXISTS, [userId, id])) throw notFound('webhook')
      const limit = query.limit ?? 20
      let before: string | null = null
      if (query.cursor !== undefined) {
        if (!/^[1-9][0-9]{0,17}$/.test(query.cursor)) {
          throw badRequest('The cursor is not valid', [{ path: 'query.cursor', message: 'is not a cursor returned by this API' }])
        }
        before = query.cursor
      }
      const rows = await db.query<Delivery & { id: number }>(DELIVERIES, [id, limit + 1, before])
      const items = rows.slice(0, limit)
      return {
        items: items.map(({ id: _id, ...delivery }) => delivery),
        nextCursor: rows.length > limit ? String(items.at(-1)!.id) : null,
      }
    },

    /** Runs from a timer: attempts older than 30 days go. */
    prune: async (): Promise<number> => (await queryOne<{ pruned: number }>(db, PRUNE_DELIVERIES))?.pruned ?? 0,
  }
}

export type WebhookQueries = ReturnType<typeof webhookQueries>
