-- The search index gets a room column holding one token per room ('r' and
-- the room ID in hex), so a search limits itself to the user's rooms inside
-- the full-text query instead of looking up every match's event. The
-- table is rebuilt from the events it indexes.
DROP TABLE event_search;

CREATE VIRTUAL TABLE event_search USING fts5(body, name, topic, room, tokenize = 'unicode61 remove_diacritics 2');

INSERT INTO event_search (rowid, body, name, topic, room)
SELECT stream_pos,
       CASE WHEN type = 'm.room.message' THEN json_extract(pdu, '$.content.body') END,
       CASE WHEN type = 'm.room.name' THEN json_extract(pdu, '$.content.name') END,
       CASE WHEN type = 'm.room.topic' THEN json_extract(pdu, '$.content.topic') END,
       'r' || lower(hex(room_id))
FROM events
WHERE redacted_by IS NULL
  AND ((type = 'm.room.message' AND json_type(pdu, '$.content.body') = 'text')
    OR (type = 'm.room.name' AND json_type(pdu, '$.content.name') = 'text')
    OR (type = 'm.room.topic' AND json_type(pdu, '$.content.topic') = 'text'));
