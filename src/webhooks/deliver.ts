import type { FastifyBaseLogger } from 'fastify'
import type { Database } from '../db/client.js'
import { isoTime, jsonObject } from '../db/rows.js'
import { queryOne, statement } from '../db/sql.js'
import { CHANGES_CHANNEL, webhookDisabledNotice } from '../events/notices.js'
import type { Job, JobHandler } from '../jobs/scheduler.js'
import { PROJECT_FIELDS } from '../projects/queries.js'
import type { SyncCursors } from '../sync/cursor.js'
import { TASK_FIELDS } from '../tasks/sql.js'
import { signatures, type SecretBox } from './secrets.js'
import type { AttemptResult, WebhookSender } from './sender.js'

/** Pending events read at once per endpoint. */
const PAGE = 50

/** A reminder firing's JSON, as /sync gives it (sync/queries.ts). */
const reminderJson = (r: string) => `json_build_object('taskId', ${r}.task_id, 'reminderId', ${r}.reminder_id,
  'occurrence', ${isoTime(`${r}.occurrence`)}, 'fireAt', ${isoTime(`${r}.fire_at`)}, 'firedAt', ${isoTime(`${r}.at`)}, 'title', ${r}.title)`

/**
 * The endpoint's pending events in write order, each with its `data`: the change as /sync gives it,
 * made from the row as it was written (the snapshot), so every transition is sent as it happened.
 */
const PENDING = statement(`select e.id, e.event_id as "eventId", e.type, e.seq, e.attempts, ${isoTime('e.created_at')} as "createdAt",
  case
    when e.type = 'task.upsert' then (select json_build_object('type', 'task', 'op', 'upsert', 'task', ${jsonObject(TASK_FIELDS, 't')})
      from jsonb_populate_record(null::tasks, e.snapshot) t)
    when e.type = 'project.upsert' then (select json_build_object('type', 'project', 'op', 'upsert', 'project', ${jsonObject(PROJECT_FIELDS, 'p')})
      from jsonb_populate_record(null::projects, e.snapshot) p)
    when e.type in ('task.delete', 'project.delete') then (select json_build_object('type', d.entity, 'op', 'delete', 'id', d.entity_id,
      'deletedAt', ${isoTime('d.deleted_at')}) from jsonb_populate_record(null::tombstones, e.snapshot) d)
    when e.type = 'reminder.fired' then (select json_build_object('type', 'reminder', 'op', 'fired', 'reminder', ${reminderJson('r')})
      from jsonb_populate_record(null::reminder_changes, e.snapshot) r)
    else e.snapshot::json
  end as data
  , w.user_id as "userId", w.url, w.secret, case when w.previous_secret_until > now() then w.previous_secret end as "previousSecret"
  from webhook_events e join webhooks w on w.id = e.webhook_id and w.enabled where e.webhook_id = $1 order by e.id limit $2`)

/**
 * The bookkeeping of deliveries commits without waiting for its WAL flush (the setting is local to the
 * statement's own transaction): a crash that loses its last few milliseconds only sends those events
 * again (at least once, the same webhook-id), while an fsync per delivered event, beside the write's
 * own, would cap deliveries well below the writes they follow.
 */
const ASYNC = `async as (select set_config('synchronous_commit', 'off', true) as set)`
const HELD = `exists (select 1 from jobs j where j.id = $1 and j.lease_token = $2) and (select a.set from async a) = 'off'`
const LOG = `logged as (insert into webhook_deliveries (webhook_id, event_id, type, attempt, status, error, duration_ms)
  values ($3, $4, $5, $6, $7, $8, $9))`
/** A 2xx: the attempt is logged and the event goes, while the job is still ours. */
const DELIVERED = statement(`with ${ASYNC}, ${LOG} delete from webhook_events e where e.id = $10 and ${HELD} returning e.id`)
/** Anything else: logged, and counted on the event. */
const FAILED = statement(`with ${ASYNC}, ${LOG} update webhook_events e set attempts = $6 where e.id = $10 and ${HELD} returning e.id`)
/** The next try of the endpoint's first pending event, $3 ms from now; the job is free until then. */
const RETRY_LATER = statement(`update jobs j set run_at = now() + $3::int * interval '1 millisecond', lease_until = null, lease_token = null
  where j.id = $1 and j.lease_token = $2 returning ${isoTime('j.run_at')} as "runAt"`)
