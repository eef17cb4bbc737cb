-- Guest accounts (POST /register?kind=guest): a guest may use only the
-- endpoints the spec lists for guests, and join only rooms whose
-- m.room.guest_access is can_join. Upgrading the account clears the flag.
ALTER TABLE users ADD COLUMN is_guest INTEGER NOT NULL DEFAULT 0;
