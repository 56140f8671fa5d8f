-- Each user's number of tasks, kept by the triggers that already update the user's row on every
-- task write, so the quota (TASKS_PER_USER_MAX) costs no count(*) per create.
ALTER TABLE "users" ADD COLUMN "task_count" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
UPDATE users u SET task_count = c.n FROM (SELECT user_id, count(*)::int AS n FROM tasks GROUP BY user_id) c
  WHERE c.user_id = u.id;--> statement-breakpoint
CREATE OR REPLACE FUNCTION taskbase_stamp_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE users SET change_seq = change_seq + 1,
    task_count = task_count + CASE WHEN TG_OP = 'INSERT' THEN 1 ELSE 0 END
  WHERE id = NEW.user_id RETURNING change_seq INTO NEW.seq;
  -- No row: the user is gone, and the foreign key refuses the write.
  NEW.seq := coalesce(NEW.seq, 0);
  RETURN NEW;
END
$$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION taskbase_bury() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  next_seq bigint;
BEGIN
  UPDATE users SET change_seq = change_seq + 1, task_count = task_count - 1
  WHERE id = OLD.user_id RETURNING change_seq INTO next_seq;
  -- No row: the user is being deleted, and their tasks and tombstones go with them.
  IF next_seq IS NOT NULL THEN
    INSERT INTO tombstones (user_id, seq, entity, entity_id) VALUES (OLD.user_id, next_seq, TG_ARGV[0], OLD.id);
  END IF;
  RETURN NULL;
END
$$;
