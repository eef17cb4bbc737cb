-- Services that opted into MSC3202 get device list changes: a fifth
-- cursor, starting at the current position.
ALTER TABLE appservice_state ADD COLUMN device_lists_pos INTEGER NOT NULL DEFAULT 0;
UPDATE appservice_state SET device_lists_pos = (SELECT COALESCE(MAX(stream_pos), 0) FROM device_list_changes);
