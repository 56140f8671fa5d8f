import { sql } from 'drizzle-orm'
import {
  bigint, boolean, index, integer, jsonb, pgEnum, pgTable, primaryKey, smallint, text, timestamp, uniqueIndex, uuid, type AnyPgColumn,
} from 'drizzle-orm/pg-core'

// Millisecond precision everywhere, like JavaScript's Date and the JSON we send: a keyset cursor
// holding a timestamp then compares equal to the row it came from.
const time = (name: string) => timestamp(name, { withTimezone: true, precision: 3 })
const createdAt = () => time('created_at').notNull().defaultNow()
const updatedAt = () => time('updated_at').notNull().defaultNow()

export const users = pgTable('users', {
  id: uuid('id').primaryKey().defaultRandom(),
  /**
   * As the user typed it, trimmed; local accounts are unique and looked up by lower(email).
   * Null for an external user whose token carried no email.
   */
  email: text('email'),
  name: text('name'),
  /** An IANA name (checked by the API): the zone of the user's recurring tasks unless a task names its own. */
  timezone: text('timezone').notNull().default('UTC'),
  /** Argon2id PHC string; null for users of an external identity provider, who have no password. */
  passwordHash: text('password_hash'),
  /** For users of an external identity provider: the token's `iss` and `sub` that identify them. */
  authIssuer: text('auth_issuer'),
  authSubject: text('auth_subject'),
  /**
   * The seq of the user's latest change. Every write to one of their tasks takes the next one, by
   * `UPDATE users SET change_seq = change_seq + 1` in a trigger: the row lock orders one user's
   * writes, so seqs are handed out in commit order, and a reader never passes one that commits later.
   */
  changeSeq: bigint('change_seq', { mode: 'number' }).notNull().default(0),
  /** How many tasks the user has, kept by the task triggers: the quota is checked against it. */
  taskCount: integer('task_count').notNull().default(0),
  /** Sync cursors below this seq may have missed a pruned tombstone: they get a 410. */
  syncFloorSeq: bigint('sync_floor_seq', { mode: 'number' }).notNull().default(0),
  /**
   * Whether the user has an enabled webhook endpoint, kept by a trigger on webhooks (migration 0018)
   * under this row's lock: a task write reads it with its seq, and only then pays for the outbox.
   */
  webhooksEnabled: boolean('webhooks_enabled').notNull().default(false),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
}, (t) => [
  // External users are never matched by email: an identity provider that does not verify emails
  // must not open a local account of the same address.
  uniqueIndex('users_email_lower_key').on(sql`lower(${t.email})`).where(sql`${t.authIssuer} is null`),
  uniqueIndex('users_external_identity_key').on(t.authIssuer, t.authSubject),
])

/**
 * One row per refresh token ever issued. A login starts a family; each refresh revokes the
 * presented token and issues the next one in the same family. Only a SHA-256 of the token is kept.
 */
export const refreshTokens = pgTable('refresh_tokens', {
  id: uuid('id').primaryKey().defaultRandom(),
  userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  familyId: uuid('family_id').notNull(),
  tokenHash: text('token_hash').notNull().unique(),
  expiresAt: time('expires_at').notNull(),
  /** Set when the token is rotated, logged out or revoked; presenting it afterwards is reuse. */
  revokedAt: time('revoked_at'),
  createdAt: createdAt(),
}, (t) => [
  index('refresh_tokens_family_idx').on(t.familyId),
  index('refresh_tokens_user_idx').on(t.userId),
])

/**
 * A user's lists of tasks. `position` orders them (fractional indexing: a move writes one row);
 * `seq` is the user's change seq of the project's latest write, as for tasks (migration 0011).
 */
export const projects = pgTable('projects', {
  id: uuid('id').primaryKey().defaultRandom(),
  userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  name: text('name').notNull(),
  color: text('color'),
  archived: boolean('archived').notNull().default(false),
  /** Sorts in byte order (COLLATE "C", set in the migration); filled on insert by the trigger. */
  position: text('position').notNull(),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
  version: integer('version').notNull().default(1),
  seq: bigint('seq', { mode: 'number' }).notNull().default(0),
}, (t) => [
  index('projects_user_list_idx').on(t.userId, t.archived, t.position, t.id),
  index('projects_user_seq_idx').on(t.userId, t.seq),
])

/** Declaration order is sort order: none < low < medium < high. */
export const taskPriority = pgEnum('task_priority', ['none', 'low', 'medium', 'high'])

