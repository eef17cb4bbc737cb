-- One-time keys are handed out oldest upload first: clients forget their
-- oldest private one-time keys when they make room for new ones, so a key
-- left on the server too long may no longer open a session.
ALTER TABLE one_time_keys ADD COLUMN upload_seq INTEGER NOT NULL DEFAULT 0;
CREATE INDEX one_time_keys_claim ON one_time_keys (user_id, device_id, algorithm, upload_seq, key_id);
