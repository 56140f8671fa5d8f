/**
 * Load runs without wrk: autocannon for the closed loops, and a small keep-alive node:http client for
 * the paced users (autocannon has no think time: it sends the next request on the answer, or at a fixed
 * rate). Both see each connection, so starved connections are counted rather than inferred.
 */
import { setMaxListeners } from 'node:events'
import { Agent, request } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import autocannon from 'autocannon'
import { countStarved, summarizeLatencies, type RunResult } from './results.js'
import { kindPicker, randomItem, requestFor, thinkTime, type HttpRequest, type Scenario, type SeededUser } from './scenarios.js'

const TIMEOUT_SECONDS = 30

export async function runNodeLoad (baseUrl: string, users: SeededUser[], scenario: Scenario, connections: number,
  durationSeconds: number, signal: AbortSignal): Promise<RunResult> {
  signal.throwIfAborted()
  const run = scenario.thinkMs ? runPaced : runAutocannon
  return run(baseUrl, users, scenario, connections, durationSeconds, signal)
}

async function runAutocannon (baseUrl: string, users: SeededUser[], scenario: Scenario, connections: number,
  durationSeconds: number, signal: AbortSignal): Promise<RunResult> {
  const pick = kindPicker(scenario)
  const latencies: number[] = []
  const answers = new Map<object, number>()
  const instance = autocannon({
    url: baseUrl,
    connections,
    duration: durationSeconds,
    timeout: TIMEOUT_SECONDS,
    // autocannon writes Content-Length into the headers it is handed back: requestFor makes new ones
    // each time, or a GET after a POST would carry the POST's length.
    requests: [{ setupRequest: (defaults) => ({ ...defaults, ...requestFor(pick(), randomItem(users)) }) }],
  })
  // autocannon's own histogram leaves out non-2xx answers and has no p95; wrk's counts every answer.
  instance.on('response', (client, _status, _bytes, responseTime) => {
    latencies.push(responseTime)
    answers.set(client, (answers.get(client) ?? 0) + 1)
  })
  const onAbort = () => instance.stop()
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    const result = await instance
    signal.throwIfAborted()
    const perConnection = [...answers.values(), ...new Array<number>(Math.max(0, connections - answers.size)).fill(0)]
    return {
      scenario: scenario.name,
      connections,
      durationSeconds: result.duration,
      requests: latencies.length,
      requestsPerSecond: latencies.length / result.duration,
      latencyMs: summarizeLatencies(Float64Array.from(latencies)),
      // autocannon counts a timeout as an error too.
      errors: { non2xx: result.non2xx, socket: result.errors - result.timeouts, timeouts: result.timeouts },
      starved: countStarved(perConnection),
    }
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}

type Outcome = { status: number, ms: number } | { failure: 'socket' | 'timeout' | 'stopped' }

interface Tally { latencies: number[], non2xx: number, socket: number, timeouts: number }

/** `connections` users, each on its own keep-alive connection, pausing a think time before every request. */
async function runPaced (baseUrl: string, users: SeededUser[], scenario: Scenario, connections: number,
  durationSeconds: number, signal: AbortSignal): Promise<RunResult> {
  const pick = kindPicker(scenario)
  const tally: Tally = { latencies: [], non2xx: 0, socket: 0, timeouts: 0 }
  // Ends the run: at its deadline, or when the benchmark is stopped.
  const ending = new AbortController()
  const stop = ending.signal
  // Every user waits on it, in a pause or a request: one listener each is no leak.
  setMaxListeners(connections + 10, stop)
  const end = () => ending.abort()
  const deadline = setTimeout(end, durationSeconds * 1000)
  signal.addEventListener('abort', end, { once: true })
  const started = performance.now()

  const pacedUser = async (): Promise<number> => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    let answered = 0
    try {
      // Thinking first staggers the start, as wrk's delay() does.
      while (await pause(thinkTime(scenario), stop)) {
        const outcome = await send(baseUrl, agent, requestFor(pick(), randomItem(users)), stop)
        if (stop.aborted) break // an answer the end of the run cut off is not counted, as with wrk
        if ('failure' in outcome) {
          if (outcome.failure === 'timeout') tally.timeouts++
          else tally.socket++
          continue
        }
        answered++
        tally.latencies.push(outcome.ms)
        if (outcome.status < 200 || outcome.status > 299) tally.non2xx++
      }
    } finally {
      agent.destroy()
    }
    return answered
  }

  let perConnection: number[]
  try {
    perConnection = await Promise.all(Array.from({ length: connections }, pacedUser))
  } finally {
    clearTimeout(deadline)
    signal.removeEventListener('abort', end)
  }
  signal.throwIfAborted()
  const seconds = (performance.now() - started) / 1000
  return {
    scenario: scenario.name,
    connections,
    durationSeconds: seconds,
    requests: tally.latencies.length,
    requestsPerSecond: tally.latencies.length / seconds,
    latencyMs: summarizeLatencies(Float64Array.from(tally.latencies)),
    errors: { non2xx: tally.non2xx, socket: tally.socket, timeouts: tally.timeouts },
    starved: countStarved(perConnection),
  }
}

/** Waits `ms`; false when `stop` fired first. */
async function pause (ms: number, stop: AbortSignal): Promise<boolean> {
  try {
    await sleep(ms, undefined, { signal: stop })
    return true
  } catch {
    return false
  }
}

/** One request, its body read to the end; never rejects. */
function send (baseUrl: string, agent: Agent, { method, path, headers, body }: HttpRequest, stop: AbortSignal): Promise<Outcome> {
  return new Promise((resolve) => {
    const started = performance.now()
    let timedOut = false
    const req = request(new URL(path, baseUrl), { agent, method, headers, signal: stop }, (res) => {
      res.on('data', () => {}) // drain: the latency ends with the last byte, as in wrk
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - started }))
      res.on('error', () => resolve({ failure: stop.aborted ? 'stopped' : 'socket' }))
    })
    req.setTimeout(TIMEOUT_SECONDS * 1000, () => {
      timedOut = true
      req.destroy()
    })
    req.on('error', () => resolve({ failure: stop.aborted ? 'stopped' : timedOut ? 'timeout' : 'socket' }))
    req.end(body)
  })
}
