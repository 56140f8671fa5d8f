import { SerializerSelector, type SerializerCompiler, type SerializerFactory } from '@fastify/fast-json-stringify-compiler'

// `any`: ajv's own context argument, passed through untouched
type Validate = ((data: unknown, context?: any) => unknown) & { errors?: unknown }

/**
 * Route schemas compiled at their first use, not at start. Fastify compiles, before it listens, a
 * validator for every part of every route and a serializer for every status of every response:
 * ~500 ms of the HTTP thread's CPU in an embedded `npm start` of ~2.3 s (ajv and fast-json-stringify
 * in a --cpu-prof of the start, issue 21), for schemas most processes never use (the error statuses,
 * the routes a front end does not call). Compiled at its first call, a route's validator or
 * serializer costs its first request a few milliseconds once.
 *
 * `compileAll` compiles whatever is still pending, so that a test can show every schema compiles.
 */
export function compileOnUse () {
  const pending = new Set<() => unknown>()

  /** `compile`'s function, compiled at its first call (or by compileAll). */
  function deferred<F> (compile: () => F): () => F {
    let compiled: F | undefined
    const get = () => {
      if (compiled === undefined) {
        compiled = compile()
        pending.delete(get)
      }
      return compiled
    }
    pending.add(get)
    return get
  }

  return {
    /** Wraps a validator compiler (ajv's: a function that sets `errors` when it returns false). */
    validators<Route, V extends Validate> (compiler: (route: Route) => V): (route: Route) => V {
      return (route) => {
        const compiled = deferred(() => compiler(route))
        const validate: Validate = (data, context) => {
          const inner = compiled()
          const result = inner(data, context)
          validate.errors = inner.errors
          return result
        }
        // Fastify then passes the parent object, so that ajv may replace a coerced root value.
        return Object.assign(validate, { schemaEnv: true }) as unknown as V
      }
    },

    /** Fastify's own serializer builder (fast-json-stringify), with each serializer compiled on use. */
    serializers (...factory: Parameters<SerializerFactory>): SerializerCompiler {
      const build = SerializerSelector()(...factory)
      return (route) => {
        const compiled = deferred(() => build(route))
        return (data) => compiled()(data)
      }
    },

    /** Compiles every validator and serializer not yet used; returns how many there were. */
    compileAll (): number {
      const count = pending.size
      for (const compile of [...pending]) compile()
      return count
    },
  }
}
