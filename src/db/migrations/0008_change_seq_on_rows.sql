-- The change log moves onto the rows: a task carries the seq of its latest write (tasks.seq), and a
-- deleted one leaves a tombstone. Sync reads "what changed after seq N" as the live rows above N
-- plus the tombstones above N: each task at most once, in its latest state, with no join. A write
-- no longer inserts a log row: 3,816 inserts/s with the task_changes log against 5,062 with the seq
-- stamped on the row (32 connections, PostgreSQL 15, issue 10). Seqs keep their meaning, so cursors
-- handed out before this migration stay valid.
CREATE TABLE "tombstones" (
	"user_id" uuid NOT NULL,
	"seq" bigint NOT NULL,
	"entity" text NOT NULL,
	"entity_id" uuid NOT NULL,
	"deleted_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "tombstones_user_id_seq_pk" PRIMARY KEY("user_id","seq")
);
--> statement-breakpoint
ALTER TABLE "tombstones" ADD CONSTRAINT "tombstones_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "seq" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
-- Each task's latest change, and each delete, as the old log recorded them.
DROP TRIGGER IF EXISTS tasks_log_change ON tasks;--> statement-breakpoint
UPDATE tasks t SET seq = c.seq
  FROM (SELECT task_id, max(seq) AS seq FROM task_changes GROUP BY task_id) c
  WHERE c.task_id = t.id;--> statement-breakpoint
INSERT INTO tombstones (user_id, seq, entity, entity_id, deleted_at)
  SELECT user_id, seq, 'task', task_id, at FROM task_changes WHERE op = 'delete';--> statement-breakpoint
DROP TABLE "task_changes" CASCADE;--> statement-breakpoint
DROP FUNCTION IF EXISTS taskbase_log_task_change();--> statement-breakpoint
CREATE INDEX "tombstones_deleted_at_idx" ON "tombstones" USING btree ("deleted_at");--> statement-breakpoint
CREATE INDEX "tasks_user_seq_idx" ON "tasks" USING btree ("user_id","seq");--> statement-breakpoint
-- Every insert and update of a task, by any route or by hand, takes the owner's next seq. The
-- UPDATE of users holds that user's row lock until commit, so one user's seqs are handed out in
-- commit order, while different users never wait on each other.
CREATE OR REPLACE FUNCTION taskbase_stamp_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE users SET change_seq = change_seq + 1 WHERE id = NEW.user_id RETURNING change_seq INTO NEW.seq;
  -- No row: the user is gone, and the foreign key refuses the write.
  NEW.seq := coalesce(NEW.seq, 0);
  RETURN NEW;
END
$$;
--> statement-breakpoint
CREATE TRIGGER tasks_stamp_change BEFORE INSERT OR UPDATE ON tasks
  FOR EACH ROW EXECUTE FUNCTION taskbase_stamp_change();
--> statement-breakpoint
-- A deleted task leaves a tombstone at the owner's next seq.
CREATE OR REPLACE FUNCTION taskbase_bury() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  next_seq bigint;
BEGIN
  UPDATE users SET change_seq = change_seq + 1 WHERE id = OLD.user_id RETURNING change_seq INTO next_seq;
  -- No row: the user is being deleted, and their tasks and tombstones go with them.
  IF next_seq IS NOT NULL THEN
    INSERT INTO tombstones (user_id, seq, entity, entity_id) VALUES (OLD.user_id, next_seq, TG_ARGV[0], OLD.id);
  END IF;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER tasks_bury AFTER DELETE ON tasks
  FOR EACH ROW EXECUTE FUNCTION taskbase_bury('task');
