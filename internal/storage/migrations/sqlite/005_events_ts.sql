-- Events of a room by origin_server_ts, for /timestamp_to_event.

CREATE INDEX events_room_ts ON events (room_id, origin_ts);
