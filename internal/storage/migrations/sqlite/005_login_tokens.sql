-- Short-lived single-use tokens for the m.login.token login, issued by
-- POST /login/get_token to sign in a new device from an existing one.

CREATE TABLE login_tokens (
    -- hex SHA-256 of the token, like access tokens
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    expires_ts INTEGER NOT NULL
);
