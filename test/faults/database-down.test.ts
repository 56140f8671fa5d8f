import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  acknowledged, countStatuses, createCluster, JWT_SECRET, listAllIds, register, request, sleep, startLoad, startServer,
  stopServer, waitUntilUp, type Account, type Cluster, type Outcome, type ServerProcess,
} from './support.js'

/**
 * The database goes away under a steady load, and comes back. A private cluster, so that stopping
 * it touches nothing else; the real server process, so that "never exits" means the process.
 */
describe('the server process when its PostgreSQL stops and starts again', () => {
  let cluster: Cluster
  let server: ServerProcess
  let account: Account
  const allOutcomes: Outcome[] = []

  beforeAll(async () => {
    cluster = await createCluster()
    await cluster.start()
    server = await startServer({ DATABASE_URL: cluster.url, JWT_SECRET, DATABASE_POOL_SIZE: '5' })
    await waitUntilUp(server)
    account = await register(server.base)
  }, 60_000)

  afterAll(async () => {
    await stopServer(server)
    await cluster?.destroy()
  })

  /** Every answer is a 2xx or a 503 problem with Retry-After, within 5 s; nothing else. */
  function expectOnlySuccessOr503 (outcomes: Outcome[]) {
    const bad = outcomes.filter((o) => !(o.status === 200 || o.status === 201 || (o.status === 503 && o.problem && o.retryAfter !== null)))
    expect(bad.slice(0, 5), `unexpected answers: ${JSON.stringify(countStatuses(bad))}`).toEqual([])
    const slow = outcomes.filter((o) => o.end - o.start > 5000)
    expect(slow.slice(0, 5), 'answers that took over 5 s').toEqual([])
  }

  for (const mode of ['fast', 'immediate'] as const) {
    it(`answers 503 with Retry-After while stopped (-m ${mode}), recovers within 5 s, loses nothing acknowledged`, async () => {
      const load = startLoad(server.base, account, { prefix: `outage-${mode}` })
      await sleep(1500)
      const stopAt = load.now()
      await cluster.stop(mode)
      const stoppedAt = load.now()
      await sleep(1000)
      const ready = await request(server.base, '/readyz', { timeoutMs: 6000 })
      expect(ready.status).toBe(503)
      expect(ready.retryAfter).not.toBeNull()
      expect(ready.ms).toBeLessThan(5000)
      await sleep(1500)
      const startAt = load.now()
      await cluster.start()
      const startedAt = load.now()
      // Keep the load until a success, then 1.5 s more.
      while (!load.outcomes.some((o) => o.start >= startedAt && (o.status === 201 || o.status === 200)) && load.now() - startedAt < 10_000) await sleep(50)
      await sleep(1500)
      await load.stop()
      allOutcomes.push(...load.outcomes)

      expect(server.child.exitCode, 'the process exited').toBeNull()
      expectOnlySuccessOr503(load.outcomes)
      const duringOutage = load.outcomes.filter((o) => o.start >= stoppedAt && o.end <= startAt)
      expect(duringOutage.length).toBeGreaterThan(0)
      expect(duringOutage.every((o) => o.status === 503)).toBe(true)
      const firstFailure = load.outcomes.filter((o) => o.status === 503).sort((a, b) => a.end - b.end)[0]
      const firstSuccessAfter = load.outcomes.filter((o) => o.start >= startedAt && (o.status === 201 || o.status === 200)).sort((a, b) => a.end - b.end)[0]
      expect(firstSuccessAfter, 'no success after the database came back').toBeDefined()
      const recoveryMs = firstSuccessAfter!.end - startedAt
      expect(recoveryMs).toBeLessThan(5000)

      const stored = await listAllIds(server.base, account)
      const acked = acknowledged(load.outcomes)
      const lost = acked.filter((id) => !stored.has(id))
      expect(lost).toEqual([])
      console.log(`[faults] database stop -m ${mode}: ${JSON.stringify({
        requestsSent: load.outcomes.length,
        statuses: countStatuses(load.outcomes),
        createsAcknowledged: acked.length,
        acknowledgedLost: lost.length,
        firstFailureAfterStopMs: firstFailure ? Math.round(firstFailure.end - stopAt) : null,
        pgCtlStopMs: Math.round(stoppedAt - stopAt),
        outageMs: Math.round(firstSuccessAfter!.end - (firstFailure?.end ?? stoppedAt)),
        pgCtlStartMs: Math.round(startedAt - startAt),
        firstSuccessAfterStartMs: Math.round(recoveryMs),
        slowestAnswerMs: Math.round(Math.max(...load.outcomes.map((o) => o.end - o.start))),
      })}`)
    }, 60_000)
  }

  it('has 0 errors one second after pg_terminate_backend of all its connections under load', async () => {
    const admin = new pg.Client({ connectionString: cluster.url })
    await admin.connect()
    try {
      const load = startLoad(server.base, account, { prefix: 'terminate' })
      await sleep(1500)
      const killAt = load.now()
      const { rows } = await admin.query(`select count(*)::int as n from (select pg_terminate_backend(pid) from pg_stat_activity
        where backend_type = 'client backend' and pid <> pg_backend_pid()) t`)
      await sleep(2500)
      await load.stop()
      allOutcomes.push(...load.outcomes)

      expect(server.child.exitCode).toBeNull()
      expect(rows[0].n).toBeGreaterThan(0)
      expectOnlySuccessOr503(load.outcomes)
      const late = load.outcomes.filter((o) => o.start >= killAt + 1000)
      const lateErrors = late.filter((o) => o.status !== 200 && o.status !== 201)
      expect(late.length).toBeGreaterThan(20)
      expect(lateErrors.length).toBe(0)
      const stored = await listAllIds(server.base, account)
      const acked = acknowledged(load.outcomes)
      expect(acked.filter((id) => !stored.has(id))).toEqual([])
      console.log(`[faults] pg_terminate_backend: ${JSON.stringify({
        connectionsTerminated: rows[0].n,
        requestsSent: load.outcomes.length,
        statuses: countStatuses(load.outcomes),
        errorsInFirstSecond: load.outcomes.filter((o) => o.start >= killAt && o.start < killAt + 1000 && o.status !== 200 && o.status !== 201).length,
        requestsAfterOneSecond: late.length,
        errorsAfterOneSecond: lateErrors.length,
        createsAcknowledged: acked.length,
        acknowledgedLost: 0,
      })}`)
    } finally {
      await admin.end()
    }
  }, 30_000)

  it('keeps every acknowledged create of the whole run', async () => {
    const stored = await listAllIds(server.base, account)
    const acked = acknowledged(allOutcomes)
    // A create that was not acknowledged (503) may or may not have committed: the client retries.
    const unacknowledged = allOutcomes.filter((o) => o.op === 'create' && o.status !== 201)
    expect(acked.filter((id) => !stored.has(id))).toEqual([])
    console.log(`[faults] database down, whole run: ${JSON.stringify({
      requestsSent: allOutcomes.length,
      createsSent: allOutcomes.filter((o) => o.op === 'create').length,
      createsAcknowledged: acked.length,
      acknowledgedLost: acked.filter((id) => !stored.has(id)).length,
      createsNotAcknowledged: unacknowledged.length,
      storedTasks: stored.size,
    })}`)
  })
})
