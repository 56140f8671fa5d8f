import { getTableColumns, getTableName, type Table } from 'drizzle-orm'

/**
 * A resource's JSON, field by field, and the column each is read from: made from the two definitions
 * a field needs anyway, its column in db/schema.ts (for the migration) and its property in the
 * resource's TypeBox schema (for validation, serialization and the reference). The select lists and
 * the typed nulls of the sync union are derived from these, so adding a field touches those two
 * places only, and a property without a column fails at start.
 */
export interface Field {
  /** As the API names it: `completedAt`. */
  readonly name: string
  /** As the table names it: `completed_at`. */
  readonly column: string
  /** The column's SQL type, for a typed null: `timestamp (3) with time zone`. */
  readonly sqlType: string
}

export function fieldsOf (table: Table, json: { properties: Record<string, unknown> }): readonly Field[] {
  const columns = getTableColumns(table) as Record<string, { name: string, getSQLType (): string }>
  return Object.keys(json.properties).map((name) => {
    const column = columns[name]
    if (column === undefined) throw new Error(`the JSON field ${name} has no column in table ${getTableName(table)}`)
    return { name, column: column.name, sqlType: column.getSQLType() }
  })
}

/** `t.id, t.completed_at as "completedAt", ...`: a row that is the resource's JSON, with nothing to convert. */
export const selectList = (fields: readonly Field[], alias: string): string =>
  fields.map(({ name, column }) => name === column ? `${alias}.${column}` : `${alias}.${column} as "${name}"`).join(', ')

/** `null::uuid, null::text, ...`: the same columns, empty, for another kind of row in a union. */
export const typedNulls = (fields: readonly Field[]): string => fields.map(({ sqlType }) => `null::${sqlType}`).join(', ')

/** A timestamp as the API writes it (ISO 8601, milliseconds, Z), computed in SQL. */
export const isoTime = (expression: string) => `to_char(${expression} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`

/** The resource as one JSON value, its times formatted as the API writes them. */
export const jsonObject = (fields: readonly Field[], alias: string): string =>
  `json_build_object(${fields.map(({ name, column, sqlType }) =>
    `'${name}', ${sqlType.startsWith('timestamp') ? isoTime(`${alias}.${column}`) : `${alias}.${column}`}`).join(', ')})`
