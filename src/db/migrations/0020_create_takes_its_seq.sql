-- Issue 21: a task created in no project and under no parent (POST /tasks without projectId or
-- parentId, the usual create) takes its seq in its own statement instead of in the stamp trigger.
-- The statement updates its owner's row in a CTE (change_seq + 1, task_count + 1, the cap checked
-- in the same WHERE) and inserts the task with that seq and the position taskbase_last_key gives it,
-- leaving taskbase.changes and taskbase.hooked as taskbase_next_seq would have (src/tasks/queries.ts,
-- INSERT). Same row lock, taken in the same order, same state after it; what it saves is the plpgsql
-- of the trigger and of taskbase_next_seq: PostgreSQL's time per insert went from 295 to 233 us, best
-- of 5 runs of one client each, pgbench on a copy of the schema (the limit's insert: 104 us).
--
-- So the stamp trigger is split: on INSERT it runs only for a row that has no seq yet (the column's
-- default, 0), which is every insert but that one; on UPDATE it runs as before, for every row.
DROP TRIGGER tasks_stamp_change ON tasks;--> statement-breakpoint
CREATE TRIGGER tasks_stamp_change BEFORE UPDATE ON tasks
  FOR EACH ROW EXECUTE FUNCTION taskbase_stamp_change('task');--> statement-breakpoint
CREATE TRIGGER tasks_stamp_insert BEFORE INSERT ON tasks
  FOR EACH ROW WHEN (NEW.seq = 0) EXECUTE FUNCTION taskbase_stamp_change('task');
