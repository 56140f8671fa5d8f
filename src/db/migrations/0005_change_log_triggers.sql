-- Every write to tasks, by any route or by hand, appends to the owner's change log in the same
-- transaction. The UPDATE of users takes that user's row lock until commit, so one user's seqs are
-- handed out in commit order with no gaps, while different users never wait on each other.
CREATE OR REPLACE FUNCTION taskbase_log_task_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  owner uuid;
  changed uuid;
  kind text;
  next_seq bigint;
BEGIN
  IF TG_OP = 'DELETE' THEN
    owner := OLD.user_id; changed := OLD.id; kind := 'delete';
  ELSE
    owner := NEW.user_id; changed := NEW.id; kind := 'upsert';
  END IF;
  UPDATE users SET change_seq = change_seq + 1 WHERE id = owner RETURNING change_seq INTO next_seq;
  -- No row: the user is being deleted, and their tasks and log go with them.
  IF next_seq IS NULL THEN
    RETURN NULL;
  END IF;
  INSERT INTO task_changes (user_id, seq, task_id, op) VALUES (owner, next_seq, changed, kind);
  PERFORM pg_notify('taskbase_changes', owner::text || ':' || next_seq::text);
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER tasks_log_change AFTER INSERT OR UPDATE OR DELETE ON tasks
  FOR EACH ROW EXECUTE FUNCTION taskbase_log_task_change();
--> statement-breakpoint
-- Open event streams of a deleted user are told to end.
CREATE OR REPLACE FUNCTION taskbase_notify_user_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('taskbase_changes', OLD.id::text || ':deleted');
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER users_notify_deleted AFTER DELETE ON users
  FOR EACH ROW EXECUTE FUNCTION taskbase_notify_user_deleted();
