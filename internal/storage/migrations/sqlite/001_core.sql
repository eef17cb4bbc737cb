-- Core schema. Stream positions (stream_pos) everywhere come from one global
-- counter, so a sync token is a single number plus the in-memory typing serial.
--
-- 64-bit columns. SQLite's INTEGER is 64-bit; PostgreSQL's is 32-bit, so these
-- columns (here and in later migrations) must be BIGINT there:
--   stream positions: events.stream_pos (negative outside the stream),
--     current_state.stream_pos, receipts.stream_pos, receipts.event_pos,
--     account_data.stream_pos, to_device.stream_pos, presence.stream_pos,
--     device_list_changes.stream_pos, push_cursors.pos, search_position.pos,
--     appservice_state.events_pos, .receipts_pos, .presence_pos,
--     .to_device_pos, .device_lists_pos;
--   milliseconds since the epoch: every *_ts column (users.created_ts,
--     devices.created_ts, .last_seen_ts, .token_expires_ts,
--     .prev_token_expires_ts, .refresh_expires_ts, registration_tokens.expiry_ts,
--     .created_ts, rooms.created_ts, events.origin_ts, receipts.ts,
--     presence.last_active_ts, pushers.created_ts, push_queue.next_try_ts,
--     .created_ts, login_tokens.expires_ts, reports.created_ts, .resolved_ts,
--     user_threepids.validated_ts, .added_ts, threepid_sessions.created_ts,
--     .validated_ts, .expires_ts, threepid_tokens.expires_ts,
--     appservice_txns.created_ts, openid_tokens.expires_ts);
--   also 64-bit, from the PDU or from a sequence: events.depth,
--     rooms.head_depth, state group IDs (state_groups.group_id, .prev_group,
--     state_group_entries.group_id, rooms.state_group, events.state_before,
--     .state_after), push_queue.id, reports.id.
-- Flags and small counts may stay INTEGER.

CREATE TABLE users (
    user_id       TEXT PRIMARY KEY,
    localpart     TEXT NOT NULL UNIQUE,
    password_hash TEXT,
    is_admin      INTEGER NOT NULL DEFAULT 0,
    deactivated   INTEGER NOT NULL DEFAULT 0,
    displayname   TEXT,
    avatar_url    TEXT,
    created_ts    INTEGER NOT NULL
);

CREATE TABLE devices (
    user_id      TEXT NOT NULL,
    device_id    TEXT NOT NULL,
    display_name TEXT,
    token_hash   TEXT UNIQUE,
    created_ts   INTEGER NOT NULL,
    last_seen_ts INTEGER NOT NULL DEFAULT 0,
    last_seen_ip TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (user_id, device_id)
);

