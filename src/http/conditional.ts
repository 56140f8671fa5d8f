import { createHash } from 'node:crypto'

/**
 * Conditional requests (RFC 9110, section 13) for resources with an integer version.
 * The ETag is strong and opaque: a digest of the id and version, so a client cannot guess the
 * tag of a version it has not seen, and tags of two tasks never collide.
 */
export function etagOf (id: string, version: number): string {
  return `"${createHash('sha256').update(`${id}:${version}`).digest('base64url').slice(0, 22)}"`
}

function entityTags (header: string): string[] {
  return header.split(',').map((t) => t.trim()).filter((t) => t.length > 0)
}

/** True when `If-Match` is `*` or names `etag`. Weak tags never match (strong comparison). */
export function ifMatchHits (header: string, etag: string): boolean {
  return entityTags(header).some((t) => t === '*' || t === etag)
}

/** True when `If-None-Match` names `etag` (weak comparison) or is `*`. */
export function noneMatchHits (header: string | undefined, etag: string): boolean {
  if (header === undefined) return false
  return entityTags(header).some((t) => t === '*' || t.replace(/^W\//, '') === etag)
}