export const tasks = pgTable('tasks', {
  id: uuid('id').primaryKey().defaultRandom(),
  userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  title: text('title').notNull(),
  description: text('description'),
  completed: boolean('completed').notNull().default(false),
  completedAt: time('completed_at'),
  priority: taskPriority('priority').notNull().default('none'),
  dueAt: time('due_at'),
  /** Tags as the client wrote them. */
  tags: text('tags').array().notNull().default(sql`'{}'::text[]`),
  /** lower() of each tag, written with `tags`: the tag filter is case-insensitive and indexed. */
  tagKeys: text('tag_keys').array().notNull().default(sql`'{}'::text[]`),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
  version: integer('version').notNull().default(1),
  /** The user's change seq of this task's latest write, stamped by a trigger (migration 0008): sync reads by it. */
  seq: bigint('seq', { mode: 'number' }).notNull().default(0),
  /** Null: the inbox. Deleting the project deletes its tasks. */
  projectId: uuid('project_id').references(() => projects.id, { onDelete: 'cascade' }),
  /** Null: a top-level task. Deleting a task deletes its subtasks. */
  parentId: uuid('parent_id').references((): AnyPgColumn => tasks.id, { onDelete: 'cascade' }),
  /** 0 for a top-level task, up to 3: four levels in all. */
  depth: smallint('depth').notNull().default(0),
  /** Order among siblings, in byte order (COLLATE "C"); filled on insert by the trigger. */
  position: text('position').notNull(),
  /** `{rule, timezone, from}` while the task repeats (issue 18); null otherwise. */
  recurrence: jsonb('recurrence').$type<{ rule: string, timezone: string, from: 'due' | 'completion' }>(),
  /**
   * A recurring task's current occurrence as wall-clock time in its zone, before a DST gap moved it
   * (02:30 here while due_at says 03:30 that day): the time of day the next occurrences keep.
   * Read as text (to_char): a timestamp without zone read as a Date would take the process's zone.
   */
  dueLocal: timestamp('due_local', { precision: 3, mode: 'string' }),
  /** The current occurrence's place in its series, 1 for the first: the rule's COUNT is counted against it. */
  occurrenceIndex: integer('occurrence_index').notNull().default(1),
  /**
   * `[{id, offsetMinutes, missedAt} | {id, at, missedAt}]` as the API shows them (issue 19): at most
   * 10. A trigger (migration 0016) keeps the task's pending firings in `jobs` in step with them.
   */
  reminders: jsonb('reminders').$type<StoredReminder[]>().notNull().default(sql`'[]'::jsonb`),
}, (t) => [
  index('tasks_user_seq_idx').on(t.userId, t.seq),
  // A project's tasks, the inbox, and a task's subtasks, in their order: one index scan each. The
  // first and the last lead with the referencing column, so a cascading delete (of a project, of a
  // task with subtasks) finds the rows it removes with one index lookup per deleted row. Partial:
  // a task has one entry across the first two, and a top-level task none in the third.
  index('tasks_project_position_idx').on(t.projectId, t.position, t.id).where(sql`${t.projectId} is not null`),
  index('tasks_inbox_position_idx').on(t.userId, t.position, t.id).where(sql`${t.projectId} is null`),
  index('tasks_parent_position_idx').on(t.parentId, t.position, t.id).where(sql`${t.parentId} is not null`),
  // Keyset pagination: one index per sort, each ending in id, the tie-breaker; descending sorts
  // scan them backwards. Tasks without a due date sort last both ways, hence the two due indexes.
  index('tasks_user_created_idx').on(t.userId, t.createdAt, t.id),
  index('tasks_user_completed_created_idx').on(t.userId, t.completed, t.createdAt, t.id),
  index('tasks_user_due_asc_idx').on(t.userId, sql`coalesce(${t.dueAt}, 'infinity'::timestamptz)`, t.id),
  index('tasks_user_due_desc_idx').on(t.userId, sql`coalesce(${t.dueAt}, '-infinity'::timestamptz)`, t.id),
  index('tasks_user_priority_idx').on(t.userId, t.priority, t.id),
  index('tasks_user_title_idx').on(t.userId, sql`lower(${t.title})`, t.id),
  // No index on tag_keys: a tag filter walks the sort's index and skips the tasks without the tag.
  // The GIN index it had was chosen by no list plan at 100,000 tasks (docs/explain.md, tag cases),
  // and every insert and every tag change paid for it (issue 21).
  // `q` searches title and description with ILIKE; trigrams make each an index scan.
  index('tasks_title_trgm_idx').using('gin', sql`${t.title} gin_trgm_ops`),
  index('tasks_description_trgm_idx').using('gin', sql`${t.description} gin_trgm_ops`),
])

/**
 * The history of a recurring task: one row per completed occurrence (its dueAt then), kept while
 * the task advances, deleted with the task.
 */
