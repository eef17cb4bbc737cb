// Package voip hands out TURN credentials for calls, in the shared-secret
// scheme coturn calls its REST API (use-auth-secret): the username is
// "<expiry unix seconds>:<user ID>" and the password the base64 of the
// HMAC-SHA1 of the username under the shared secret, so the TURN server can
// check them without asking the homeserver.
package voip

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"strconv"
	"time"

	"github.com/axon-matrix/axon/internal/config"
)

// Credentials is the answer of GET /voip/turnServer.
type Credentials struct {
	Username string   `json:"username"`
	Password string   `json:"password"`
	URIs     []string `json:"uris"`
	TTL      int64    `json:"ttl"`
}

// TURNCredentials returns credentials for user valid for the configured TTL
// from now, or nil when no TURN server is configured.
func TURNCredentials(cfg config.TURNSettings, user string, now time.Time) *Credentials {
	if len(cfg.URIs) == 0 || cfg.SharedSecret == "" {
		return nil
	}
	username := strconv.FormatInt(now.Unix()+cfg.TTL, 10) + ":" + user
	return &Credentials{Username: username, Password: Password(cfg.SharedSecret, username), URIs: cfg.URIs, TTL: cfg.TTL}
}

// Password is the coturn REST API password of username.
func Password(secret, username string) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
