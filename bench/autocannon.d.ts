// autocannon ships no types and @types/autocannon is not a dependency: this declares the part of
// its API (README, "API", "Results" and "Events") that bench/node-load.ts uses.
declare module 'autocannon' {
  export interface Request {
    method?: string
    path?: string
    headers?: Record<string, string>
    body?: string
  }

  export interface Options {
    url: string
    connections?: number
    /** Seconds. */
    duration?: number
    /** Seconds before a request counts as a timeout. */
    timeout?: number
    method?: string
    headers?: Record<string, string>
    body?: string
    /** A run before the measured one, with its own connections and duration; not in the result. */
    warmup?: { connections?: number, duration?: number }
    requests?: Array<Request & {
      /** Called before every request; returns the request to send. */
      setupRequest?: (request: Request, context: Record<string, unknown>) => Request
    }>
  }

  /** hdr-histogram-percentiles-obj */
  export interface Histogram {
    average: number
    mean: number
    stddev: number
    min: number
    max: number
    p50: number
    p90: number
    p97_5: number
    p99: number
  }

  export interface Result {
    requests: Histogram
    /** Milliseconds. */
    latency: Histogram
    throughput: Histogram
    errors: number
    timeouts: number
    non2xx: number
    statusCodeStats: Record<string, { count: number }>
    duration: number
  }

  export interface Instance extends PromiseLike<Result> {
    stop (): void
    /** Every answer, whatever its status; `client` is the connection's own object; milliseconds. */
    on (event: 'response', listener: (client: object, statusCode: number, resBytes: number, responseTime: number) => void): this
  }

  function autocannon (options: Options): Instance
  export default autocannon
}
