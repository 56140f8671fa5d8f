import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { Database } from '../db/client.js'
import { queryOne, statement } from '../db/sql.js'
import type { NoticeFeed } from '../events/feed.js'
import { CHANGES_CHANNEL, jobsNotice } from '../events/notices.js'

/** A claimed row of `jobs` (db/schema.ts), as a handler gets it. */
export interface Job {
  id: number
  kind: string
  userId: string
  taskId: string | null
  reminderId: string | null
  occurrence: string | null
  payload: unknown
  runAt: string
  attempts: number
}

/**
 * Does the claimed jobs of one kind. It must finish each only while `token` still holds it (the lease
 * may have ended and another process taken it): see `jobs` in db/schema.ts. A job it leaves stays
 * claimed until the lease ends, then runs again.
 */
export type JobHandler = (jobs: Job[], token: string) => Promise<void>

/** Jobs claimed at once. */
const BATCH = 500
/** However far the next job is, each process looks again this often: a wake-up that was lost costs at most this. */
const MAX_SLEEP_MS = 60_000
/** After a failed run (the database away), the next try. */
const RETRY_MS = 1_000

const CLAIM = statement(`with due as (
    select j.id from jobs j where j.run_at <= now() and (j.lease_until is null or j.lease_until <= now())
    order by j.run_at limit $1 for update skip locked
  )
  update jobs j set lease_until = now() + $2::int * interval '1 second', lease_token = $3::uuid, attempts = j.attempts + 1
  from due where j.id = due.id
  returning j.id, j.kind, j.user_id as "userId", j.task_id as "taskId", j.reminder_id as "reminderId", j.occurrence,
    j.payload, j.run_at as "runAt", j.attempts`)
/** When the next job can be claimed: the earliest unclaimed one, or the earliest lease to end. */
const NEXT = statement(`select least(
    (select j.run_at from jobs j where j.lease_until is null order by j.run_at limit 1),
    (select greatest(j.lease_until, j.run_at) from jobs j where j.lease_until is not null order by j.lease_until limit 1)
  ) as "next"`)

export interface SchedulerOptions {
  database: Database
  /** The process's one LISTEN, which carries the wake-ups of other processes (a `jobs` notice). */
  feed: Pick<NoticeFeed, 'subscribe'>
  logger: FastifyBaseLogger
  /** How long a claim holds (JOBS_LEASE_SECONDS). */
  leaseSeconds: number
  handlers: Record<string, JobHandler>
}

/**
 * This process's share of the durable jobs (DESIGN.md, background work). It sleeps until the next
 * due job, claims what is due (FOR UPDATE SKIP LOCKED, with a lease), and hands each kind to its
 * handler. Any number of processes may run one on a database: each job is claimed by one of them.
 * A process that schedules a job due within the minute tells the others over NOTIFY (`soon`), on the
 * channel every process already LISTENs to; each looks at the table at least once a minute anyway.
 */
export function scheduler ({ database, feed, logger, leaseSeconds, handlers }: SchedulerOptions) {
  let timer: NodeJS.Timeout | undefined
  /** When the timer fires (ms since the epoch); Infinity when none is set. */
  let wakeAt = Infinity
  let running: Promise<void> | undefined
  let again = false
  let stopped = true
  let unsubscribe: (() => void) | undefined
  const told = new Set<number>()
  let telling = false

  const arm = (at: number) => {
    if (stopped || at >= wakeAt) return
    clearTimeout(timer)
    wakeAt = at
    // setTimeout takes at most 2^31-1 ms; the sleep is capped far below that anyway.
    timer = setTimeout(() => { wakeAt = Infinity; run() }, Math.max(0, Math.min(at - Date.now(), MAX_SLEEP_MS)))
    timer.unref()
  }

  /** Claims and does what is due, batch after batch, then sleeps until the next. One run at a time. */
  function run (): void {
    if (stopped) return
    if (running) {
      again = true
      return
    }
    running = (async () => {
      do {
        again = false
        try {
          let claimed: Job[]
          do {
            const token = randomUUID()
            claimed = await database.query<Job>(CLAIM, [BATCH, leaseSeconds, token])
            const byKind = new Map<string, Job[]>()
            for (const job of claimed) {
              const same = byKind.get(job.kind)
              if (same) same.push(job)
              else byKind.set(job.kind, [job])
            }
            for (const [kind, jobs] of byKind) {
              const handler = handlers[kind]
              if (handler) await handler(jobs, token)
              else logger.warn({ kind, count: jobs.length }, 'jobs of an unknown kind; left for a process that knows it')
            }
          } while (claimed.length === BATCH && !stopped)
          const next = await queryOne<{ next: string | null }>(database, NEXT)
          arm(next?.next == null ? Date.now() + MAX_SLEEP_MS : Date.parse(next.next))
        } catch (error) {
          if (stopped) break
          logger.warn({ message: (error as Error).message }, 'running due jobs failed; retrying')
          arm(Date.now() + RETRY_MS)
        }
      } while (again && !stopped)
    })().finally(() => { running = undefined })
  }

  /** One NOTIFY for the wake-ups of the last few milliseconds. */
  const tell = () => {
    const soonest = Math.min(...told)
    told.clear()
    database.notify(CHANGES_CHANNEL, [jobsNotice(soonest)]).catch((error: Error) => {
      logger.warn({ message: error.message }, 'could not tell the other processes of a job due soon; they look within a minute')
    }).finally(() => {
      if (told.size > 0) setTimeout(tell, 5)
      else telling = false
    })
  }

  return {
    /** Call once the feed listens. */
    start (): void {
      stopped = false
      unsubscribe = feed.subscribe({
        notice: (notice) => { if (notice.kind === 'jobs') arm(notice.at) },
        lost () {},
        // Wake-ups sent meanwhile are gone: look at the table again.
        restored: () => run(),
      })
      run()
    },

    /**
     * A job was just scheduled (committed) for `at` (ms since the epoch): this process and the others
     * wake for it if it is sooner than what they wait for.
     */
    soon (at: number): void {
      if (stopped) return
      arm(at)
      if (at - Date.now() >= MAX_SLEEP_MS) return // every process looks again before then
      told.add(at)
      if (!telling) {
        telling = true
        setTimeout(tell, 5)
      }
    },

    /** Runs now (a test, or after a burst of scheduling). */
    runNow: () => run(),

    /** Stops claiming; waits for the run under way, whose jobs finish or are left to their lease. */
    async stop (): Promise<void> {
      stopped = true
      clearTimeout(timer)
      unsubscribe?.()
      await running
    },
  }
}

export type Scheduler = ReturnType<typeof scheduler>
