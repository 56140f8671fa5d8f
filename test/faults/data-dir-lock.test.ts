import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  acknowledged, freePort, listAllIds, register, removeDir, seededDataDir, SERVER_ENTRY, serverEnv, sleep, startLoad, startServer, stopServer,
  waitUntilUp, within, type ServerProcess,
} from './support.js'

/** A process's state letter in /proc (R, S, D, Z for a zombie...), or undefined once it is reaped. */
function processState (pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
  } catch {
    return undefined
  }
}
const running = (pid: number) => { const state = processState(pid); return state !== undefined && state !== 'Z' }

/**
 * A server in a process group (and session) of its own whose parent never reaps it: `sh` starts it
 * with setsid, then becomes `sleep`, which never calls wait(). Once killed, the server stays a zombie,
 * its pid still answering kill(pid, 0), until `release` ends that parent and init reaps it. That is
 * what a restart "at once" can meet: a parent slower than the restart, or a container whose PID 1
 * never reaps. (Spawned by this test runner directly, the dead server would be reaped within
 * milliseconds, and a lock that trusts the pid would pass by luck.)
 */
interface UnreapedServer { pid: number, port: number, base: string, parent: ChildProcess, output (): string }

async function startUnreaped (dataDir: string): Promise<UnreapedServer> {
  const port = await freePort()
  // sleep's bound: a test runner that dies leaves nothing behind for long.
  const parent = spawn('sh', ['-c', `setsid "$0" ${SERVER_ENTRY} & echo "server pid $!"; exec sleep 120`, process.execPath], {
    env: serverEnv(port, { DATA_DIR: dataDir }),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  let output = ''
  parent.stdout!.on('data', (d) => { output += d })
  parent.stderr!.on('data', (d) => { output += d })
  const leadsItsGroup = (pid: number) => { try { process.kill(-pid, 0); return true } catch { return false } }
  let pid: number | undefined
  // sh prints the pid as it forks; setsid may not have run in the child yet.
  for (const deadline = Date.now() + 5_000; pid === undefined || !leadsItsGroup(pid); await sleep(5)) {
    pid = Number(/^server pid (\d+)$/m.exec(output)?.[1]) || undefined
    if (Date.now() > deadline) throw new Error(`the server did not get a process group of its own: ${output}`)
  }
  return { pid, port, base: `http://127.0.0.1:${port}`, parent, output: () => output }
}

async function waitUp (server: UnreapedServer, timeoutMs = 30_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(50)) {
    if (!running(server.pid)) {
      await sleep(200) // what it wrote last may still be in the pipe
      throw new Error(`server exited: ${server.output()}`)
    }
    try {
      if ((await fetch(`${server.base}/healthz`, { signal: AbortSignal.timeout(1000) })).ok) return
    } catch { /* not listening yet */ }
  }
  throw new Error(`server did not come up in ${timeoutMs} ms: ${server.output()}`)
}

/** Ends the parent that keeps `server` unreaped, after stopping the server if it still runs. */
async function release (server: UnreapedServer): Promise<void> {
  if (running(server.pid)) {
    process.kill(server.pid, 'SIGTERM')
    for (const deadline = Date.now() + 10_000; running(server.pid) && Date.now() < deadline;) await sleep(50)
    if (running(server.pid)) process.kill(-server.pid, 'SIGKILL')
  }
  if (server.parent.exitCode === null && server.parent.signalCode === null) {
    const exited = new Promise((resolve) => server.parent.once('exit', resolve))
    process.kill(server.parent.pid!, 'SIGKILL')
    await exited
  }
}

const lockFile = (dataDir: string) => join(dataDir, 'taskbase.lock')

describe('the data directory lock, with real server processes', () => {
  const dirs: string[] = []
  const unreaped: UnreapedServer[] = []
  const servers: ServerProcess[] = []
  afterAll(async () => {
    for (const server of unreaped) await release(server)
    for (const server of servers) await stopServer(server)
    for (const dir of dirs) await removeDir(dir)
  })

  it('lets a server start at once after its predecessor was SIGKILLed mid-write and not yet reaped, keeping every acknowledged create (10 rounds)', async () => {
    const dataDir = await seededDataDir('relock')
    dirs.push(dataDir)
    let server = await startUnreaped(dataDir)
    unreaped.push(server)
    await waitUp(server)
    const account = await register(server.base)
    const allAcked: string[] = []
    const rounds: Array<{ acknowledged: number, cut: number, upMs: number }> = []
    for (let round = 1; round <= 10; round++) {
      const load = startLoad(server.base, account, { concurrency: 4, pauseMs: 0, listEvery: 1000, prefix: `round-${round}` })
      // The kill lands while creates are being committed: some acknowledged, others in flight.
      for (const deadline = Date.now() + 10_000; acknowledged(load.outcomes).length < 5; await sleep(5)) {
        if (Date.now() > deadline) throw new Error(`no creates acknowledged: ${server.output()}`)
      }
      const killed = server
      process.kill(-killed.pid, 'SIGKILL') // the whole process group, as a supervisor or the OOM killer would
      const restartedAt = performance.now()
      server = await startUnreaped(dataDir) // at once: nothing waits for the old process to die or be reaped
      unreaped.push(server)
      await load.stop()
      await waitUp(server)
      const upMs = performance.now() - restartedAt

      // The race happened: the old server is a zombie still, its pid in the lock file and alive to kill(pid, 0).
      expect(processState(killed.pid)).toBe('Z')
      expect(readFileSync(lockFile(dataDir), 'utf8').trim()).toBe(String(server.pid))
      await release(killed)

      const acked = acknowledged(load.outcomes)
      allAcked.push(...acked)
      const cut = load.outcomes.filter((o) => o.op === 'create' && typeof o.status === 'string').length
      expect(cut, 'creates in flight when the kill came').toBeGreaterThan(0)
      expect(load.outcomes.filter((o) => typeof o.status === 'number' && o.status !== 201)).toEqual([])
      const stored = await listAllIds(server.base, account)
      expect(allAcked.filter((id) => !stored.has(id)), 'acknowledged creates lost').toEqual([])
      rounds.push({ acknowledged: acked.length, cut, upMs: Math.round(upMs) })
    }
    console.log(`[faults] SIGKILL and restart at once: ${JSON.stringify({
      rounds: rounds.length,
      acknowledged: allAcked.length,
      cut: rounds.reduce((n, r) => n + r.cut, 0),
      upMs: rounds.map((r) => r.upMs),
    })}`)
  }, 150_000) // eleven starts, on 2 cores: 49 s at a load average of 3, 110 s at 7 (from source then)

  it('refuses a second server on a data directory in use, naming the holder, with no stack trace', async () => {
    const dataDir = await seededDataDir('locked')
    dirs.push(dataDir)
    const first = await startServer({ DATA_DIR: dataDir })
    servers.push(first)
    await waitUntilUp(first)
    const second = await startServer({ DATA_DIR: dataDir })
    servers.push(second)
    const code = await within(second.exited, 20_000, 'the second server to exit')
    expect(code).toBe(2)
    expect(second.output()).toContain(`The data directory ${dataDir} is in use by another taskbase process (pid ${first.pid})`)
    expect(second.output()).not.toMatch(/^\s+at /m)
    expect((await fetch(`${first.base}/healthz`)).status).toBe(200)
    expect(readFileSync(lockFile(dataDir), 'utf8').trim()).toBe(String(first.pid))
  }, 60_000)

  it('starts on a lock file left behind that names a live, unrelated process', async () => {
    const dataDir = await seededDataDir('stale')
    dirs.push(dataDir)
    writeFileSync(lockFile(dataDir), `${process.pid}\n`) // this test runner: alive, and not a server
    const server = await startServer({ DATA_DIR: dataDir })
    servers.push(server)
    await waitUntilUp(server)
    expect(readFileSync(lockFile(dataDir), 'utf8').trim()).toBe(String(server.pid))
  }, 60_000)
})
