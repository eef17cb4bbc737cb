-- Application services: how far each service's sender has read the
-- streams, its transactions still to deliver, and the rooms it published
-- in its networks' room directories.

-- One row per registration id. last_txn numbers the service's
-- transactions; the cursors are the stream positions already turned into
-- transactions (or found to hold nothing for the service).
CREATE TABLE appservice_state (
    as_id        TEXT PRIMARY KEY,
    events_pos   INTEGER NOT NULL,
    receipts_pos INTEGER NOT NULL,
    last_txn     INTEGER NOT NULL DEFAULT 0
);

-- A transaction is stored with its exact body, so a retry after a failure
-- or a restart sends the same events under the same transaction ID.
CREATE TABLE appservice_txns (
    as_id      TEXT NOT NULL,
    txn_id     INTEGER NOT NULL,
    body       TEXT NOT NULL,
    created_ts INTEGER NOT NULL,
    PRIMARY KEY (as_id, txn_id)
);

-- Rooms an application service published in the directory of one of its
-- networks (PUT /directory/list/appservice/{networkId}/{roomId}).
CREATE TABLE appservice_room_list (
    as_id      TEXT NOT NULL,
    network_id TEXT NOT NULL,
    room_id    TEXT NOT NULL,
    PRIMARY KEY (as_id, network_id, room_id)
);
