-- Services with receive_ephemeral also get the to-device messages of their
-- users' devices (MSC2409/MSC4203): a fourth cursor, starting now.
ALTER TABLE appservice_state ADD COLUMN to_device_pos INTEGER NOT NULL DEFAULT 0;
UPDATE appservice_state SET to_device_pos = (SELECT COALESCE(MAX(stream_pos), 0) FROM to_device);
