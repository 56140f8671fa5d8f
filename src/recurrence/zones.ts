import { Temporal } from 'temporal-polyfill'

/**
 * An IANA name: a letter first, then letters, digits, `_`, `+`, `-`, in `/`-separated parts
 * (`Europe/Berlin`, `America/Argentina/Buenos_Aires`, `Etc/GMT+5`, `UTC`). Offsets such as `+01:00`,
 * which Temporal would take as zones, are not names: a fixed offset has no DST, and says so less clearly.
 */
const ZONE_NAME = /^[A-Za-z][A-Za-z0-9_+-]*(?:\/[A-Za-z0-9_+-]+)*$/

export const ZONE_MESSAGE = 'must be an IANA time zone name, such as Europe/Berlin, America/New_York or UTC'

/**
 * `name` spelled as the time-zone database spells it (`europe/berlin` is `Europe/Berlin`; aliases
 * such as `US/Pacific` stay as given), or undefined when there is no such zone. Node's ICU data
 * decides, whatever the process's TZ variable says.
 */
export function zoneName (name: string): string | undefined {
  if (name.length > 64 || !ZONE_NAME.test(name)) return undefined
  try {
    return Temporal.ZonedDateTime.from({ timeZone: name, year: 2000, month: 1, day: 1 }).timeZoneId
  } catch {
    return undefined
  }
}
