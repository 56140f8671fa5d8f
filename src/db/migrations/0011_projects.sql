-- Projects, subtasks and a manual order. Positions are fractional-indexing keys (the npm package
-- fractional-indexing computes the key between two neighbours in the server); they compare in byte
-- order, hence COLLATE "C" whatever the database's collation.
CREATE TABLE "projects" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"user_id" uuid NOT NULL,
	"name" text NOT NULL,
	"color" text,
	"archived" boolean DEFAULT false NOT NULL,
	"position" text COLLATE "C" NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"seq" bigint DEFAULT 0 NOT NULL
);
--> statement-breakpoint
ALTER TABLE "projects" ADD CONSTRAINT "projects_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "projects_user_list_idx" ON "projects" USING btree ("user_id","archived","position","id");--> statement-breakpoint
CREATE INDEX "projects_user_seq_idx" ON "projects" USING btree ("user_id","seq");--> statement-breakpoint
-- The key of a row that goes last: a fractional-indexing integer key ('a0', 'a1', ... 'az',
-- 'b10', ...) made from the user's change seq, which only grows. Every key the server computes
-- between neighbours is below the seq of its own write, so a new row's key sorts after all of them,
-- with no read of the siblings' last key before the insert.
CREATE OR REPLACE FUNCTION taskbase_last_key(n bigint) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  digits text := '';
  alphabet constant text := '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
BEGIN
  LOOP
    digits := substr(alphabet, (n % 62)::int + 1, 1) || digits;
    n := n / 62;
    EXIT WHEN n = 0;
  END LOOP;
  RETURN chr(ascii('a') + length(digits) - 1) || digits;
END
$$;
--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "project_id" uuid;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "parent_id" uuid;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "depth" smallint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "position" text COLLATE "C";--> statement-breakpoint
-- Existing tasks keep the order they were last written in; the stamp trigger is off meanwhile.
ALTER TABLE "tasks" DISABLE TRIGGER tasks_stamp_change;--> statement-breakpoint
UPDATE "tasks" SET "position" = taskbase_last_key("seq");--> statement-breakpoint
ALTER TABLE "tasks" ENABLE TRIGGER tasks_stamp_change;--> statement-breakpoint
ALTER TABLE "tasks" ALTER COLUMN "position" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "tasks" ADD CONSTRAINT "tasks_project_id_projects_id_fk" FOREIGN KEY ("project_id") REFERENCES "public"."projects"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "tasks" ADD CONSTRAINT "tasks_parent_id_tasks_id_fk" FOREIGN KEY ("parent_id") REFERENCES "public"."tasks"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
-- Lead with the referencing column: a cascading delete looks up each deleted row's dependents.
CREATE INDEX "tasks_project_position_idx" ON "tasks" USING btree ("project_id","position","id") WHERE "tasks"."project_id" is not null;--> statement-breakpoint
CREATE INDEX "tasks_inbox_position_idx" ON "tasks" USING btree ("user_id","position","id") WHERE "tasks"."project_id" is null;--> statement-breakpoint
CREATE INDEX "tasks_parent_position_idx" ON "tasks" USING btree ("parent_id","position","id") WHERE "tasks"."parent_id" is not null;--> statement-breakpoint
-- Every write of a task or a project takes the owner's next seq (see 0008). The first write of a
-- user in a transaction takes it by updating the user's row, which also locks it (one user's
-- writes take turns, in commit order); the next rows count on in a transaction-local setting, and a
-- statement trigger writes the count back once per statement. Updating the user's row once per
-- written row made a statement that writes n rows (a project's deletion, a subtree's move) cost
-- O(n^2): each update of a row already updated in the transaction walks all its earlier versions.
-- The setting holds 'user id,last seq,pending task count change,dirty|clean'.
CREATE OR REPLACE FUNCTION taskbase_flush_changes() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  state text[] := string_to_array(nullif(current_setting('taskbase.changes', true), ''), ',');
BEGIN
  IF state IS NULL OR state[4] <> 'dirty' THEN
    RETURN;
  END IF;
  UPDATE users SET change_seq = state[2]::bigint, task_count = task_count + state[3]::int WHERE id = state[1]::uuid;
  PERFORM set_config('taskbase.changes', concat_ws(',', state[1], state[2], 0, 'clean'), true);
END
$$;
--> statement-breakpoint
-- The next seq of `owner`, `counted` tasks more or fewer; null when the user is gone.
CREATE OR REPLACE FUNCTION taskbase_next_seq(owner uuid, counted integer) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  state text[] := string_to_array(nullif(current_setting('taskbase.changes', true), ''), ',');
  next_seq bigint;
