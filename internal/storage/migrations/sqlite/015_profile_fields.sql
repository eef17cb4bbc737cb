-- Custom profile fields (spec v1.16: PUT /profile/{userId}/{keyName}, e.g.
-- m.tz). displayname and avatar_url stay in users, where member events and
-- the user directory read them.

CREATE TABLE profile_fields (
    user_id TEXT NOT NULL,
    field   TEXT NOT NULL,
    -- the field's JSON value, as the client sent it
    value   TEXT NOT NULL,
    PRIMARY KEY (user_id, field)
);
