/**
 * Conditional requests (RFC 9110, section 13) for resources with an integer version. The ETag is
 * the version and the first eight characters of the id, `"3-1f0e9c2a"`: a client holding the
 * resource can read both anyway, a write conditioned on it needs no read first (`... where version
 * = any($n)` in the write itself), and the tag of one task does not match another's.
 */
export function etagOf (id: string, version: number): string {
  return `"${version}-${id.slice(0, 8)}"`
}

function entityTags (header: string): string[] {
  return header.split(',').map((t) => t.trim()).filter((t) => t.length > 0)
}

/**
 * Which versions a write is conditioned on (from If-Match): undefined for none; an empty list
 * matches nothing (a header naming only tags we never issue).
 */
export type IfVersions = number[] | undefined

const STRONG_TAG = /^"([1-9][0-9]{0,9})-([0-9a-f]{8})"$/

/**
 * The versions of resource `id` an `If-Match` header allows: undefined when it allows any (`*`, or
 * no header); an empty list when it names only tags we never issued for `id`, or weak ones (strong
 * comparison), so nothing matches.
 */
export function ifMatchVersions (header: string | undefined, id: string): number[] | undefined {
  if (header === undefined) return undefined
  const tags = entityTags(header)
  if (tags.includes('*')) return undefined
  return tags.flatMap((t) => {
    const [, version, idPrefix] = STRONG_TAG.exec(t) ?? []
    return version === undefined || idPrefix !== id.slice(0, 8).toLowerCase() || Number(version) > 2_147_483_647 ? [] : [Number(version)]
  })
}

/** True when `If-None-Match` names `etag` (weak comparison) or is `*`. */
export function noneMatchHits (header: string | undefined, etag: string): boolean {
  if (header === undefined) return false
  return entityTags(header).some((t) => t === '*' || t.replace(/^W\//, '') === etag)
}
