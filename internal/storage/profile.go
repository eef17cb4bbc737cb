package storage

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
)

// ProfileFields returns a user's custom profile fields (all but
// displayname and avatar_url) with their JSON values.
func (db *DB) ProfileFields(ctx context.Context, userID string) (map[string]json.RawMessage, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT field, value FROM profile_fields WHERE user_id = $1`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]json.RawMessage{}
	for rows.Next() {
		var field, value string
		if err := rows.Scan(&field, &value); err != nil {
			return nil, err
		}
		out[field] = json.RawMessage(value)
	}
	return out, rows.Err()
}

// ProfileSize is the size of a profile as a JSON object: each field's
// quoted name, colon, value and comma, plus the braces.
func ProfileSize(fields map[string]int) int {
	n := 2
	for k, v := range fields {
		n += len(k) + 4 + v
	}
	return n
}

// SetProfileField stores a custom profile field. It returns ErrLimit,
// storing nothing, when the whole profile (display name and avatar
// included) would then exceed maxBytes; the check and the write are one
// transaction, so concurrent requests cannot overshoot together.
func (db *DB) SetProfileField(ctx context.Context, userID, field string, value json.RawMessage, maxBytes int) error {
	return db.Write(ctx, func(tx *Tx) error {
		sizes := map[string]int{field: len(value)}
		var dn, av sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT displayname, avatar_url FROM users WHERE user_id = $1`, userID).Scan(&dn, &av)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		// Strings are counted with their quotes.
		if dn.Valid && dn.String != "" {
			sizes["displayname"] = len(dn.String) + 2
		}
		if av.Valid && av.String != "" {
			sizes["avatar_url"] = len(av.String) + 2
		}
		rows, err := tx.QueryContext(ctx, `SELECT field, length(CAST(value AS BLOB)) FROM profile_fields WHERE user_id = $1 AND field <> $2`, userID, field)
		if err != nil {
			return err
		}
		for rows.Next() {
			var f string
			var n int
			if err := rows.Scan(&f, &n); err != nil {
				rows.Close()
				return err
			}
			sizes[f] = n
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if ProfileSize(sizes) > maxBytes {
			return ErrLimit
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO profile_fields (user_id, field, value) VALUES ($1, $2, $3)
			ON CONFLICT (user_id, field) DO UPDATE SET value = excluded.value`, userID, field, string(value))
		return err
	})
}

// DeleteProfileField removes a custom profile field (no error if unset).
func (db *DB) DeleteProfileField(ctx context.Context, userID, field string) error {
	return db.Write(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM profile_fields WHERE user_id = $1 AND field = $2`, userID, field)
		return err
	})
}
