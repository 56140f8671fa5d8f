-- A retried create replays the answer stored with its Idempotency-Key (kept 24 hours). An answer
-- stored before recurring tasks (0014) lacks `recurrence`, which every task now has, and would fail
-- to serialize (a 500 in place of the first answer). Every such task was one that does not repeat.
UPDATE idempotency_keys SET response_body = response_body || '{"recurrence": null}'::jsonb
WHERE response_status = 201 AND NOT (response_body ? 'recurrence');