/** Nothing pending at generation $3: the job goes. A newer generation means events came meanwhile. */
const FINISH = statement(`with ${ASYNC} delete from jobs j where j.id = $1 and j.lease_token = $2 and coalesce((j.payload->>'gen')::int, 0) = $3
  and (select a.set from async a) = 'off' returning j.id`)
const GENERATION = statement(`select coalesce((j.payload->>'gen')::int, 0) as gen from jobs j where j.id = $1 and j.lease_token = $2`)
const RENEW = statement(`update jobs j set lease_until = now() + $3::int * interval '1 second' where j.id = $1 and j.lease_token = $2 returning j.id`)
/** Given back at shutdown: the next process takes it at once. */
const RELEASE = statement('update jobs j set lease_until = null, lease_token = null where j.id = $1 and j.lease_token = $2')
const DROP_JOB = statement('delete from jobs j where j.id = $1 and j.lease_token = $2')
/** The endpoint's owner, locked before the endpoint is disabled (LOCK_OWNER in queries.ts says why). */
const LOCK_OWNER = statement('select 1 as locked from users u where u.id = (select w.user_id from webhooks w where w.id = $1) for no key update')
/**
 * An event ran out of retries: the endpoint is disabled with the reason, its pending events and its
 * job go (it gets what happens after it is enabled again).
 */
const DISABLE = statement(`with held as (select 1 from jobs j where j.id = $1 and j.lease_token = $2),
  disabled as (
    update webhooks w set enabled = false, disabled_reason = $4, disabled_at = now(), version = w.version + 1, updated_at = now()
    where w.id = $3 and w.enabled and exists (select 1 from held) returning w.id, w.user_id, w.url, w.disabled_reason, w.disabled_at
  ), dropped as (delete from webhook_events e where e.webhook_id in (select id from disabled)),
  unqueued as (delete from jobs j where j.id = $1 and exists (select 1 from held))
  select d.user_id as "userId", d.url, d.disabled_reason as reason, ${isoTime('d.disabled_at')} as "disabledAt" from disabled d`)

interface Endpoint { id: string, userId: string, url: string, secret: string, previousSecret: string | null }
/** A pending event, with its endpoint (enabled: a disabled one has none pending). */
interface PendingEvent extends Omit<Endpoint, 'id'> { id: number, eventId: string, type: string, seq: number | null, attempts: number, createdAt: string, data: unknown }

export interface DeliveryOptions {
  database: Database
  logger: FastifyBaseLogger
  sender: WebhookSender
  box: SecretBox
  cursors: SyncCursors
  /** WEBHOOKS_RETRY_SCHEDULE, in ms. */
  retrySchedule: readonly number[]
  /** JOBS_LEASE_SECONDS: a job held longer is renewed every third of it. */
  leaseSeconds: number
  /** A job was rescheduled for `at` (ms since the epoch): wakes the scheduler for it. */
  wake: (at: number) => void
}

/**
 * The `webhook` jobs' handler. A job is one endpoint with pending events; its holder sends them one
 * at a time in write order (a failed one holds back the later ones until it succeeds or the endpoint
 * is disabled), renews its lease while it works, and every statement that settles an event or the
 * job holds only while the lease is still its own. The handler returns at once and the deliveries
 * run beside the scheduler, so a slow receiver never delays reminders.
 */
