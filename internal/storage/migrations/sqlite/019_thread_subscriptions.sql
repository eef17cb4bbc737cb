-- Thread subscriptions (MSC4306). One row per user and thread, kept after
-- an unsubscription: unsubscribed_at (the events stream position when the
-- user last unsubscribed) refuses automatic subscriptions caused by events
-- the server had by then, and stream_pos (on the account data stream, 0
-- for a row no client needs to hear of) orders the changes for sliding
-- sync's extension (MSC4308) and is their bump_stamp.
CREATE TABLE thread_subscriptions (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    root_id TEXT NOT NULL,
    subscribed INTEGER NOT NULL,
    automatic INTEGER NOT NULL,
    unsubscribed_at BIGINT NOT NULL DEFAULT 0,
    stream_pos BIGINT NOT NULL,
    PRIMARY KEY (user_id, room_id, root_id)
);
CREATE INDEX thread_subscriptions_by_pos ON thread_subscriptions (user_id, stream_pos);
CREATE INDEX thread_subscriptions_by_thread ON thread_subscriptions (room_id, root_id);
