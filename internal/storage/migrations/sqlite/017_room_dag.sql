-- The room DAG: each event's prev events and auth events as edges, the
-- room's forward extremities as rows (instead of rooms.heads), and the
-- status of events this server stores but clients must not see arrive.
--
-- Events clients never see arrive (rejected, soft-failed, outliers) are
-- stored outside the stream: their stream_pos is negative, allocated
-- downwards, so every stream range (stream_pos > since) leaves them out,
-- while stream_pos stays the table's rowid for the hot paths.
CREATE TABLE event_edges (
    event_id      TEXT NOT NULL,
    prev_event_id TEXT NOT NULL,
    PRIMARY KEY (event_id, prev_event_id)
) WITHOUT ROWID;
CREATE INDEX event_edges_prev ON event_edges (prev_event_id);

CREATE TABLE event_auth_edges (
    event_id      TEXT NOT NULL,
    auth_event_id TEXT NOT NULL,
    PRIMARY KEY (event_id, auth_event_id)
) WITHOUT ROWID;

CREATE TABLE forward_extremities (
    room_id  TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (room_id, event_id)
) WITHOUT ROWID;

-- rejected_reason: why the authorisation rules refused the event (it is
-- kept so that events citing it are refused too); soft_failed: allowed by
-- its auth events and the state before it but not by the room's current
-- state; outlier: stored without the state before it (an auth event, an
-- invite from another server).
ALTER TABLE events ADD COLUMN rejected_reason TEXT;
ALTER TABLE events ADD COLUMN soft_failed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN outlier INTEGER NOT NULL DEFAULT 0;

INSERT INTO event_edges (event_id, prev_event_id)
    SELECT e.event_id, p.value FROM events e, json_each(e.pdu, '$.prev_events') p;
-- Auth edges are kept for state events: auth chains consist of them only.
INSERT INTO event_auth_edges (event_id, auth_event_id)
    SELECT e.event_id, a.value FROM events e, json_each(e.pdu, '$.auth_events') a WHERE e.state_key IS NOT NULL;
INSERT INTO forward_extremities (room_id, event_id)
    SELECT r.room_id, h.value FROM rooms r, json_each(r.heads) h;
-- The depth of a room's newest events is read from its extremities.
ALTER TABLE rooms DROP COLUMN heads;
ALTER TABLE rooms DROP COLUMN head_depth;
