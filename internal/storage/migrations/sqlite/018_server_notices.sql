-- Server notices (POST /_synapse/admin/v1/send_server_notice): each user's
-- one server notices room, reused for every later notice.

CREATE TABLE server_notice_rooms (
    user_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL UNIQUE
);