export const taskCompletions = pgTable('task_completions', {
  id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
  taskId: uuid('task_id').notNull().references(() => tasks.id, { onDelete: 'cascade' }),
  occurrence: time('occurrence').notNull(),
  completedAt: time('completed_at').notNull().defaultNow(),
}, (t) => [
  // The history, newest first (ids are taken in the order a task's completions commit: each holds
  // the task's row), keyset paged; and the cascade's lookup of a deleted task's rows.
  index('task_completions_task_idx').on(t.taskId, t.id),
])

/** A retried `POST /tasks` with the same key returns the stored first answer. Kept 24 hours. */
export const idempotencyKeys = pgTable('idempotency_keys', {
  userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  key: text('key').notNull(),
  /** SHA-256 of the request body, to tell a retry from a different request reusing the key. */
  requestHash: text('request_hash').notNull(),
  responseStatus: integer('response_status').notNull(),
  responseBody: jsonb('response_body').notNull(),
  createdAt: createdAt(),
}, (t) => [
  primaryKey({ columns: [t.userId, t.key] }),
  index('idempotency_keys_created_idx').on(t.createdAt),
])

/** A reminder as stored on its task and shown by the API: exactly one of `offsetMinutes` and `at`. */
export interface StoredReminder { id: string, offsetMinutes?: number, at?: string, missedAt: string | null }

/**
 * Work that must happen later, once, whatever process is alive (DESIGN.md, background work): a
 * reminder's firing now, webhook deliveries next. A process claims due rows with FOR UPDATE SKIP
 * LOCKED and holds them for a lease (`lease_until`, `lease_token`); it finishes a job only while its
 * token still stands, so a job whose holder died is taken by another once the lease ends, and done
 * once. A reminder's row is kept by a trigger on tasks (migration 0016) and goes with its task.
 */
export const jobs = pgTable('jobs', {
  id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
  /** What to do: 'reminder'. */
  kind: text('kind').notNull(),
  userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  taskId: uuid('task_id').references(() => tasks.id, { onDelete: 'cascade' }),
  /** A reminder's id on its task, and the dueAt it belongs to (null for an absolute one on a task without). */
  reminderId: uuid('reminder_id'),
  occurrence: time('occurrence'),
  /** Whatever else a kind needs. */
  payload: jsonb('payload'),
  /** When it is due. */
  runAt: time('run_at').notNull(),
  /** Claimed until then by the holder of `lease_token`; null: not claimed. */
  leaseUntil: time('lease_until'),
  leaseToken: uuid('lease_token'),
  attempts: integer('attempts').notNull().default(0),
  createdAt: createdAt(),
  /** A 'webhook' job: the endpoint whose pending events it delivers, in order (one job per endpoint). */
  webhookId: uuid('webhook_id').references((): AnyPgColumn => webhooks.id, { onDelete: 'cascade' }),
}, (t) => [
  index('jobs_run_at_idx').on(t.runAt),
  uniqueIndex('jobs_webhook_key').on(t.webhookId),
  index('jobs_lease_idx').on(t.leaseUntil).where(sql`${t.leaseUntil} is not null`),
  // One pending firing per reminder. Not partial: a deleted task's (and user's) rows are found by it.
  uniqueIndex('jobs_task_reminder_key').on(t.taskId, t.reminderId),
  index('jobs_user_idx').on(t.userId),
])

/**
 * Reminders fired (or found missed), for the change log: unlike a task, each is its own change, never
 * collapsed. Stamped with the user's next change seq by a trigger (migration 0016); kept
 * SYNC_RETENTION_DAYS. The task may be gone since: no foreign key to it.
 */
export const reminderChanges = pgTable('reminder_changes', {
  userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  seq: bigint('seq', { mode: 'number' }).notNull(),
  /** 'fired' or 'missed'. */
  op: text('op').notNull(),
  taskId: uuid('task_id').notNull(),
  reminderId: uuid('reminder_id').notNull(),
  occurrence: time('occurrence'),
  fireAt: time('fire_at').notNull(),
  /** When it fired, or when it was found missed. */
  at: time('at').notNull(),
  title: text('title').notNull(),
}, (t) => [
  primaryKey({ columns: [t.userId, t.seq] }),
  index('reminder_changes_at_idx').on(t.at),
])

export type User = typeof users.$inferSelect
export type Task = typeof tasks.$inferSelect
export type Priority = (typeof taskPriority.enumValues)[number]

/**
 * Deleted tasks, for sync: a live row carries its own place in the change log (tasks.seq), a deleted
 * one leaves this. Written by a trigger on tasks (migration 0008), in the deleting transaction, with
 * the next seq of the user; kept SYNC_RETENTION_DAYS.
 */
