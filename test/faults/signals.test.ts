import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  acknowledged, countStatuses, listAllIds, register, removeDir, request, seededDataDir, sleep, slowPost, startLoad, startServer, stopServer,
  waitUntilUp, within, type Account, type Answer, type ServerProcess,
} from './support.js'

/**
 * The embedded database's state in its control file (PostgreSQL's DBState at byte 16):
 * 1 = shut down cleanly, 6 = in production (a start after this runs crash recovery).
 */
const clusterState = (dataDir: string) => readFileSync(join(dataDir, 'global', 'pg_control')).readUInt32LE(16)
const SHUT_DOWN = 1
const IN_PRODUCTION = 6

const incomingRequests = (server: ServerProcess) => server.output().split('\n').filter((line) => line.includes('"msg":"incoming request"')).length

describe('the server process on the embedded database, signalled under load', () => {
  const servers: ServerProcess[] = []
  const dirs: string[] = []
  const start = async (dataDir: string, env: Record<string, string> = {}) => {
    const server = await startServer({ DATA_DIR: dataDir, ...env })
    servers.push(server)
    await waitUntilUp(server)
    return server
  }
  afterAll(async () => {
    for (const server of servers) await stopServer(server)
    for (const dir of dirs) await removeDir(dir)
  })

  it('on SIGTERM completes every accepted request, refuses new ones, exits 0 within 10 s and closes the database cleanly', async () => {
    const dataDir = await seededDataDir('sigterm')
    dirs.push(dataDir)
    const server = await start(dataDir, { LOG_LEVEL: 'debug' }) // debug: a line per incoming request
    const owner = await register(server.base)

    // In flight when the signal comes: uploads still arriving (their body trickles in over 1.5 s),
    // sign-ups hashing a password off the event loop, and plain creates.
    const before = incomingRequests(server)
    const inFlight: Array<Promise<Answer | string>> = []
    const failed = (e: { cause?: { code?: string }, code?: string, name?: string }) => String(e.cause?.code ?? e.code ?? e.name)
    for (let i = 0; i < 36; i++) {
      if (i % 3 === 0) {
        inFlight.push(slowPost(server.base, '/api/v1/tasks', owner.auth, { title: `slow upload ${i}`, description: 'x'.repeat(200) }, 15, 100).catch(failed))
      } else if (i % 3 === 1) {
        const email = `drain-${i}-${Date.now()}@example.com`
        inFlight.push(request(server.base, '/api/v1/auth/register', { method: 'POST', json: { email, password: 'correct horse battery staple' } }).catch(failed))
      } else {
        inFlight.push(request(server.base, '/api/v1/tasks', { method: 'POST', headers: owner.auth, json: { title: `drain ${i}` } }).catch(failed))
      }
    }
    let answered = 0
    for (const p of inFlight) void p.then(() => { answered++ })
    // Accepted: the server has logged each one as an incoming request.
    while (incomingRequests(server) < before + inFlight.length) await sleep(2)
    const answeredBeforeSignal = answered
    const signalledAt = performance.now()
    process.kill(server.pid, 'SIGTERM')
    while (!server.output().includes('shutting down')) await sleep(2)
    const drainingAt = performance.now()
    // New requests once it is shutting down: refused (connection refused or reset, or a 503), never served.
    const late = await Promise.all(Array.from({ length: 10 }, async (_, i) => {
      await sleep(i * 20)
      try {
        const res = await request(server.base, '/api/v1/tasks', { method: 'POST', headers: owner.auth, json: { title: `too late ${i}` }, timeoutMs: 5000 })
        return res.status
      } catch (error) {
        const e = error as { cause?: { code?: string }, name?: string }
        return String(e.cause?.code ?? e.name)
      }
    }))
    const results = await Promise.all(inFlight)
    const doneAt = performance.now()
    const code = await within(server.exited, 10_000, 'exit after SIGTERM')
    const exitMs = performance.now() - signalledAt

    expect(results.map((r) => typeof r === 'string' ? r : r.status).filter((s) => s !== 201), 'accepted requests that did not complete').toEqual([])
    expect(late.filter((s) => s !== 503 && typeof s !== 'string'), 'requests served after SIGTERM').toEqual([])
    expect(code, server.output().split('\n').filter((l) => !l.includes('request')).slice(-15).join('\n')).toBe(0)
    const stateAfterExit = clusterState(dataDir)
    expect(stateAfterExit).toBe(SHUT_DOWN)

    // The next start: no recovery needed, everything there.
    const again = await start(dataDir)
    const created = results.filter((r): r is Answer => typeof r !== 'string' && r.status === 201 && JSON.parse(r.body).title !== undefined).map((r) => JSON.parse(r.body).id as string)
    const stored = await listAllIds(again.base, owner)
    expect(created.filter((id) => !stored.has(id))).toEqual([])
    const signedUp = results.filter((r): r is Answer => typeof r !== 'string' && JSON.parse(r.body).accessToken !== undefined)
    for (const r of signedUp) {
      expect((await request(again.base, '/api/v1/users/me', { headers: { authorization: `Bearer ${JSON.parse(r.body).accessToken}` } })).status).toBe(200)
    }
    console.log(`[faults] SIGTERM under load: ${JSON.stringify({
      requestsAccepted: inFlight.length,
      answeredBeforeSignal,
      inFlightAtSignal: inFlight.length - answeredBeforeSignal,
      completed: results.filter((r) => typeof r !== 'string' && r.status < 300).length,
      failed: results.filter((r) => typeof r === 'string' || r.status >= 300).length,
      lateRequests: late.length,
      lateRefused: countStatuses(late.map((s) => ({ status: s })) as never),
      exitCode: code,
      signalHandledMs: Math.round(drainingAt - signalledAt),
      lastAnswerMs: Math.round(doneAt - signalledAt),
      exitMs: Math.round(exitMs),
      cleanShutdown: stateAfterExit === SHUT_DOWN,
      acknowledgedLostAfterRestart: created.filter((id) => !stored.has(id)).length,
    })}`)
    await stopServer(again)
  }, 60_000)

  it('after SIGKILL during writes, keeps every acknowledged create (repeated)', async () => {
    const dataDir = await seededDataDir('sigkill')
    dirs.push(dataDir)
    let server = await start(dataDir)
    const account: Account = await register(server.base)
    const rounds: Array<{ round: number, createsSent: number, acknowledged: number, cutByKill: number, lost: number, killedAfterMs: number, restartMs: number }> = []
    const allAcked: string[] = []
    for (let round = 1; round <= 4; round++) {
      const load = startLoad(server.base, account, { concurrency: 6, pauseMs: 0, listEvery: 1000, prefix: `kill-${round}` })
      await sleep(400 + Math.floor(Math.random() * 500))
      process.kill(server.pid, 'SIGKILL')
      const killedAt = load.now()
      await server.exited
      await load.stop()
      expect(clusterState(dataDir)).toBe(IN_PRODUCTION) // a crash, not a clean close
      const restartAt = performance.now()
      server = await start(dataDir)
      const restartMs = performance.now() - restartAt
      const acked = acknowledged(load.outcomes)
      allAcked.push(...acked)
      const stored = await listAllIds(server.base, account)
      const lost = allAcked.filter((id) => !stored.has(id))
      expect(lost).toEqual([])
      const creates = load.outcomes.filter((o) => o.op === 'create')
      const unacked = creates.filter((o) => o.status !== 201)
      expect(unacked.every((o) => typeof o.status === 'string'), 'only requests cut by the kill went unanswered').toBe(true)
      rounds.push({
        round,
        createsSent: creates.length,
        acknowledged: acked.length,
        cutByKill: unacked.length,
        lost: lost.length,
        killedAfterMs: Math.round(killedAt),
        restartMs: Math.round(restartMs),
      })
    }
    const stored = await listAllIds(server.base, account)
    console.log(`[faults] SIGKILL during writes: ${JSON.stringify({
      rounds: rounds.length,
      createsSent: rounds.reduce((n, r) => n + r.createsSent, 0),
      acknowledged: allAcked.length,
      acknowledgedLost: allAcked.filter((id) => !stored.has(id)).length,
      cutByKill: rounds.reduce((n, r) => n + r.cutByKill, 0),
      storedTasks: stored.size,
      perRound: rounds,
    })}`)
  }, 90_000)
})
