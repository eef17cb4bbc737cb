-- Application services with receive_ephemeral also get presence: a third
-- cursor, starting at the current position for services already known.
ALTER TABLE appservice_state ADD COLUMN presence_pos INTEGER NOT NULL DEFAULT 0;
UPDATE appservice_state SET presence_pos = (SELECT COALESCE(MAX(stream_pos), 0) FROM presence);
