// The client's names for the shapes of the contract, all read off the generated `paths` (openapi.ts).
// Derived from the operations rather than `components['schemas']`: they hold whether a schema is
// written inline or by `$ref`, so moving schemas into components renames nothing here.
import type { paths } from './openapi.js'

/** The JSON body of a response (or request) entry of the document. */
type JsonOf<Entry> = Entry extends { content: { 'application/json': infer Body } } ? Body : never

type Operation<Path extends keyof paths, Method extends keyof paths[Path]> = paths[Path][Method]
type ResponseOf<Path extends keyof paths, Method extends keyof paths[Path], Status extends number> =
  Operation<Path, Method> extends { responses: { [S in Status]: infer Entry } } ? JsonOf<Entry> : never
type RequestBodyOf<Path extends keyof paths, Method extends keyof paths[Path]> =
  Operation<Path, Method> extends { requestBody?: infer Entry } ? JsonOf<Entry> : never
type QueryOf<Path extends keyof paths, Method extends keyof paths[Path]> =
  Operation<Path, Method> extends { parameters: { query?: infer Query } } ? NonNullable<Query> : never

/** A signed-in session: the user and their token pair, as register and login answer. */
export type Session = ResponseOf<'/api/v1/auth/register', 'post', 201>
/** What a refresh answers: the next token pair of the session. */
export type TokenPair = ResponseOf<'/api/v1/auth/refresh', 'post', 200>
export type User = Session['user']
export type RegisterBody = RequestBodyOf<'/api/v1/auth/register', 'post'>
export type LoginBody = RequestBodyOf<'/api/v1/auth/login', 'post'>

export type Task = ResponseOf<'/api/v1/tasks/{id}', 'get', 200>
export type TaskPage = ResponseOf<'/api/v1/tasks', 'get', 200>
/** Filters, sort, `limit` and `cursor` of the task list. */
export type TaskQuery = QueryOf<'/api/v1/tasks', 'get'>
export type CreateTaskBody = RequestBodyOf<'/api/v1/tasks', 'post'>
export type UpdateTaskBody = RequestBodyOf<'/api/v1/tasks/{id}', 'patch'>
/** Where a task goes, with its subtasks: project, parent, and its neighbours there. */
export type MoveTaskBody = RequestBodyOf<'/api/v1/tasks/{id}/move', 'post'>
/** How a task repeats: `{rule, timezone, from}` (a task's `recurrence` is this or null). */
export type Recurrence = NonNullable<Task['recurrence']>
/** A page of a recurring task's history, newest first. */
export type CompletionPage = ResponseOf<'/api/v1/tasks/{id}/completions', 'get', 200>
/** One completed occurrence: the `dueAt` it had, and when it was completed. */
export type Completion = CompletionPage['items'][number]
/** `limit` and `cursor` of the history. */
export type CompletionQuery = QueryOf<'/api/v1/tasks/{id}/completions', 'get'>

export type Project = ResponseOf<'/api/v1/projects/{id}', 'get', 200>
export type ProjectPage = ResponseOf<'/api/v1/projects', 'get', 200>
export type ProjectQuery = QueryOf<'/api/v1/projects', 'get'>
export type CreateProjectBody = RequestBodyOf<'/api/v1/projects', 'post'>
export type UpdateProjectBody = RequestBodyOf<'/api/v1/projects/{id}', 'patch'>
/** Where a project goes in the order: its neighbours there. */
export type MoveProjectBody = RequestBodyOf<'/api/v1/projects/{id}/move', 'post'>

export type SyncPage = ResponseOf<'/api/v1/sync', 'get', 200>
/**
 * One entry of the change log: a task's or a project's latest state, or its deletion, or a
 * reminder that fired or was missed (see `type` and `op`). Skip a type you do not know.
 */
export type Change = SyncPage['changes'][number]
/** A reminder as a task carries it: relative (`offsetMinutes` from `dueAt`) or absolute (`at`). */
export type Reminder = Task['reminders'][number]
/** A reminder's firing, as `onChange` and `sync.pull()` give it. */
export type ReminderFired = Extract<Change, { op: 'fired' }>['reminder']
/** A firing the server was down for, past its grace: recorded, not news. */
export type ReminderMissed = Extract<Change, { op: 'missed' }>['reminder']