BEGIN
  IF state IS NOT NULL AND state[1] = owner::text THEN
    next_seq := state[2]::bigint + 1;
    PERFORM set_config('taskbase.changes', concat_ws(',', owner, next_seq, state[3]::int + counted, 'dirty'), true);
    RETURN next_seq;
  END IF;
  IF state IS NOT NULL THEN
    -- Another user's writes before, in this transaction: theirs are written back first.
    PERFORM taskbase_flush_changes();
  END IF;
  UPDATE users SET change_seq = change_seq + 1, task_count = task_count + counted
  WHERE id = owner RETURNING change_seq INTO next_seq;
  PERFORM set_config('taskbase.changes', CASE WHEN next_seq IS NULL THEN '' ELSE concat_ws(',', owner, next_seq, 0, 'clean') END, true);
  RETURN next_seq;
END
$$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION taskbase_flush_changes_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM taskbase_flush_changes();
  RETURN NULL;
END
$$;
--> statement-breakpoint
-- A new row with no position goes last. TG_ARGV[0] is 'task' or 'project': only tasks count
-- against the quota.
CREATE OR REPLACE FUNCTION taskbase_stamp_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- No user: the user is gone, and the foreign key refuses the write.
  NEW.seq := coalesce(taskbase_next_seq(NEW.user_id, CASE WHEN TG_OP = 'INSERT' AND TG_ARGV[0] = 'task' THEN 1 ELSE 0 END), 0);
  IF NEW.position IS NULL THEN
    NEW.position := taskbase_last_key(NEW.seq);
  END IF;
  RETURN NEW;
END
$$;
--> statement-breakpoint
DROP TRIGGER IF EXISTS tasks_stamp_change ON tasks;--> statement-breakpoint
CREATE TRIGGER tasks_stamp_change BEFORE INSERT OR UPDATE ON tasks
  FOR EACH ROW EXECUTE FUNCTION taskbase_stamp_change('task');
--> statement-breakpoint
CREATE TRIGGER projects_stamp_change BEFORE INSERT OR UPDATE ON projects
  FOR EACH ROW EXECUTE FUNCTION taskbase_stamp_change('project');
--> statement-breakpoint
CREATE OR REPLACE FUNCTION taskbase_bury() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  next_seq bigint := taskbase_next_seq(OLD.user_id, CASE WHEN TG_ARGV[0] = 'task' THEN -1 ELSE 0 END);
BEGIN
  -- No user: the user is being deleted, and their tasks and tombstones go with them.
  IF next_seq IS NOT NULL THEN
    INSERT INTO tombstones (user_id, seq, entity, entity_id) VALUES (OLD.user_id, next_seq, TG_ARGV[0], OLD.id);
  END IF;
  RETURN NULL;
END
$$;
--> statement-breakpoint
-- After the row triggers of a statement (cascaded deletes included): the seqs it took, written back.
-- Inserts and updates take their seqs in BEFORE row triggers, so the setting is final when the
-- statement's condition is read, and the condition spares the call when the statement wrote one row
-- (the common case: it took its seq by updating the user's row itself). Deletes take theirs in AFTER
-- row triggers, which run after that condition is read: their flush is unconditional.
CREATE TRIGGER tasks_flush_changes AFTER INSERT OR UPDATE ON tasks
  FOR EACH STATEMENT WHEN (current_setting('taskbase.changes', true) LIKE '%,dirty')
  EXECUTE FUNCTION taskbase_flush_changes_trigger();
--> statement-breakpoint
CREATE TRIGGER tasks_flush_deletes AFTER DELETE ON tasks
  FOR EACH STATEMENT EXECUTE FUNCTION taskbase_flush_changes_trigger();
--> statement-breakpoint
CREATE TRIGGER projects_flush_changes AFTER INSERT OR UPDATE ON projects
  FOR EACH STATEMENT WHEN (current_setting('taskbase.changes', true) LIKE '%,dirty')
  EXECUTE FUNCTION taskbase_flush_changes_trigger();
--> statement-breakpoint
CREATE TRIGGER projects_flush_deletes AFTER DELETE ON projects
  FOR EACH STATEMENT EXECUTE FUNCTION taskbase_flush_changes_trigger();
--> statement-breakpoint
CREATE TRIGGER projects_bury AFTER DELETE ON projects
  FOR EACH ROW EXECUTE FUNCTION taskbase_bury('project');
