package clientapi_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/testrig"
)

func TestTURNServerNotConfigured(t *testing.T) {
	r := testrig.Start(t)
	alice := r.CreateUser("alice")
	status, body := apiCall(t, r, alice, v3, http.MethodGet, "/voip/turnServer", nil)
	if status != 200 || len(body) != 0 {
		t.Fatalf("got %d %v, want 200 {}", status, body)
	}
	status, body = apiCall(t, r, nil, v3, http.MethodGet, "/voip/turnServer", nil)
	wantAPIError(t, status, body, 401, "M_MISSING_TOKEN")
}

func TestTURNServerCredentials(t *testing.T) {
	uris := []string{"turn:turn.axon.test:3478?transport=udp", "turns:turn.axon.test:5349?transport=tcp"}
	r := testrig.Start(t, func(c *config.Config) {
		c.TURN = config.TURNSettings{URIs: uris, SharedSecret: "coturn-secret", TTL: 3600}
	})
	alice := r.CreateUser("alice")
	before := time.Now().Unix()
	resp, err := alice.TurnServer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if resp.TTL != 3600 || strings.Join(resp.URIs, " ") != strings.Join(uris, " ") {
		t.Fatalf("ttl %d uris %v", resp.TTL, resp.URIs)
	}
	expiry, user, ok := strings.Cut(resp.Username, ":")
	exp, err := strconv.ParseInt(expiry, 10, 64)
	if !ok || err != nil || user != alice.UserID.String() || exp < before+3600 || exp > time.Now().Unix()+3600 {
		t.Fatalf("username %q", resp.Username)
	}
	// What coturn computes with use-auth-secret.
	mac := hmac.New(sha1.New, []byte("coturn-secret"))
	mac.Write([]byte(resp.Username))
	if want := base64.StdEncoding.EncodeToString(mac.Sum(nil)); resp.Password != want {
		t.Fatalf("password %q, want %q", resp.Password, want)
	}
}
