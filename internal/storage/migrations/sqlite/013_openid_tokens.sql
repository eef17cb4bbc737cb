-- OpenID tokens (POST /user/{userId}/openid/request_token): a user hands one
-- to another service (Element Call, an integration manager), which asks
-- GET /_matrix/federation/v1/openid/userinfo who it belongs to. They prove
-- identity only: they are not access tokens.

CREATE TABLE openid_tokens (
    -- hex SHA-256 of the token, like access and login tokens
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    expires_ts INTEGER NOT NULL
);

CREATE INDEX openid_tokens_expiry ON openid_tokens (expires_ts);
