import { LogController, type FastifyReply, type FastifyRequest } from 'fastify'
import { hostname } from 'node:os'
import { pino, type Logger } from 'pino'

/** What pino writes on every line of this process after the level and time. */
const PROCESS_FIELDS = `"pid":${process.pid},"hostname":${JSON.stringify(hostname())}`

/**
 * One access-log line per request, when it completes (method, path, status, time), where Fastify
 * writes two: the pair cost measurable CPU per request under load (issue 10). The line is written
 * as text, field for field what pino would write through the child logger and the `req` serializer
 * below: pino's serializers and stringify were ~4% of a task read's CPU (--cpu-prof under load,
 * issue 21). Errors, and every other line, still go through pino.
 */
class AccessLog extends LogController {
  constructor (private readonly write: (line: string) => void) {
    super()
  }

  /** At debug level only: tests and operators chasing a hang can still see a request arrive. */
  override incomingRequest (request: FastifyRequest): void {
    request.log.debug({ req: request }, 'incoming request')
  }

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (error) {
      reply.log.error({ req: request, res: reply, responseTime: reply.elapsedTime, err: error }, 'request errored')
      return
    }
    if (!(reply.log as Logger).isLevelEnabled('info')) return // the route's level, as pino would check it
    const id = JSON.stringify(request.id)
    const ip = request.ip // undefined once the client has gone: pino leaves the field out
    this.write(`{"level":30,"time":${Date.now()},${PROCESS_FIELDS},"reqId":${id},"req":{"method":${JSON.stringify(request.method)},` +
      `"url":${JSON.stringify(pathOf(request.url))},"requestId":${id}${ip === undefined ? '' : `,"remoteAddress":${JSON.stringify(ip)}`}},` +
      `"res":{"statusCode":${reply.statusCode}},"responseTime":${reply.elapsedTime},"msg":"request completed"}\n`)
  }
}

/** The URL without its query string, which can carry a token (SSE tickets). */
function pathOf (url: string): string {
  const query = url.indexOf('?')
  return query === -1 ? url : url.slice(0, query)
}

/**
 * Standard output, written 4 KiB at a time (and at least every second) rather than one system call
 * per line: with a line per request, unbuffered logging cost a third of the throughput (mixed load on
 * PostgreSQL, 2,571 against 3,940 req/s with LOG_LEVEL=warn). Whatever is buffered is written on exit.
 */
function bufferedStdout () {
  const destination = pino.destination({ dest: 1, minLength: 4096, sync: false })
  const timer = setInterval(() => { try { destination.flush() } catch { /* closed at exit */ } }, 1_000)
  timer.unref()
  return { destination, stop: () => clearInterval(timer) }
}

/**
 * Fastify's logger: JSON lines at `level`, into `stream` (buffered standard output when omitted).
 * `stop` ends the buffer's timer when the app closes.
 */
export function requestLogger (level: string, stream?: { write (line: string): void }) {
  const stdout = stream ? undefined : bufferedStdout()
  const destination = stream ?? stdout!.destination
  return {
    options: {
      level,
      stream: destination,
      // Bodies and headers are never logged: a request is logged through the serializer below only,
      // which names no header (Authorization, Cookie, Idempotency-Key stay out). No redaction pass
      // then: it ran on every line and matched nothing (2% of what a request allocated, issue 21).
      serializers: {
        // The query string can carry a token (SSE tickets): log the path only.
        req: (req: FastifyRequest) => ({ method: req.method, url: pathOf(req.url), requestId: req.id, remoteAddress: req.ip }),
      },
    },
    controller: new AccessLog((line) => destination.write(line)),
    stop: () => stdout?.stop(),
  }
}
