-- Local media. The bytes live on disk, content-addressed by sha256, so that
-- identical uploads share one file; a row is one media ID. Remote media will
-- get its own cache table with the federation work.
CREATE TABLE media (
    media_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    -- NULL while an asynchronous upload (POST /create) waits for its bytes.
    sha256 TEXT,
    size BIGINT NOT NULL DEFAULT 0,
    content_type TEXT NOT NULL DEFAULT '',
    upload_name TEXT NOT NULL DEFAULT '',
    created_ts BIGINT NOT NULL,
    -- Deadline of a pending asynchronous upload.
    expires_ts BIGINT,
    -- Uploaded while the legacy endpoints were frozen: never served by them.
    authenticated_only BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX media_user ON media (user_id, created_ts);
CREATE INDEX media_sha256 ON media (sha256);
CREATE INDEX media_created ON media (created_ts);
