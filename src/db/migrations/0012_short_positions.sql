-- Positions no longer grow past 24 characters (db/position.ts respaces the rows around a gap that
-- would). A list that already holds a longer key, from repeated moves into one spot, is given fresh
-- keys in its current order: the n-th row of the list gets the key of integer n, as an appended row
-- would (taskbase_last_key, migration 0011). Each n is at most the list's size, which is at most the
-- owner's change seq, so rows appended later still sort after all of them. Every rekeyed row is
-- written (new version and seq): clients see its new position through sync and the event streams.
WITH long_lists AS (
  SELECT DISTINCT user_id, project_id, parent_id FROM tasks WHERE length(position) > 24
), ranked AS (
  SELECT t.id, row_number() OVER (PARTITION BY t.user_id, t.project_id, t.parent_id ORDER BY t.position, t.id) AS n
  FROM tasks t JOIN long_lists l ON l.user_id = t.user_id
    AND l.project_id IS NOT DISTINCT FROM t.project_id AND l.parent_id IS NOT DISTINCT FROM t.parent_id
)
UPDATE tasks t SET position = taskbase_last_key(r.n), version = t.version + 1, updated_at = now()
FROM ranked r WHERE t.id = r.id;--> statement-breakpoint
WITH long_lists AS (
  SELECT DISTINCT user_id FROM projects WHERE length(position) > 24
), ranked AS (
  SELECT p.id, row_number() OVER (PARTITION BY p.user_id ORDER BY p.position, p.id) AS n
  FROM projects p JOIN long_lists l ON l.user_id = p.user_id
)
UPDATE projects p SET position = taskbase_last_key(r.n), version = p.version + 1, updated_at = now()
FROM ranked r WHERE p.id = r.id;
