// Package mxid checks the syntax of Matrix identifiers (room, event and
// user IDs, room aliases) as they arrive from clients, so that a value that
// cannot be an ID is refused as a bad parameter instead of being looked up
// and reported missing. The checks are deliberately lenient about the
// opaque parts: room version 12 room IDs have no server part, event IDs of
// rooms v3+ are bare hashes, and historical user IDs use characters the
// current grammar no longer allows. What they refuse is what no server ever
// issues: a missing sigil or body, more than the spec's 255 bytes, invalid
// UTF-8 and control characters.
package mxid

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxBytes is the spec's size limit on every identifier.
const MaxBytes = 255

// RoomID reports whether s can be a room ID: "!opaque" (room version 12)
// or "!opaque:server".
func RoomID(s string) bool { return sigilled(s, '!', false) }

// EventID reports whether s can be an event ID: "$opaque" (rooms v3+) or
// "$opaque:server" (v1, v2).
func EventID(s string) bool { return sigilled(s, '$', false) }

// UserID reports whether s can be a user ID: "@localpart:server".
func UserID(s string) bool { return sigilled(s, '@', true) }

// RoomAlias reports whether s can be a room alias: "#localpart:server".
func RoomAlias(s string) bool { return sigilled(s, '#', true) }

// sigilled checks the shape shared by all IDs: the sigil, a non-empty
// body, and when a server part is present (or required) a non-empty one.
func sigilled(s string, sigil byte, needServer bool) bool {
	if len(s) < 2 || len(s) > MaxBytes || s[0] != sigil || !printable(s) {
		return false
	}
	local, server, hasServer := strings.Cut(s[1:], ":")
	if local == "" || (hasServer && server == "") {
		return false
	}
	return hasServer || !needServer
}

// printable reports whether s is valid UTF-8 without control characters
// or spaces (no identifier has either).
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) })
}
