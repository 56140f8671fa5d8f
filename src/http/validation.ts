import { Ajv } from 'ajv'
import addFormatsModule from 'ajv-formats'
import { storableTime } from '../db/timestamps.js'
import { parseRule } from '../recurrence/rule.js'
import { ZONE_MESSAGE, zoneName } from '../recurrence/zones.js'
import type { FieldError } from './problem.js'

const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default

/**
 * Bodies are validated strictly: an unknown field or a wrong type is a 400, never dropped or
 * coerced (`{"title": 5}` is not the title "5"). Query strings and paths arrive as text, so there
 * types are coerced (`limit=20`, `completed=true`) and a lone `tag=x` becomes an array.
 */
export function validatorCompiler () {
  // verbose: a failure carries the value and its schema, so a message can say what is accepted.
  const strict = new Ajv({ allErrors: true, verbose: true, coerceTypes: false, useDefaults: true, removeAdditional: false, strict: false })
  const lenient = new Ajv({ allErrors: true, verbose: true, coerceTypes: 'array', useDefaults: true, removeAdditional: false, strict: false })
  for (const ajv of [strict, lenient]) {
    addFormats(ajv)
    // Ours, not ajv-formats': a time we can store exactly (years 0001-9999, no leap second).
    ajv.addFormat('date-time', { type: 'string', validate: (text: string) => storableTime(text).ok })
    // An IANA zone name the time-zone database knows (recurrence/zones.ts).
    ajv.addFormat('time-zone', { type: 'string', validate: (text: string) => zoneName(text) !== undefined })
    // An RRULE body taskbase accepts (recurrence/rule.ts); the message says what is wrong with it.
    ajv.addFormat('rrule', { type: 'string', validate: (text: string) => parseRule(text).ok })
  }
  return ({ schema, httpPart }: { schema: object, httpPart?: string }) =>
    (httpPart === 'body' ? strict : lenient).compile(schema)
}

/** One failure as ajv reports it (verbose). */
export interface SchemaFailure {
  instancePath: string
  message?: string
  keyword: string
  params: Record<string, unknown>
  data?: unknown
  parentSchema?: { description?: string, properties?: Record<string, unknown> }
}

const CONTEXT_NAMES: Record<string, string> = { querystring: 'query', params: 'path', headers: 'header', body: 'body' }

/** `body`, `query`: the part of the request a validation context names. */
export const partName = (context: string | undefined): string => CONTEXT_NAMES[context ?? ''] ?? context ?? 'request'

/** `body.tags.2`, `query.limit`: where a schema failure is, in the words of the request. */
function fieldPath (context: string | undefined, e: SchemaFailure): string {
  const parts = [partName(context)]
  for (const segment of e.instancePath.split('/').slice(1)) parts.push(segment.replaceAll('~1', '/').replaceAll('~0', '~'))
  const property = e.params.missingProperty ?? e.params.additionalProperty ?? e.params.propertyName
  if (typeof property === 'string') parts.push(property)
  return parts.join('.')
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string', integer: 'a whole number', number: 'a number', boolean: 'true or false', array: 'a list', object: 'an object', null: 'null',
}

/** `a, b, or c`. */
const oneOf = (words: string[]) => words.length <= 2 ? words.join(' or ') : `${words.slice(0, -1).join(', ')}, or ${words.at(-1)}`

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`

/** What is wrong with the field, in words that name what it takes. */
function fieldMessage (e: SchemaFailure): string {
  const { params } = e
  switch (e.keyword) {
    case 'additionalProperties': return 'is not a known field'
    case 'required': return 'is required'
    case 'type': return `must be ${oneOf([params.type as string | string[]].flat().map((t) => TYPE_NAMES[t] ?? t))}`
    case 'enum': {
      const values = params.allowedValues as unknown[]
      const named = values.filter((v) => v !== null).map(String)
      return `must be one of: ${named.join(', ')}${values.includes(null) ? ', or null' : ''}`
    }
    case 'format': {
      if (params.format === 'date-time' && typeof e.data === 'string') {
        const time = storableTime(e.data)
        if (!time.ok) return `${time.reason}, such as 2026-12-01T17:00:00Z`
      }
      if (params.format === 'time-zone') return ZONE_MESSAGE
      if (params.format === 'rrule' && typeof e.data === 'string') {
        const rule = parseRule(e.data)
        if (!rule.ok) return rule.message
      }
      if (params.format === 'uuid') return 'must be a UUID, such as 0b9a7c64-5b0f-4f7e-9a3e-4f1f2a8e6d11'
      if (params.format === 'email') return 'must be an email address'
      return `must be a valid ${String(params.format)}`
    }
    case 'pattern': {
      if (params.pattern === '\\S') return 'must not be blank'
      const description = e.parentSchema?.description
      return description ? `must be ${description.charAt(0).toLowerCase()}${description.slice(1)}` : 'is not in the accepted form'
    }
    case 'minLength': return params.limit === 1 ? 'must not be empty' : `must be at least ${plural(params.limit as number, 'character')}`
    case 'maxLength': return `must be at most ${plural(params.limit as number, 'character')}`
    case 'minimum': return `must be at least ${params.limit as number}`
    case 'maximum': return `must be at most ${params.limit as number}`
    case 'minItems': return `must hold at least ${plural(params.limit as number, 'item')}`
    case 'maxItems': return `must hold at most ${plural(params.limit as number, 'item')}`
    case 'minProperties': {
      const fields = Object.keys(e.parentSchema?.properties ?? {})
      return fields.length > 0 ? `must name at least one field to change: ${fields.join(', ')}` : 'must not be empty'
    }
    default: return e.message ?? 'is invalid'
  }
}

/**
 * Which failure speaks for a field when it has several: the one that says most about what to send.
 * "" for a title fails both minLength and the not-blank pattern; a string for a list fails its type
 * and nothing else matters.
 */
const PRECEDENCE = ['additionalProperties', 'required', 'type', 'enum', 'const', 'format', 'pattern', 'minLength', 'maxLength',
  'minimum', 'maximum', 'minItems', 'maxItems', 'minProperties']
const rank = (keyword: string) => {
  const at = PRECEDENCE.indexOf(keyword)
  return at < 0 ? PRECEDENCE.length : at
}

/**
 * One error per wrong field, naming what it accepts. An object with an unknown field is not also
 * told what it lacks: `{"email": ...}` where only `name` may be sent is about `email`.
 */
export function fieldErrors (context: string | undefined, failures: SchemaFailure[]): FieldError[] {
  const unknownIn = new Set(failures.filter((e) => e.keyword === 'additionalProperties').map((e) => e.instancePath))
  const relevant = failures.filter((e) => !((e.keyword === 'required' || e.keyword === 'minProperties') && unknownIn.has(e.instancePath)))
  const byPath = new Map<string, SchemaFailure>()
  for (const failure of relevant) {
    const path = fieldPath(context, failure)
    const kept = byPath.get(path)
    if (kept === undefined || rank(failure.keyword) < rank(kept.keyword)) byPath.set(path, failure)
  }
  return [...byPath].map(([path, failure]) => ({ path, message: fieldMessage(failure) }))
}
