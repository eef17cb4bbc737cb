-- Third-party identifiers (email addresses) associated with accounts, and
-- the validation sessions of /requestToken that prove a user controls one.

CREATE TABLE user_threepids (
    medium       TEXT NOT NULL,
    -- canonical form (email: lower case), so one address has one owner
    address      TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    validated_ts INTEGER NOT NULL,
    added_ts     INTEGER NOT NULL,
    PRIMARY KEY (medium, address)
);
CREATE INDEX user_threepids_user ON user_threepids (user_id);

CREATE TABLE threepid_sessions (
    sid                TEXT PRIMARY KEY,
    -- hex SHA-256 of the client's secret: the secret is a credential (with
    -- sid it completes the m.login.email.identity stage once validated)
    client_secret_hash TEXT NOT NULL,
    medium             TEXT NOT NULL,
    address            TEXT NOT NULL,
    -- register, add or password: a session proves control of an address
    -- only for what it was requested for
    purpose            TEXT NOT NULL,
    send_attempt       INTEGER NOT NULL,
    next_link          TEXT NOT NULL DEFAULT '',
    created_ts         INTEGER NOT NULL,
    validated_ts       INTEGER NOT NULL DEFAULT 0,
    expires_ts         INTEGER NOT NULL
);
-- The spec scopes send_attempt to the address and client secret.
CREATE UNIQUE INDEX threepid_sessions_secret ON threepid_sessions (client_secret_hash, medium, address, purpose);

-- One token per message sent, so the link of an earlier message of the same
-- session keeps working until it expires.
CREATE TABLE threepid_tokens (
    sid        TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    expires_ts INTEGER NOT NULL,
    PRIMARY KEY (sid, token_hash)
);
