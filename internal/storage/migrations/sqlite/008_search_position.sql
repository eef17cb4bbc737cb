-- The search index is written behind the event stream, in batches, so a
-- send does not pay for a full-text insert. This row says up to which
-- stream position events are indexed; searches first index the rest.
CREATE TABLE search_position (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    pos INTEGER NOT NULL
);

INSERT INTO search_position (id, pos) SELECT 1, COALESCE(MAX(stream_pos), 0) FROM events;
