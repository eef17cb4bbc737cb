-- A transaction ID identifies a retransmission of the same request: the
-- same device and the same path (spec: transaction identifiers). The room
-- and the event type are in the path of PUT /send, so the same ID used in
-- another room, or for another event type, is a new request.
DROP INDEX events_txn;
CREATE UNIQUE INDEX events_txn ON events (sender, txn_device, txn_id, room_id, type) WHERE txn_id IS NOT NULL;
