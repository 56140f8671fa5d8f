import { isIP } from 'node:net'
import ipaddr from 'ipaddr.js'

/** The longest endpoint URL accepted. */
export const MAX_URL_LENGTH = 2048

/** Whether `address` (an IP literal) is a public unicast address: not private, loopback, link-local, reserved, ... */
export function isPublicAddress (address: string): boolean {
  try {
    // process(): an IPv4-mapped IPv6 address (::ffff:127.0.0.1) is judged as the IPv4 address it maps.
    return ipaddr.process(address).range() === 'unicast'
  } catch {
    return false
  }
}

/**
 * Why `raw` cannot be an endpoint, or undefined when it can. Without `allowPrivate`: https only, and
 * no host that is known at creation to be private (an IP literal in any form the URL parser reads,
 * decimal and IPv4-mapped included, or a localhost name). A name that resolves to a private address
 * is refused when each connection is made (sender.ts), so DNS rebinding gains nothing.
 */
export function urlProblem (raw: string, allowPrivate: boolean): string | undefined {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return 'is not an absolute URL'
  }
  if (url.protocol !== 'https:' && !(allowPrivate && url.protocol === 'http:')) {
    return allowPrivate ? 'must be an http or https URL' : 'must be an https URL'
  }
  if (url.username !== '' || url.password !== '') return 'must not hold a user name or password'
  if (url.hash !== '') return 'must not hold a fragment (#...)'
  if (allowPrivate) return undefined
  // The WHATWG parser has already made 2130706433, 0x7f.1 and 0177.0.0.1 into 127.0.0.1.
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
  if (isIP(host) !== 0) return isPublicAddress(host) ? undefined : `points to a private or reserved address (${host})`
  const name = host.toLowerCase().replace(/\.$/, '')
  if (name === 'localhost' || name.endsWith('.localhost') || !name.includes('.')) {
    return `names a local host (${host}); use a public host name`
  }
  return undefined
}