export function webhookDelivery (options: DeliveryOptions) {
  const { database, logger, sender, box, cursors, retrySchedule, leaseSeconds, wake } = options
  const running = new Set<Promise<void>>()
  const stopping = new AbortController()

  async function attempt (endpoint: Endpoint, event: PendingEvent): Promise<AttemptResult> {
    const secrets = [endpoint.secret, endpoint.previousSecret].flatMap((sealed) => {
      const secret = sealed === null ? undefined : box.open(endpoint.id, sealed)
      return secret === undefined ? [] : [secret]
    })
    if (secrets.length === 0) {
      return { status: null, error: 'the signing secret cannot be read (the server\'s signing secret changed); rotate the secret', durationMs: 0 }
    }
    const body = JSON.stringify({
      type: event.type,
      timestamp: event.createdAt,
      data: event.data,
      cursor: event.seq === null ? null : cursors.mint(endpoint.userId, { seq: Number(event.seq) }),
    })
    const timestamp = Math.floor(Date.now() / 1000)
    return sender.send(endpoint.url, {
      'webhook-id': event.eventId,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signatures(secrets, event.eventId, timestamp, body),
    }, body, stopping.signal)
  }

  /** Delivers one endpoint's pending events while its job is held. */
  async function deliver (job: Job, token: string): Promise<void> {
    const webhookId = (job.payload as { webhookId?: string } | null)?.webhookId
    if (!webhookId) {
      await database.query(DROP_JOB, [job.id, token])
      return
    }
    let generation = Number((job.payload as { gen?: number }).gen ?? 0)
    let lost = false
    const heartbeat = setInterval(() => {
      database.query(RENEW, [job.id, token, leaseSeconds]).then((rows) => { if (rows.length === 0) lost = true }, () => {})
    }, Math.max(250, leaseSeconds * 1000 / 3))
    heartbeat.unref()
    try {
      /** Finishes the job when nothing came since `generation`; false (and the new one) when something did. */
      const finish = async (): Promise<boolean> => {
        if (await queryOne(database, FINISH, [job.id, token, generation])) return true
        const held = await queryOne<{ gen: number }>(database, GENERATION, [job.id, token])
        if (!held) return true // no longer ours
        generation = held.gen
        return false
      }
      // After a short page, nothing else was pending when it was read: anything queued since moved the
      // job's generation, so the job is finished at once, without another read, unless it did.
      let shortPage = false
      for (;;) {
        if (stopping.signal.aborted || lost) return
        if (shortPage && await finish()) return
        const events = await database.query<PendingEvent>(PENDING, [webhookId, PAGE])
        if (events.length === 0) {
          if (await finish()) return
          continue
        }
        shortPage = events.length < PAGE
        for (const event of events) {
          if (stopping.signal.aborted || lost) return
          const result = await attempt({ ...event, id: webhookId }, event)
          if (stopping.signal.aborted && result.status === null) return // cut short by the shutdown: not an attempt that counts
          const attemptNo = event.attempts + 1
          const values = [job.id, token, webhookId, event.eventId, event.type, attemptNo, result.status, result.error, result.durationMs, event.id]
          if (result.error === null) {
            if (!await queryOne(database, DELIVERED, values)) return
            continue
          }
          if (!await queryOne(database, FAILED, values)) return
          if (attemptNo > retrySchedule.length) {
            const reason = `event ${event.eventId} (${event.type}) failed ${attemptNo} attempts, the last: ${result.error}`
            const disabled = await database.transaction(async (tx) => {
              await tx.query(LOCK_OWNER, [webhookId])
              return queryOne<{ userId: string, url: string, reason: string, disabledAt: string }>(tx, DISABLE, [job.id, token, webhookId, reason])
            })
            if (disabled) {
              logger.warn({ webhookId, eventId: event.eventId }, 'webhook endpoint disabled: an event ran out of retries')
              await database.notify(CHANGES_CHANNEL, [webhookDisabledNotice(disabled.userId,
                { id: webhookId, url: disabled.url, reason: disabled.reason, disabledAt: disabled.disabledAt })]).catch((error: Error) => {
                logger.warn({ message: error.message }, 'could not announce a disabled webhook endpoint')
              })
            }
            return
          }
          const next = await queryOne<{ runAt: string }>(database, RETRY_LATER, [job.id, token, retrySchedule[attemptNo - 1]])
          if (next) wake(Date.parse(next.runAt))
          return
        }
      }
    } catch (error) {
      // The database is away: the job stays claimed until its lease ends, then runs again.
      logger.warn({ webhookId, message: (error as Error).message }, 'delivering webhook events failed; retried after the lease')
    } finally {
      clearInterval(heartbeat)
      if (stopping.signal.aborted && !lost) await database.query(RELEASE, [job.id, token]).catch(() => {})
    }
  }

  const handler: JobHandler = async (jobs, token) => {
    for (const job of jobs) {
      if (stopping.signal.aborted) return
      const run = deliver(job, token).finally(() => running.delete(run))
      running.add(run)
    }
  }

  return {
    handler,
    /** Ends the attempts under way (not counted) and gives their jobs back. Before the database closes. */
    async stop (): Promise<void> {
      stopping.abort()
      await Promise.allSettled([...running])
      sender.close()
    },
  }
}
