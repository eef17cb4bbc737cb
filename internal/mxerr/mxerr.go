// Package mxerr carries Matrix error codes from services to the HTTP edge.
// Services speak in errcodes (they are the protocol's vocabulary); the edge
// alone decides the HTTP status and the JSON shape.
package mxerr

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is a failure a client should see as a Matrix error.
type Error struct {
	Code   string
	Msg    string
	Status int            // 0: derived from Code
	Extra  map[string]any // extra top-level fields (e.g. retry_after_ms, soft_logout)
	Err    error          // underlying cause, never shown to clients
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Msg, e.Err)
	}
	return e.Code + ": " + e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// New makes an error with a code and formatted message.
func New(code, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// WithStatus overrides the HTTP status derived from the code.
func (e *Error) WithStatus(s int) *Error { e.Status = s; return e }

// As extracts an *Error from err.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// Common constructors.
func Forbidden(format string, args ...any) *Error { return New("M_FORBIDDEN", format, args...) }
func NotFound(format string, args ...any) *Error  { return New("M_NOT_FOUND", format, args...) }
func BadJSON(format string, args ...any) *Error   { return New("M_BAD_JSON", format, args...) }
func InvalidParam(format string, args ...any) *Error {
	return New("M_INVALID_PARAM", format, args...)
}
func MissingParam(format string, args ...any) *Error {
	return New("M_MISSING_PARAM", format, args...)
}
func Unknown(format string, args ...any) *Error { return New("M_UNKNOWN", format, args...) }

// UnknownToken is the answer for an access or refresh token that does not
// work. softLogout tells the client whether its session may still be
// resumed (by refreshing or logging in again on the same device) or has
// been destroyed, so that it must discard its keys.
func UnknownToken(softLogout bool, format string, args ...any) *Error {
	e := New("M_UNKNOWN_TOKEN", format, args...)
	e.Extra = map[string]any{"soft_logout": softLogout}
	return e
}

// UserLocked is the answer to every request of a locked account except
// logging out: a soft logout, so that clients keep their session and keys
// for when the lock is lifted.
func UserLocked() *Error {
	e := New("M_USER_LOCKED", "This account has been locked")
	e.Extra = map[string]any{"soft_logout": true}
	return e
}

// UserSuspended refuses an action a suspended account may not take.
func UserSuspended() *Error {
	return New("M_USER_SUSPENDED", "You cannot perform this action while suspended")
}

// StatusOf returns the HTTP status for an error.
func StatusOf(e *Error) int {
	if e.Status != 0 {
		return e.Status
	}
	switch e.Code {
	case "M_FORBIDDEN", "M_USER_DEACTIVATED", "M_GUEST_ACCESS_FORBIDDEN", "M_USER_SUSPENDED":
		return http.StatusForbidden
	case "M_UNKNOWN_TOKEN", "M_MISSING_TOKEN", "M_UNAUTHORIZED", "M_USER_LOCKED":
		return http.StatusUnauthorized
	case "M_NOT_FOUND":
		return http.StatusNotFound
	case "M_UNRECOGNIZED":
		return http.StatusNotFound
	case "M_TOO_LARGE":
		return http.StatusRequestEntityTooLarge
	case "M_LIMIT_EXCEEDED":
		return http.StatusTooManyRequests
	case "M_UNKNOWN":
		return http.StatusInternalServerError
	case "M_CONFLICT", "M_DUPLICATE_ANNOTATION":
		return http.StatusConflict
	default:
		return http.StatusBadRequest
	}
}