CREATE TABLE registration_tokens (
    token        TEXT PRIMARY KEY,
    uses_allowed INTEGER,
    completed    INTEGER NOT NULL DEFAULT 0,
    expiry_ts    INTEGER,
    created_ts   INTEGER NOT NULL,
    revoked      INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE rooms (
    room_id      TEXT PRIMARY KEY,
    room_version TEXT NOT NULL,
    creator      TEXT NOT NULL,
    published    INTEGER NOT NULL DEFAULT 0,
    created_ts   INTEGER NOT NULL,
    -- forward extremities and the state after them: the single server's DAG
    -- has one head, but the column keeps the list shape federation will need.
    heads        TEXT NOT NULL DEFAULT '[]',
    head_depth   INTEGER NOT NULL DEFAULT 0,
    state_group  INTEGER NOT NULL DEFAULT 0
);

-- Every PDU, in the order this server accepted it.
CREATE TABLE events (
    stream_pos  INTEGER PRIMARY KEY,
    event_id    TEXT NOT NULL UNIQUE,
    room_id     TEXT NOT NULL,
    type        TEXT NOT NULL,
    state_key   TEXT,
    sender      TEXT NOT NULL,
    depth       INTEGER NOT NULL,
    origin_ts   INTEGER NOT NULL,
    -- state group of the room state *before* this event
    state_before INTEGER NOT NULL,
    -- state group after it (differs only for state events)
    state_after  INTEGER NOT NULL,
    pdu         TEXT NOT NULL,
    -- for state events, the event this one replaced in the room state
    -- (clients get its content as unsigned.prev_content)
    replaces    TEXT,
    redacted_by TEXT,
    txn_device  TEXT,
    txn_id      TEXT,
    relates_to  TEXT,
    rel_type    TEXT,
    thread_root TEXT
);
CREATE INDEX events_room ON events (room_id, stream_pos);
CREATE INDEX events_member ON events (state_key, stream_pos) WHERE type = 'm.room.member';
CREATE INDEX events_relates ON events (relates_to, stream_pos) WHERE relates_to IS NOT NULL;
CREATE INDEX events_thread ON events (thread_root, stream_pos) WHERE thread_root IS NOT NULL;
CREATE UNIQUE INDEX events_txn ON events (sender, txn_device, txn_id) WHERE txn_id IS NOT NULL;

-- State groups: a snapshot is a chain of deltas ending in a full snapshot
-- (prev_group NULL); chains are capped so a lookup reads a bounded number of rows.
CREATE TABLE state_groups (
    group_id    INTEGER PRIMARY KEY,
    room_id     TEXT NOT NULL,
    prev_group  INTEGER,
    chain_len   INTEGER NOT NULL
);
CREATE TABLE state_group_entries (
    group_id  INTEGER NOT NULL,
    type      TEXT NOT NULL,
    state_key TEXT NOT NULL,
    event_id  TEXT NOT NULL,
    PRIMARY KEY (group_id, type, state_key)
);

-- The state after the room's head, for fast membership and directory queries.
CREATE TABLE current_state (
    room_id    TEXT NOT NULL,
    type       TEXT NOT NULL,
    state_key  TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    membership TEXT,
    stream_pos INTEGER NOT NULL,
    PRIMARY KEY (room_id, type, state_key)
);
CREATE INDEX current_state_member ON current_state (state_key, membership) WHERE type = 'm.room.member';

CREATE TABLE room_aliases (
    alias   TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    creator TEXT NOT NULL
);
CREATE INDEX room_aliases_room ON room_aliases (room_id);

CREATE TABLE receipts (
    room_id      TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    receipt_type TEXT NOT NULL,
    thread_id    TEXT NOT NULL DEFAULT '',
    event_id     TEXT NOT NULL,
    event_pos    INTEGER NOT NULL,
    ts           INTEGER NOT NULL,
    stream_pos   INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id, receipt_type, thread_id)
);
CREATE INDEX receipts_stream ON receipts (stream_pos);

CREATE TABLE account_data (
    user_id    TEXT NOT NULL,
    room_id    TEXT NOT NULL DEFAULT '',
    type       TEXT NOT NULL,
    content    TEXT NOT NULL,
    stream_pos INTEGER NOT NULL,
    PRIMARY KEY (user_id, room_id, type)
);
CREATE INDEX account_data_stream ON account_data (user_id, stream_pos);

CREATE TABLE to_device (
    stream_pos INTEGER PRIMARY KEY,
    user_id    TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    sender     TEXT NOT NULL,
    type       TEXT NOT NULL,
    content    TEXT NOT NULL
);
CREATE INDEX to_device_target ON to_device (user_id, device_id, stream_pos);

CREATE TABLE to_device_txns (
    sender    TEXT NOT NULL,
    device_id TEXT NOT NULL,
    txn_id    TEXT NOT NULL,
    PRIMARY KEY (sender, device_id, txn_id)
);

CREATE TABLE presence (
    user_id        TEXT PRIMARY KEY,
    state          TEXT NOT NULL,
    status_msg     TEXT,
    last_active_ts INTEGER NOT NULL,
    stream_pos     INTEGER NOT NULL
);

CREATE TABLE filters (
    user_id   TEXT NOT NULL,
    filter_id INTEGER NOT NULL,
    filter    TEXT NOT NULL,
    PRIMARY KEY (user_id, filter_id)
);

CREATE TABLE device_list_changes (
    stream_pos INTEGER PRIMARY KEY,
    user_id    TEXT NOT NULL
);

CREATE TABLE forgotten_rooms (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    PRIMARY KEY (user_id, room_id)
);
