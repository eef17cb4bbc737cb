-- Full-text index of searchable event text (POST /search). rowid is the
-- event's stream_pos; one column per searchable key (content.body,
-- content.name, content.topic). Encrypted events have no text to index.
-- Rows are written in the transaction that persists the event and deleted
-- in the one that redacts it.
CREATE VIRTUAL TABLE event_search USING fts5(body, name, topic, tokenize = 'unicode61 remove_diacritics 2');

INSERT INTO event_search (rowid, body, name, topic)
SELECT stream_pos,
       CASE WHEN type = 'm.room.message' THEN json_extract(pdu, '$.content.body') END,
       CASE WHEN type = 'm.room.name' THEN json_extract(pdu, '$.content.name') END,
       CASE WHEN type = 'm.room.topic' THEN json_extract(pdu, '$.content.topic') END
FROM events
WHERE redacted_by IS NULL
  AND ((type = 'm.room.message' AND json_type(pdu, '$.content.body') = 'text')
    OR (type = 'm.room.name' AND json_type(pdu, '$.content.name') = 'text')
    OR (type = 'm.room.topic' AND json_type(pdu, '$.content.topic') = 'text'));
