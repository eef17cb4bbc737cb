-- Reports of events, rooms and users sent by local users, kept for the
-- operators (axon reports list|resolve).

CREATE TABLE reports (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    -- 'event', 'room' or 'user'
    kind        TEXT NOT NULL,
    reporter    TEXT NOT NULL,
    room_id     TEXT NOT NULL DEFAULT '',
    event_id    TEXT NOT NULL DEFAULT '',
    -- the reported user (for event reports, the event's sender)
    user_id     TEXT NOT NULL DEFAULT '',
    reason      TEXT NOT NULL DEFAULT '',
    -- the deprecated score of event reports, NULL when not given
    score       INTEGER,
    created_ts  INTEGER NOT NULL,
    -- when an operator resolved it, 0 while open
    resolved_ts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX reports_open ON reports (resolved_ts, id);
