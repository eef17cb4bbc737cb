-- Refresh tokens (spec 1.3) and account locking/suspension (spec 1.12/1.13,
-- admin API 1.18).

-- A locked account can do nothing but log out; a suspended one can read but
-- not act (send, join, invite, change its profile, upload).
ALTER TABLE users ADD COLUMN locked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN suspended INTEGER NOT NULL DEFAULT 0;

-- A device's session keeps its tokens on its row, so that authenticating a
-- request stays one indexed lookup. All hashes are hex SHA-256, like
-- token_hash; every *_expires_ts is in ms, NULL meaning "never".
--
-- token_expires_ts: when the access token expires (only sessions that opted
--   into refresh tokens get one).
-- prev_token_hash: the access token a refresh replaced; it keeps working
--   until its own expiry, so requests already on their way do not fail.
-- refresh_hash: the current refresh token.
-- old_refresh_hash: the refresh token the current pair was issued for. It
--   stays valid until the new access or refresh token is first used, so a
--   client that lost the refresh response can repeat it.
ALTER TABLE devices ADD COLUMN token_expires_ts INTEGER;
ALTER TABLE devices ADD COLUMN prev_token_hash TEXT;
ALTER TABLE devices ADD COLUMN prev_token_expires_ts INTEGER;
ALTER TABLE devices ADD COLUMN refresh_hash TEXT;
ALTER TABLE devices ADD COLUMN refresh_expires_ts INTEGER;
ALTER TABLE devices ADD COLUMN old_refresh_hash TEXT;

CREATE UNIQUE INDEX devices_prev_token ON devices (prev_token_hash) WHERE prev_token_hash IS NOT NULL;
CREATE UNIQUE INDEX devices_refresh ON devices (refresh_hash) WHERE refresh_hash IS NOT NULL;
CREATE UNIQUE INDEX devices_old_refresh ON devices (old_refresh_hash) WHERE old_refresh_hash IS NOT NULL;
