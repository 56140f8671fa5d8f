/**
 * What a list_tasks call over MCP costs against GET /api/v1/tasks of the same page: the real server
 * in a child process, one user with BENCH_MCP_TASKS (20) tasks, then BENCH_MCP_CALLS (200) rounds,
 * each timing one of every kind in turn, one request at a time (latency, not throughput):
 *
 * - `GET /api/v1/tasks` with fetch;
 * - `list_tasks` with the SDK's Client and StreamableHTTPClientTransport, connected once, as an agent calls it;
 * - the same `tools/call` as one JSON-RPC POST with fetch (the server's cost without the SDK client's).
 *
 *   npx tsx bench/mcp.ts                                                          # embedded database
 *   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npx tsx bench/mcp.ts
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { call, createThrowawayDatabase, expectStatus, LOOPBACK, PASSWORD, startServer, stopServer } from './lib.js'

const CALLS = Number(process.env.BENCH_MCP_CALLS ?? 200)
const TASKS = Number(process.env.BENCH_MCP_TASKS ?? 20)
const WARMUP = 20

const quantile = (values: number[], q: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * q))]!

async function main (): Promise<void> {
  const tmp = await mkdtemp(join(tmpdir(), 'taskbase-bench-mcp-'))
  const adminUrl = process.env.BENCH_DATABASE_URL
  if (adminUrl !== undefined && !LOOPBACK.has(new URL(adminUrl).hostname)) throw new Error('BENCH_DATABASE_URL must be on the loopback')
  const database = adminUrl === undefined ? undefined : await createThrowawayDatabase(adminUrl)
  const env: Record<string, string> = database === undefined
    ? { DATA_DIR: join(tmp, 'data') }
    : { DATABASE_URL: database.url, JWT_SECRET: randomBytes(36).toString('base64') }
  // Counted as in production, never reached.
  const server = await startServer({ ...env, RATE_LIMIT_API_PER_MINUTE: '1000000' }, join(tmp, 'server.log'))
  try {
    const base = server.baseUrl
    const registered = await call(base, 'POST', '/api/v1/auth/register', undefined, { email: 'bench-mcp@example.com', password: PASSWORD })
    expectStatus(registered, 201, 'register')
    const token: string = registered.body.accessToken
    for (let i = 0; i < TASKS; i++) {
      expectStatus(await call(base, 'POST', '/api/v1/tasks', token, { title: `Task ${i}`, tags: ['bench'], priority: 'medium' }), 201, 'create')
    }
    const headers = { authorization: `Bearer ${token}` }
    const client = new Client({ name: 'bench', version: '1.0.0' })
    await client.connect(new StreamableHTTPClientTransport(new URL('/mcp', base), { requestInit: { headers } }))
    await client.listTools()

    const rest = async () => {
      const res = await fetch(`${base}/api/v1/tasks`, { headers })
      const page = await res.json() as { items: unknown[] }
      if (res.status !== 200 || page.items.length !== Math.min(TASKS, 20)) throw new Error(`GET /api/v1/tasks answered ${res.status}`)
    }
    const sdk = async () => {
      const result = await client.callTool({ name: 'list_tasks', arguments: {} })
      if (result.isError || (result.structuredContent as { items: unknown[] }).items.length !== Math.min(TASKS, 20)) throw new Error('list_tasks failed')
    }
    const raw = async () => {
      const res = await fetch(`${base}/mcp`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'list_tasks', arguments: {} } }),
      })
      const answer = await res.json() as { result?: { structuredContent?: { items: unknown[] } } }
      if (res.status !== 200 || answer.result?.structuredContent?.items.length !== Math.min(TASKS, 20)) throw new Error(`POST /mcp answered ${res.status}`)
    }
    const kinds = { 'GET /api/v1/tasks (fetch)': rest, 'list_tasks (SDK Client)': sdk, 'tools/call list_tasks (one POST, fetch)': raw }
    const times = Object.fromEntries(Object.keys(kinds).map((name) => [name, [] as number[]]))
    for (let round = 0; round < WARMUP + CALLS; round++) {
      for (const [name, run] of Object.entries(kinds)) {
        const started = performance.now()
        await run()
        if (round >= WARMUP) times[name]!.push(performance.now() - started)
      }
    }
    await client.close()

    const page = (await call(base, 'GET', '/api/v1/tasks', token)).body
    const bytes = Buffer.byteLength(JSON.stringify(page))
    console.log(`\n${database === undefined ? 'embedded PGlite' : 'PostgreSQL'}, ${CALLS} calls of each (after ${WARMUP} warm-up), ` +
      `one at a time, a page of ${page.items.length} tasks (${bytes} bytes of JSON); Node ${process.version}, ${cpus().length} CPUs, ` +
      `load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`)
    console.log('| request | median ms | p95 ms |\n|---|---|---|')
    for (const [name, values] of Object.entries(times)) console.log(`| ${name} | ${quantile(values, 0.5).toFixed(2)} | ${quantile(values, 0.95).toFixed(2)} |`)
  } finally {
    await stopServer(server)
    await database?.drop()
    await rm(tmp, { recursive: true, force: true })
  }
}

await main()
