package account

import (
	"strings"
	"unicode/utf8"

	"github.com/axon-matrix/axon/internal/auth"
	"github.com/axon-matrix/axon/internal/mxerr"
)

// maxUserIDLen is the spec's limit on a whole user ID ("@", localpart,
// ":", server name) in bytes.
const maxUserIDLen = 255

// maxPasswordLen bounds passwords as Synapse does; argon2 copes with any
// length, but a megabyte "password" is an attack, not a secret.
const maxPasswordLen = 512

// maxDeviceIDLen bounds client-chosen device IDs.
const maxDeviceIDLen = 255

// validLocalpartChar reports whether c may appear in a localpart of a new
// user ID: a-z, 0-9, '.', '_', '=', '-', '/' and '+' (appendices: user
// identifiers). Historical IDs allowed more; we never create them.
func validLocalpartChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("._=-/+", c) >= 0
}

// UserID is the full ID of a local localpart.
func (s *Service) UserID(localpart string) string {
	return "@" + localpart + ":" + s.cfg.ServerName
}

// CheckLocalpart validates a localpart for a new account and returns the
// full user ID, or M_INVALID_USERNAME.
func (s *Service) CheckLocalpart(localpart string) (string, error) {
	if localpart == "" {
		return "", mxerr.New("M_INVALID_USERNAME", "User ID cannot be empty")
	}
	for i := 0; i < len(localpart); i++ {
		if !validLocalpartChar(localpart[i]) {
			return "", mxerr.New("M_INVALID_USERNAME", "User ID can only contain characters a-z, 0-9, or '._=-/+'")
		}
	}
	userID := s.UserID(localpart)
	if len(userID) > maxUserIDLen {
		return "", mxerr.New("M_INVALID_USERNAME", "User ID may not be longer than %d bytes", maxUserIDLen)
	}
	return userID, nil
}

// normaliseUsername maps a requested username onto a localpart. Upper
// case letters are folded to lower case (the spec lets servers map a
// username "in a logical manner"); anything else outside the grammar is
// rejected by CheckLocalpart. A leading "@" and ":server" are accepted when
// the server is ours, since people type their full ID.
func (s *Service) normaliseUsername(username string) string {
	if strings.HasPrefix(username, "@") {
		if lp, server, ok := strings.Cut(username[1:], ":"); ok && server == s.cfg.ServerName {
			username = lp
		}
	}
	return strings.ToLower(username)
}

// ResolveUser turns a localpart or a full user ID, as typed at a login
// prompt or on the command line, into a local user ID. ok is false when the
// ID belongs to another server or is malformed; the account may still not
// exist.
func (s *Service) ResolveUser(name string) (userID string, ok bool) {
	name = strings.TrimSpace(name)
	localpart := name
	if strings.HasPrefix(name, "@") {
		lp, server, found := strings.Cut(name[1:], ":")
		if !found || server != s.cfg.ServerName {
			return "", false
		}
		localpart = lp
	}
	if localpart == "" || strings.ContainsAny(localpart, ":@") {
		return "", false
	}
	// Accounts are created in lower case only, so a login as "Alice"
	// means "alice" (as on Synapse, which matches case-insensitively).
	return s.UserID(strings.ToLower(localpart)), true
}

// IsLocal reports whether userID is a well-formed ID on this server.
func (s *Service) IsLocal(userID string) bool {
	if !strings.HasPrefix(userID, "@") {
		return false
	}
	lp, server, ok := strings.Cut(userID[1:], ":")
	return ok && lp != "" && server == s.cfg.ServerName
}

// generateLocalpart picks a localpart for a registration that asked for
// none: 10 random lowercase letters, far from any human's choice.
func generateLocalpart() string {
	return strings.ToLower(auth.NewDeviceID())
}

// checkPasswordInput validates a new password's size.
func checkPasswordInput(pw string) error {
	if len(pw) > maxPasswordLen {
		return mxerr.InvalidParam("Password may not be longer than %d bytes", maxPasswordLen)
	}
	if strings.IndexByte(pw, 0) >= 0 {
		return mxerr.InvalidParam("Password may not contain NUL characters")
	}
	return nil
}

// checkNewPassword validates a password being set: its size, and its
// length against password_min_length. "" passes: it is an account without
// a password (application service users, guests, the notices account),
// which callers that need one refuse themselves.
func (s *Service) checkNewPassword(pw string) error {
	if err := checkPasswordInput(pw); err != nil {
		return err
	}
	if n := utf8.RuneCountInString(pw); pw != "" && int64(n) < s.cfg.PasswordMinLength {
		return mxerr.New("M_WEAK_PASSWORD", "Password too short: it must have at least %d characters (has %d)", s.cfg.PasswordMinLength, n)
	}
	return nil
}

// checkDeviceID validates a client-chosen device ID.
func checkDeviceID(deviceID string) error {
	if len(deviceID) > maxDeviceIDLen {
		return mxerr.InvalidParam("device_id may not be longer than %d bytes", maxDeviceIDLen)
	}
	for _, r := range deviceID {
		if r < 0x20 || r == 0x7f {
			return mxerr.InvalidParam("device_id may not contain control characters")
		}
	}
	return nil
}

// LocalpartFromName accepts a new account's name as a localpart or as a
// full user ID on this server, for the command line, and validates it.
// Unlike registration it does not fold case: an operator who typed
// upper case should be told, not second-guessed.
func (s *Service) LocalpartFromName(name string) (string, error) {
	localpart := name
	if strings.HasPrefix(name, "@") {
		lp, server, ok := strings.Cut(name[1:], ":")
		if !ok {
			return "", mxerr.New("M_INVALID_USERNAME", "%q is not a user ID", name)
		}
		if server != s.cfg.ServerName {
			return "", mxerr.New("M_INVALID_USERNAME", "%s is not on this server (%s)", name, s.cfg.ServerName)
		}
		localpart = lp
	}
	if _, err := s.CheckLocalpart(localpart); err != nil {
		return "", err
	}
	return localpart, nil
}