export const tombstones = pgTable('tombstones', {
  userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  seq: bigint('seq', { mode: 'number' }).notNull(),
  /** What was deleted: 'task'. */
  entity: text('entity').notNull(),
  entityId: uuid('entity_id').notNull(),
  deletedAt: time('deleted_at').notNull().defaultNow(),
}, (t) => [
  primaryKey({ columns: [t.userId, t.seq] }),
  index('tombstones_deleted_at_idx').on(t.deletedAt),
])

/**
 * Values every process of one deployment shares, kept in its database: the signing secret that
 * `DATABASE_URL=... npm start` generates when JWT_SECRET is not set.
 */
export const serverSettings = pgTable('server_settings', {
  key: text('key').primaryKey(),
  value: text('value').notNull(),
  createdAt: createdAt(),
})

/** Single-use tickets that let a browser's EventSource (which cannot send headers) open a stream. */
export const eventTickets = pgTable('event_tickets', {
  ticketHash: text('ticket_hash').primaryKey(),
  userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  expiresAt: time('expires_at').notNull(),
  /** The session of the access token the ticket was bought with: its stream ends with that session. */
  sessionId: uuid('session_id'),
  /** When that access token expires: its stream ends then too. */
  tokenExpiresAt: time('token_expires_at'),
})

/**
 * Fixed-window rate-limit counters, shared by every process on the database. One row per limited
 * key (e.g. `login:ip:203.0.113.9`); a window that has ended restarts at the next hit.
 */
export const rateLimits = pgTable('rate_limits', {
  key: text('key').primaryKey(),
  count: integer('count').notNull(),
  resetAt: time('reset_at').notNull(),
}, (t) => [
  index('rate_limits_reset_idx').on(t.resetAt),
])

/**
 * A user's webhook endpoints (issue 20). The signing secret is stored encrypted (AES-256-GCM under a
 * key derived from the server's signing secret, webhooks/secrets.ts); during the 24 h after a
 * rotation the previous one signs too.
 */
export const webhooks = pgTable('webhooks', {
  id: uuid('id').primaryKey().defaultRandom(),
  userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  url: text('url').notNull(),
  /** Event types it receives (`task.upsert`, ..., or `*`). */
  events: text('events').array().notNull(),
  description: text('description'),
  enabled: boolean('enabled').notNull().default(true),
  /** Why the server disabled it (retries ran out); null while enabled or when the user disabled it. */
  disabledReason: text('disabled_reason'),
  disabledAt: time('disabled_at'),
  secret: text('secret').notNull(),
  previousSecret: text('previous_secret'),
  previousSecretUntil: time('previous_secret_until'),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
  version: integer('version').notNull().default(1),
}, (t) => [
  index('webhooks_user_idx').on(t.userId, t.createdAt, t.id),
  // The user's enabled endpoints: what the outbox trigger reads on a write of a user who has one,
  // and what the trigger that keeps users.webhooks_enabled counts (migration 0018).
  index('webhooks_enabled_user_idx').on(t.userId).where(sql`${t.enabled}`),
])

/**
 * The outbox: one row per event still to deliver to one endpoint, written by triggers (migration
 * 0017) in the transaction of the write it reports; gone once delivered. `snapshot` is the written
 * row as it was then, made into the API's JSON at delivery.
 */
export const webhookEvents = pgTable('webhook_events', {
  /** Write order: events go out to an endpoint in this order. */
  id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
  /** The `webhook-id` header: the same on every attempt. */
  eventId: uuid('event_id').notNull().defaultRandom(),
  webhookId: uuid('webhook_id').notNull().references(() => webhooks.id, { onDelete: 'cascade' }),
  userId: uuid('user_id').notNull(),
  type: text('type').notNull(),
  /** The change's seq in the user's log: the body's cursor is minted from it. */
  seq: bigint('seq', { mode: 'number' }),
  snapshot: jsonb('snapshot'),
  /** Attempts made so far. */
  attempts: integer('attempts').notNull().default(0),
  createdAt: createdAt(),
}, (t) => [
  index('webhook_events_webhook_idx').on(t.webhookId, t.id),
])

/** Every attempt to deliver, for GET /webhooks/{id}/deliveries; kept 30 days. */
export const webhookDeliveries = pgTable('webhook_deliveries', {
  id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
  webhookId: uuid('webhook_id').notNull().references(() => webhooks.id, { onDelete: 'cascade' }),
  eventId: uuid('event_id').notNull(),
  type: text('type').notNull(),
  attempt: integer('attempt').notNull(),
  at: time('at').notNull().defaultNow(),
  /** The HTTP status, or null when there was none (refused, timed out, unreachable). */
  status: integer('status'),
  error: text('error'),
  durationMs: integer('duration_ms').notNull(),
}, (t) => [
  index('webhook_deliveries_webhook_idx').on(t.webhookId, t.id),
  index('webhook_deliveries_at_idx').on(t.at),
])
