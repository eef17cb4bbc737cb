-- Push: pushers, the durable delivery queue and the positions of the
-- streams the push worker has turned into queue rows.

CREATE TABLE pushers (
    user_id             TEXT NOT NULL,
    app_id              TEXT NOT NULL,
    pushkey             TEXT NOT NULL,
    kind                TEXT NOT NULL,
    app_display_name    TEXT NOT NULL,
    device_display_name TEXT NOT NULL,
    profile_tag         TEXT NOT NULL DEFAULT '',
    lang                TEXT NOT NULL,
    -- the data object as the client gave it (url, format, custom keys)
    data                TEXT NOT NULL,
    device_id           TEXT NOT NULL DEFAULT '',
    -- when the pushkey was last set, in milliseconds
    created_ts          INTEGER NOT NULL,
    PRIMARY KEY (app_id, pushkey, user_id)
);
CREATE INDEX pushers_user ON pushers (user_id);

-- One row per push still to deliver to one pusher. event_id '' is a
-- badge-only update (counts, no event).
CREATE TABLE push_queue (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     TEXT NOT NULL,
    app_id      TEXT NOT NULL,
    pushkey     TEXT NOT NULL,
    event_id    TEXT NOT NULL DEFAULT '',
    room_id     TEXT NOT NULL DEFAULT '',
    -- set_tweak actions of the rule that fired, as a JSON object
    tweaks      TEXT NOT NULL DEFAULT '{}',
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_try_ts INTEGER NOT NULL DEFAULT 0,
    created_ts  INTEGER NOT NULL
);
CREATE INDEX push_queue_due ON push_queue (next_try_ts);

-- How far the push worker has read the events and receipts streams.
CREATE TABLE push_cursors (
    name TEXT PRIMARY KEY,
    pos  INTEGER NOT NULL
);
