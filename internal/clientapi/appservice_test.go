package clientapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/server"
	"github.com/axon-matrix/axon/internal/testrig"
)

const (
	asToken = "as-secret-token"
	hsToken = "hs-secret-token"
)

// fakeAS is an application service on loopback that records what the
// homeserver sends it.
type fakeAS struct {
	t   testing.TB
	srv *httptest.Server

	mu sync.Mutex
	// down makes transactions fail with 503.
	down bool
	// attempts are every transaction request (txn ID, body), delivered
	// the accepted ones in order.
	attempts  []fakeTxn
	delivered []fakeTxn
	badAuth   int
	// pingStatus answers /ping (0: 200); pingDelay delays the answer.
	pingStatus int
	pingDelay  time.Duration
	pings      []string
	queries    []string
	// onRoomQuery and onUserQuery, if set, run when the homeserver asks
	// for an alias or a user; true means the service created it.
	onRoomQuery func(alias string) bool
	onUserQuery func(userID string) bool
	userQueries []string
	// queryDelay delays the answers to user and alias queries;
	// queryStatus, if set, is their status (an error answer).
	queryDelay  time.Duration
	queryStatus int
	// inflight counts the queries being answered, maxInflight the most
	// at once.
	inflight, maxInflight int
	wake                  chan struct{}
	// closing ends delayed answers when the test ends.
	closing chan struct{}
}

type fakeTxn struct {
	ID   string
	Body []byte
}

// asTxn is what the tests read of a transaction body.
type asTxn struct {
	Events    []asEvent `json:"events"`
	Ephemeral []asEvent `json:"ephemeral"`
	ToDevice  []asEvent `json:"to_device"`
	// MSC3202's additions.
	DeviceLists *struct {
		Changed []string `json:"changed"`
		Left    []string `json:"left"`
	} `json:"org.matrix.msc3202.device_lists"`
	Counts map[string]map[string]map[string]int `json:"org.matrix.msc3202.device_one_time_keys_count"`
}

// asEvent is an event, an ephemeral event or a to-device message of a
// transaction.
type asEvent struct {
	Type       string         `json:"type"`
	Sender     string         `json:"sender"`
	RoomID     string         `json:"room_id"`
	ToUserID   string         `json:"to_user_id"`
	ToDeviceID string         `json:"to_device_id"`
	Content    map[string]any `json:"content"`
}

// decodeTxn decodes a transaction body, reporting one that is not JSON.
func decodeTxn(t testing.TB, raw []byte) asTxn {
	var b asTxn
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Errorf("transaction body not JSON: %s", raw)
	}
	return b
}

// txns decodes the delivered transactions (call with f.mu held).
func (f *fakeAS) txns() []asTxn {
	var out []asTxn
	for _, txn := range f.delivered {
		out = append(out, decodeTxn(f.t, txn.Body))
	}
	return out
}

func newFakeAS(t testing.TB) *fakeAS {
	f := &fakeAS{t: t, wake: make(chan struct{}, 1), closing: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /_matrix/app/v1/transactions/{txnId}", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		defer f.mu.Unlock()
		defer f.poke()
		if r.Header.Get("Authorization") != "Bearer "+hsToken {
			f.badAuth++
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"errcode":"M_FORBIDDEN"}`)
			return
		}
		txn := fakeTxn{ID: r.PathValue("txnId"), Body: body}
		f.attempts = append(f.attempts, txn)
		if f.down {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		for _, d := range f.delivered {
			if d.ID == txn.ID {
				io.WriteString(w, "{}") // a repeat: already processed
				return
			}
		}
		f.delivered = append(f.delivered, txn)
		io.WriteString(w, "{}")
	})
	mux.HandleFunc("POST /_matrix/app/v1/ping", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			TransactionID string `json:"transaction_id"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		f.mu.Lock()
		f.pings = append(f.pings, body.TransactionID)
		status, delay := f.pingStatus, f.pingDelay
		f.mu.Unlock()
		time.Sleep(delay)
		if r.Header.Get("Authorization") != "Bearer "+hsToken {
			status = http.StatusForbidden
		}
		if status != 0 {
			w.WriteHeader(status)
			io.WriteString(w, `{"errcode":"M_FORBIDDEN"}`)
			return
		}
		io.WriteString(w, "{}")
	})
	// An alias or user query is logged in *log and answered {} when the
	// test's callback (read under the lock) says the service created it.
	query := func(param string, log *[]string, onQuery *func(string) bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			name := r.PathValue(param)
			f.mu.Lock()
			*log = append(*log, name)
			create, delay, status := *onQuery, f.queryDelay, f.queryStatus
			f.inflight++
			f.maxInflight = max(f.maxInflight, f.inflight)
			f.mu.Unlock()
			defer func() {
				f.mu.Lock()
				f.inflight--
				f.mu.Unlock()
			}()
			if f.failQuery(w, delay, status) {
				return
			}
			if create != nil && create(name) {
				io.WriteString(w, "{}")
				return
			}
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"errcode":"M_NOT_FOUND"}`)
		}
	}
	mux.HandleFunc("GET /_matrix/app/v1/rooms/{alias}", query("alias", &f.queries, &f.onRoomQuery))
	mux.HandleFunc("GET /_matrix/app/v1/users/{userId}", query("userId", &f.userQueries, &f.onUserQuery))
	mux.HandleFunc("GET /_matrix/app/v1/thirdparty/protocol/{p}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("p") != "gitter" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		io.WriteString(w, `{"user_fields":["username"],"location_fields":["room"],"icon":"mxc://example.org/icon",
			"field_types":{"username":{"regexp":".*","placeholder":"bob"},"room":{"regexp":".*","placeholder":"matrix/dev"}},
			"instances":[{"network_id":"gitter","desc":"Gitter","fields":{}}]}`)
	})
	mux.HandleFunc("GET /_matrix/app/v1/thirdparty/location/{p}", func(w http.ResponseWriter, r *http.Request) {
		room := r.URL.Query().Get("room")
		fmt.Fprintf(w, `[{"alias":"#_bridge_%s:axon.test","protocol":"gitter","fields":{"room":%q}},{"alias":"#x:axon.test","protocol":"other","fields":{}}]`,
			strings.ReplaceAll(room, "/", "_"), room)
	})
	mux.HandleFunc("GET /_matrix/app/v1/thirdparty/user", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `[{"userid":%q,"protocol":"gitter","fields":{"username":"bob"}}]`, r.URL.Query().Get("userid"))
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(func() { close(f.closing); f.srv.Close() })
	return f
}

// failQuery waits delay (or until the test ends) and, when status is set,
// answers a query with it; it reports whether it answered.
func (f *fakeAS) failQuery(w http.ResponseWriter, delay time.Duration, status int) bool {
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-f.closing:
		}
	}
	if status == 0 {
		return false
	}
	w.WriteHeader(status)
	io.WriteString(w, `{"errcode":"M_UNKNOWN"}`)
	return true
}

func (f *fakeAS) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *fakeAS) setDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

// waitFor waits until cond (called with f.mu held) holds.
func (f *fakeAS) waitFor(what string, cond func() bool) {
	f.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		f.mu.Lock()
		ok := cond()
		f.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-f.wake:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			f.t.Fatalf("fake application service: timed out waiting for %s", what)
		}
	}
}

// deliveredBodies returns the text bodies of m.room.message events in the
// delivered transactions, in order.
func (f *fakeAS) deliveredBodies() []string {
	var out []string
	for _, txn := range f.delivered {
		out = append(out, messageBodies(f.t, txn.Body)...)
	}
	return out
}

// messageBodies returns the text bodies of a transaction's m.room.message events.
func messageBodies(t testing.TB, raw []byte) []string {
	var out []string
	for _, ev := range decodeTxn(t, raw).Events {
		if ev.Type == "m.room.message" {
			body, _ := ev.Content["body"].(string)
			out = append(out, body)
		}
	}
	return out
}

// writeRegistration writes a registration file and returns its path.
func writeRegistration(t testing.TB, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func bridgeRegistration(url string) string {
	return `id: bridge
url: ` + url + `
as_token: ` + asToken + `
hs_token: ` + hsToken + `
sender_localpart: _bridge_bot
rate_limited: false
receive_ephemeral: true
protocols: [gitter]
namespaces:
  users:
    - exclusive: true
      regex: "@_bridge_.*:axon\\.test"
  aliases:
    - exclusive: true
      regex: "#_bridge_.*"
  rooms: []
`
}

// startWithBridge starts a server with the fake service registered.
func startWithBridge(t testing.TB, f *fakeAS, extra ...string) (*testrig.Rig, testrig.Option) {
	t.Helper()
	return startWithRegistrations(t, append([]string{bridgeRegistration(f.srv.URL)}, extra...)...)
}

// startWithRegistrations starts a server with the given registrations.
func startWithRegistrations(t testing.TB, regs ...string) (*testrig.Rig, testrig.Option) {
	t.Helper()
	regDir := t.TempDir()
	var files []string
	for i, e := range regs {
		files = append(files, writeRegistration(t, regDir, fmt.Sprintf("extra%d.yaml", i), e))
	}
	opt := func(c *config.Config) { c.AppServiceConfigFiles = files }
	r := testrig.Start(t, opt)
	r.Server.AppServices.SetBackoff(20*time.Millisecond, 200*time.Millisecond)
	return r, opt
}

// registerAS registers localpart in the service's namespace the way a
// bridge does (m.login.application_service, no device), failing on
// anything but 200.
func registerAS(t testing.TB, r *testrig.Rig, localpart string) {
	t.Helper()
	body := map[string]any{"type": "m.login.application_service", "username": localpart, "inhibit_login": true}
	if status, resp := asCall(t, r, "POST", v3+"/register", "", body); status != 200 {
		t.Fatalf("register %s: %d %v", localpart, status, resp)
	}
}

// asCall makes a request with the application service token, as the
// service's sender or as the user given.
func asCall(t testing.TB, r *testrig.Rig, method, path, asUser string, body any) (int, map[string]any) {
	t.Helper()
	if asUser != "" {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + "user_id=" + url.QueryEscape(asUser)
	}
	return r.JSON(t, method, path, asToken, body)
}

func TestAppServiceRegistrationAndIdentityAssertion(t *testing.T) {
	f := newFakeAS(t)
	r, _ := startWithBridge(t, f)
	ctx := context.Background()
	alice := r.CreateUser("alice")
	asReg := map[string]any{"type": "m.login.application_service", "username": "_bridge_ann"}

	// Registration: the as_token is required and checked.
	status, _ := r.Do("POST", v3+"/register", "", strings.NewReader(`{"type":"m.login.application_service","username":"_bridge_ann"}`))
	if status != 401 {
		t.Fatalf("register without token: %d", status)
	}
	status, b := r.Do("POST", v3+"/register", "wrong-token", strings.NewReader(`{"type":"m.login.application_service","username":"_bridge_ann"}`))
	if status != 401 || !strings.Contains(string(b), "M_UNKNOWN_TOKEN") {
		t.Fatalf("register with a bad token: %d %s", status, b)
	}
	status, body := asCall(t, r, "POST", v3+"/register", "", map[string]any{"type": "m.login.application_service", "username": "outsider"})
	wantAPIError(t, status, body, 400, "M_EXCLUSIVE")
	status, body = asCall(t, r, "POST", v3+"/register", "", asReg)
	if status != 200 || body["user_id"] != "@_bridge_ann:axon.test" || body["access_token"] == nil || body["device_id"] == nil {
		t.Fatalf("appservice register: %d %v", status, body)
	}
	annDevice := body["device_id"].(string)
	status, body = asCall(t, r, "POST", v3+"/register", "", asReg)
	wantAPIError(t, status, body, 400, "M_USER_IN_USE")
	status, body = asCall(t, r, "POST", v3+"/register", "", map[string]any{"type": "m.login.application_service", "username": "_bridge_quiet", "inhibit_login": true})
	if status != 200 || body["access_token"] != nil {
		t.Fatalf("inhibit_login: %d %v", status, body)
	}

	// Ordinary users cannot take names in the exclusive namespace.
	status, body = apiCall(t, r, nil, v3, "POST", "/register", map[string]any{"username": "_bridge_mallory", "password": "secret-pw-1", "auth": map[string]any{"type": "m.login.dummy"}})
	wantAPIError(t, status, body, 400, "M_EXCLUSIVE")
	status, body = apiCall(t, r, nil, v3, "GET", "/register/available?username=_bridge_bot", nil)
	wantAPIError(t, status, body, 400, "M_EXCLUSIVE")

	// GET /login offers the login type.
	status, body = apiCall(t, r, nil, v3, "GET", "/login", nil)
	if status != 200 || !strings.Contains(fmt.Sprint(body["flows"]), "m.login.application_service") {
		t.Fatalf("login flows: %d %v", status, body)
	}

	// Identity assertion: the sender by default, a namespace user on request.
	status, body = asCall(t, r, "GET", v3+"/account/whoami", "", nil)
	if status != 200 || body["user_id"] != "@_bridge_bot:axon.test" {
		t.Fatalf("whoami as sender: %d %v", status, body)
	}
	status, body = asCall(t, r, "GET", v3+"/account/whoami", "@_bridge_ann:axon.test", nil)
	if status != 200 || body["user_id"] != "@_bridge_ann:axon.test" || body["device_id"] != nil {
		t.Fatalf("whoami as ann: %d %v", status, body)
	}
	status, body = asCall(t, r, "GET", v3+"/account/whoami?device_id="+annDevice, "@_bridge_ann:axon.test", nil)
	if status != 200 || body["device_id"] != annDevice {
		t.Fatalf("whoami as ann's device: %d %v", status, body)
	}
	status, body = asCall(t, r, "GET", v3+"/account/whoami?device_id=NOSUCHDEVICE", "@_bridge_ann:axon.test", nil)
	wantAPIError(t, status, body, 400, "M_UNKNOWN_DEVICE")
	status, body = asCall(t, r, "GET", v3+"/account/whoami", alice.UserID.String(), nil)
	wantAPIError(t, status, body, 403, "M_EXCLUSIVE")
	status, body = asCall(t, r, "GET", v3+"/account/whoami", "@_bridge_ann:elsewhere.example", nil)
	wantAPIError(t, status, body, 403, "M_EXCLUSIVE")
	status, body = asCall(t, r, "GET", v3+"/account/whoami", "@_bridge_ghost:axon.test", nil)
	wantAPIError(t, status, body, 403, "M_FORBIDDEN")
	// user_id means nothing with an ordinary token.
	status, body = apiCall(t, r, alice, v3, "GET", "/account/whoami?user_id=@_bridge_ann:axon.test", nil)
	if status != 200 || body["user_id"] != alice.UserID.String() {
		t.Fatalf("user_id with a user token: %d %v", status, body)
	}

	// Devices: the service creates and deletes its users' devices without
	// /login or user-interactive auth; ordinary users cannot create any.
	status, body = asCall(t, r, "PUT", v3+"/devices/BRIDGEDEV", "@_bridge_ann:axon.test", map[string]any{"display_name": "Bridge"})
	if status != 200 {
		t.Fatalf("appservice creates a device: %d %v", status, body)
	}
	status, body = asCall(t, r, "GET", v3+"/account/whoami?device_id=BRIDGEDEV", "@_bridge_ann:axon.test", nil)
	if status != 200 || body["device_id"] != "BRIDGEDEV" {
		t.Fatalf("whoami with the created device: %d %v", status, body)
	}
	status, body = asCall(t, r, "GET", v3+"/devices/BRIDGEDEV", "@_bridge_ann:axon.test", nil)
	if status != 200 || body["display_name"] != "Bridge" {
		t.Fatalf("created device: %d %v", status, body)
	}
	status, body = apiCall(t, r, alice, v3, "PUT", "/devices/NEWDEV", map[string]any{"display_name": "x"})
	wantAPIError(t, status, body, 404, "M_NOT_FOUND")
	status, body = asCall(t, r, "DELETE", v3+"/devices/BRIDGEDEV", "@_bridge_ann:axon.test", map[string]any{})
	if status != 200 {
		t.Fatalf("appservice deletes a device: %d %v", status, body)
	}
	status, body = asCall(t, r, "GET", v3+"/account/whoami?device_id=BRIDGEDEV", "@_bridge_ann:axon.test", nil)
	wantAPIError(t, status, body, 400, "M_UNKNOWN_DEVICE")
	status, body = apiCall(t, r, alice, v3, "DELETE", "/devices/"+alice.DeviceID.String(), map[string]any{})
	if status != 401 {
		t.Fatalf("an ordinary user deletes a device without auth: %d %v", status, body)
	}

	// Replacing cross-signing keys needs no user-interactive auth either.
	master := func(user, pub string) map[string]any {
		return map[string]any{"master_key": map[string]any{"user_id": user, "usage": []string{"master"},
			"keys": map[string]string{"ed25519:" + pub: pub}}}
	}
	keyA, keyB := strings.Repeat("A", 43), strings.Repeat("B", 43)
	for _, k := range []string{keyA, keyB} {
		status, body = asCall(t, r, "POST", v3+"/keys/device_signing/upload", "@_bridge_ann:axon.test", master("@_bridge_ann:axon.test", k))
		if status != 200 {
			t.Fatalf("appservice uploads master key %s: %d %v", k[:1], status, body)
		}
	}
	if status, body = apiCall(t, r, alice, v3, "POST", "/keys/device_signing/upload", master(alice.UserID.String(), keyA)); status != 200 {
		t.Fatalf("first upload: %d %v", status, body)
	}
	if status, body = apiCall(t, r, alice, v3, "POST", "/keys/device_signing/upload", master(alice.UserID.String(), keyB)); status != 401 {
		t.Fatalf("an ordinary user replaces keys without auth: %d %v", status, body)
	}

	// The service acts in rooms as its user.
	room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	status, body = asCall(t, r, "POST", v3+"/join/"+esc(room.String()), "@_bridge_ann:axon.test", map[string]any{})
	if status != 200 {
		t.Fatalf("join as ann: %d %v", status, body)
	}
	status, body = asCall(t, r, "PUT", v3+"/rooms/"+esc(room.String())+"/send/m.room.message/t1", "@_bridge_ann:axon.test",
		map[string]any{"msgtype": "m.text", "body": "from the bridge"})
	if status != 200 {
		t.Fatalf("send as ann: %d %v", status, body)
	}
	ev, err := alice.GetEvent(ctx, room, id.EventID(body["event_id"].(string)))
	if err != nil || ev.Sender != "@_bridge_ann:axon.test" {
		t.Fatalf("event sent by the bridge: %+v %v", ev, err)
	}
	// Timestamp massaging: the service dates what it bridges.
	status, body = asCall(t, r, "PUT", v3+"/rooms/"+esc(room.String())+"/send/m.room.message/t3?ts=1600000000000", "@_bridge_ann:axon.test",
		map[string]any{"msgtype": "m.text", "body": "from 2020"})
	if status != 200 {
		t.Fatalf("send with ts: %d %v", status, body)
	}
	if ev, err = alice.GetEvent(ctx, room, id.EventID(body["event_id"].(string))); err != nil || ev.Timestamp != 1600000000000 {
		t.Fatalf("massaged timestamp: %+v %v", ev, err)
	}
	status, body = asCall(t, r, "PUT", v3+"/rooms/"+esc(room.String())+"/send/m.room.message/t4?ts=soon", "@_bridge_ann:axon.test",
		map[string]any{"msgtype": "m.text", "body": "x"})
	wantAPIError(t, status, body, 400, "M_INVALID_PARAM")
	status, body = apiCall(t, r, alice, v3, "PUT", "/rooms/"+esc(room.String())+"/send/m.room.message/a1?ts=1600000000000",
		map[string]any{"msgtype": "m.text", "body": "now"})
	if status != 200 {
		t.Fatalf("send: %d %v", status, body)
	}
	if ev, err = alice.GetEvent(ctx, room, id.EventID(body["event_id"].(string))); err != nil || ev.Timestamp < time.Now().Add(-time.Minute).UnixMilli() {
		t.Fatalf("ts means nothing for ordinary users: %+v %v", ev, err)
	}
	status, body = asCall(t, r, "PUT", v3+"/rooms/"+esc(room.String())+"/send/m.room.message/t2", alice.UserID.String(),
		map[string]any{"msgtype": "m.text", "body": "spoofed"})
	wantAPIError(t, status, body, 403, "M_EXCLUSIVE")

	// Exclusive aliases belong to the service.
	status, body = apiCall(t, r, alice, v3, "PUT", "/directory/room/"+esc("#_bridge_room:axon.test"), map[string]any{"room_id": room})
	wantAPIError(t, status, body, 400, "M_EXCLUSIVE")
	status, body = apiCall(t, r, alice, v3, "POST", "/createRoom", map[string]any{"room_alias_name": "_bridge_other"})
	wantAPIError(t, status, body, 400, "M_EXCLUSIVE")
	status, body = asCall(t, r, "PUT", v3+"/directory/room/"+esc("#_bridge_room:axon.test"), "@_bridge_ann:axon.test", map[string]any{"room_id": room})
	if status != 200 {
		t.Fatalf("alias by the service: %d %v", status, body)
	}
	// The service manages its aliases without being in the room, and
	// only its aliases.
	status, body = asCall(t, r, "PUT", v3+"/directory/room/"+esc("#_bridge_second:axon.test"), "", map[string]any{"room_id": room})
	if status != 200 {
		t.Fatalf("alias by the service's sender, not in the room: %d %v", status, body)
	}
	status, body = asCall(t, r, "PUT", v3+"/directory/room/"+esc("#plain:axon.test"), "@_bridge_ann:axon.test", map[string]any{"room_id": room})
	wantAPIError(t, status, body, 400, "M_EXCLUSIVE")
	status, body = apiCall(t, r, alice, v3, "DELETE", "/directory/room/"+esc("#_bridge_room:axon.test"), nil)
	wantAPIError(t, status, body, 400, "M_EXCLUSIVE")
	status, body = asCall(t, r, "DELETE", v3+"/directory/room/"+esc("#_bridge_room:axon.test"), "", nil)
	if status != 200 {
		t.Fatalf("the service deletes an alias ann created: %d %v", status, body)
	}
	if _, err := alice.ResolveAlias(ctx, "#_bridge_room:axon.test"); err == nil {
		t.Fatal("deleted alias still resolves")
	}

	// Login as a namespace user, and not as anyone else.
	status, body = asCall(t, r, "POST", v3+"/login", "", map[string]any{"type": "m.login.application_service",
		"identifier": map[string]any{"type": "m.id.user", "user": "_bridge_ann"}})
	if status != 200 || body["user_id"] != "@_bridge_ann:axon.test" || body["access_token"] == nil {
		t.Fatalf("appservice login: %d %v", status, body)
	}
	status, body = asCall(t, r, "POST", v3+"/login", "", map[string]any{"type": "m.login.application_service",
		"identifier": map[string]any{"type": "m.id.user", "user": "alice"}})
	wantAPIError(t, status, body, 403, "M_EXCLUSIVE")
	status, body = apiCall(t, r, nil, v3, "POST", "/login", map[string]any{"type": "m.login.application_service",
		"identifier": map[string]any{"type": "m.id.user", "user": "_bridge_ann"}})
	wantAPIError(t, status, body, 401, "M_MISSING_TOKEN")
}

func TestAppServiceRateLimits(t *testing.T) {
	f := newFakeAS(t)
	regDir := t.TempDir()
	file := writeRegistration(t, regDir, "bridge.yaml", bridgeRegistration(f.srv.URL))
	r := testrig.Start(t, func(c *config.Config) {
		c.AppServiceConfigFiles = []string{file}
		c.RateLimits = true
		c.RateLimit.Register = config.RateLimit{PerSecond: 0.001, Burst: 1}
		c.RateLimit.Default = config.RateLimit{PerSecond: 0.001, Burst: 2}
	})
	// Registrations by the service and requests of its users (rate_limited:
	// false) pass limits that stop an ordinary client at once.
	for i := range 4 {
		status, body := asCall(t, r, "POST", "/_matrix/client/v3/register", "", map[string]any{"type": "m.login.application_service",
			"username": fmt.Sprintf("_bridge_u%d", i), "inhibit_login": true})
		if status != 200 {
			t.Fatalf("appservice registration %d: %d %v", i, status, body)
		}
		status, body = asCall(t, r, "GET", "/_matrix/client/v3/account/whoami", fmt.Sprintf("@_bridge_u%d:axon.test", i), nil)
		if status != 200 {
			t.Fatalf("whoami %d: %d %v", i, status, body)
		}
	}
	alice := r.CreateUser("alice")
	limited := false
	for range 4 {
		if status, _ := apiCall(t, r, alice, v3, "GET", "/account/whoami", nil); status == 429 {
			limited = true
		}
	}
	if !limited {
		t.Fatal("an ordinary user was not rate limited")
	}
}

func TestAppServiceTransactionsSurviveOutageAndRestart(t *testing.T) {
	f := newFakeAS(t)
	r, opt := startWithBridge(t, f)
	ctx := context.Background()
	alice := r.CreateUser("alice")
	registerAS(t, r, "_bridge_ann")
	other := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat"})
	room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if status, body := asCall(t, r, "POST", v3+"/join/"+esc(room.String()), "@_bridge_ann:axon.test", map[string]any{}); status != 200 {
		t.Fatalf("join: %d %v", status, body)
	}
	// A room without the service's users is none of its business.
	testrig.SendText(t, alice, other, "not for the bridge")
	sent := testrig.SendText(t, alice, room, "hello bridge")
	f.waitFor("first message", func() bool { return strings.Contains(strings.Join(f.deliveredBodies(), "|"), "hello bridge") })
	f.mu.Lock()
	if got := f.deliveredBodies(); len(got) != 1 || got[0] != "hello bridge" {
		t.Errorf("delivered messages %q, want only the bridged room's", got)
	}
	if f.badAuth != 0 {
		t.Errorf("%d transactions without the hs_token", f.badAuth)
	}
	f.mu.Unlock()

	// Receipts reach a service that asked for ephemeral data.
	if err := alice.MarkRead(ctx, room, sent); err != nil {
		t.Fatal(err)
	}
	f.waitFor("receipt", func() bool {
		for _, b := range f.txns() {
			for _, e := range b.Ephemeral {
				byType, _ := e.Content[sent.String()].(map[string]any)
				read, _ := byType["m.read"].(map[string]any)
				if e.Type == "m.receipt" && e.RoomID == room.String() && read[alice.UserID.String()] != nil {
					return true
				}
			}
		}
		return false
	})

	// So do typing notifications.
	if _, err := alice.UserTyping(ctx, room, true, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	f.waitFor("typing", func() bool {
		for _, b := range f.txns() {
			for _, e := range b.Ephemeral {
				ids, _ := e.Content["user_ids"].([]any)
				if e.Type == "m.typing" && e.RoomID == room.String() && len(ids) == 1 && ids[0] == alice.UserID.String() {
					return true
				}
			}
		}
		return false
	})

	// And presence of the users it shares rooms with (not of others).
	loner := r.CreateUser("loner")
	if status, body := apiCall(t, r, loner, v3, "PUT", "/presence/"+esc(loner.UserID.String())+"/status",
		map[string]any{"presence": "online"}); status != 200 {
		t.Fatalf("set presence: %d %v", status, body)
	}
	if status, body := apiCall(t, r, alice, v3, "PUT", "/presence/"+esc(alice.UserID.String())+"/status",
		map[string]any{"presence": "online", "status_msg": "bridging"}); status != 200 {
		t.Fatalf("set presence: %d %v", status, body)
	}
	f.waitFor("presence", func() bool {
		for _, b := range f.txns() {
			for _, e := range b.Ephemeral {
				if e.Type == "m.presence" && e.Sender == loner.UserID.String() {
					t.Errorf("presence of a user sharing no room with the service was sent")
				}
				if e.Type == "m.presence" && e.Sender == alice.UserID.String() && e.Content["status_msg"] == "bridging" {
					return true
				}
			}
		}
		return false
	})

	// To-device messages to its users' devices reach it, and are taken off
	// the queue of its exclusive users' devices.
	status, body := asCall(t, r, "PUT", v3+"/devices/ANNDEV", "@_bridge_ann:axon.test", map[string]any{})
	if status != 200 {
		t.Fatalf("create device: %d %v", status, body)
	}
	status, body = apiCall(t, r, alice, v3, "PUT", "/sendToDevice/m.room_key_request/td1", map[string]any{"messages": map[string]any{
		"@_bridge_ann:axon.test": map[string]any{"ANNDEV": map[string]any{"secret": "for ann"}},
		alice.UserID.String():    map[string]any{alice.DeviceID.String(): map[string]any{"secret": "for alice"}},
	}})
	if status != 200 {
		t.Fatalf("sendToDevice: %d %v", status, body)
	}
	f.waitFor("to-device", func() bool {
		for _, b := range f.txns() {
			for _, m := range b.ToDevice {
				if m.ToUserID != "@_bridge_ann:axon.test" {
					t.Errorf("to-device message of %s sent to the service", m.ToUserID)
				}
				if m.Type == "m.room_key_request" && m.Sender == alice.UserID.String() && m.ToDeviceID == "ANNDEV" && m.Content["secret"] == "for ann" {
					return true
				}
			}
		}
		return false
	})
	if left, err := r.Server.DB.ToDeviceFor(ctx, "@_bridge_ann:axon.test", "ANNDEV", r.Server.DB.Position(), 10); err != nil || len(left) != 0 {
		t.Errorf("delivered to-device messages left queued: %v %v", left, err)
	}
	if left, err := r.Server.DB.ToDeviceFor(ctx, alice.UserID.String(), alice.DeviceID.String(), r.Server.DB.Position(), 10); err != nil || len(left) != 1 {
		t.Errorf("alice's own to-device message: %v %v", left, err)
	}

	// The service goes down: the next transaction is retried with the
	// same ID and body.
	f.setDown(true)
	testrig.SendText(t, alice, room, "while down")
	var failed fakeTxn
	f.waitFor("two failed attempts", func() bool {
		n := 0
		for _, a := range f.attempts {
			if strings.Contains(string(a.Body), "while down") {
				if n > 0 && (a.ID != failed.ID || !bytes.Equal(a.Body, failed.Body)) {
					t.Errorf("retry changed the transaction: %s %s, then %s %s", failed.ID, failed.Body, a.ID, a.Body)
				}
				failed = a
				n++
			}
		}
		return n >= 2
	})

	// Restart while it is still down; it comes back after.
	r.Stop()
	r = testrig.StartIn(t, r.DataDir, opt)
	r.Server.AppServices.SetBackoff(20*time.Millisecond, 200*time.Millisecond)
	alice = r.CreateUserDevice("alice", "DEV_alice2", false) // the new server listens elsewhere
	f.setDown(false)
	f.waitFor("the failed transaction", func() bool {
		for _, d := range f.delivered {
			if d.ID == failed.ID {
				if !bytes.Equal(d.Body, failed.Body) {
					t.Errorf("transaction %s changed across the restart", d.ID)
				}
				return true
			}
		}
		return false
	})
	testrig.SendText(t, alice, room, "after restart")
	f.waitFor("message after restart", func() bool { return strings.Contains(strings.Join(f.deliveredBodies(), "|"), "after restart") })
	f.mu.Lock()
	defer f.mu.Unlock()
	if got := strings.Join(f.deliveredBodies(), "|"); got != "hello bridge|while down|after restart" {
		t.Errorf("delivered %q: want every message once, in order", got)
	}
	for _, txn := range f.delivered {
		if bytes.Contains(txn.Body, []byte("org.matrix.msc3202")) {
			t.Errorf("MSC3202 data sent to a service that did not ask for it: %s", txn.Body)
		}
	}
}

func TestAppServicePing(t *testing.T) {
	f := newFakeAS(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there any more
	dead := `id: dead
url: ` + deadURL + `
as_token: dead-as
hs_token: dead-hs
sender_localpart: _dead_bot
namespaces: {users: [], aliases: [], rooms: []}
`
	nourl := `id: nourl
url: null
as_token: nourl-as
hs_token: nourl-hs
sender_localpart: _nourl_bot
namespaces: {}
`
	r, _ := startWithBridge(t, f, dead, nourl)
	alice := r.CreateUser("alice")
	ping := func(asID, token string) (int, map[string]any) {
		t.Helper()
		return r.JSON(t, "POST", v1+"/appservice/"+asID+"/ping", token, map[string]any{"transaction_id": "meow"})
	}
	status, body := ping("bridge", asToken)
	if status != 200 || body["duration_ms"] == nil {
		t.Fatalf("ping: %d %v", status, body)
	}
	f.mu.Lock()
	if len(f.pings) != 1 || f.pings[0] != "meow" {
		t.Errorf("pings received: %q", f.pings)
	}
	f.pingStatus = http.StatusForbidden
	f.mu.Unlock()
	status, body = ping("bridge", asToken)
	wantAPIError(t, status, body, 502, "M_BAD_STATUS")
	if body["status"] != float64(403) || !strings.Contains(fmt.Sprint(body["body"]), "M_FORBIDDEN") {
		t.Errorf("bad status details: %v", body)
	}
	f.mu.Lock()
	f.pingStatus, f.pingDelay = 0, 500*time.Millisecond
	f.mu.Unlock()
	r.Server.AppServices.SetQueryTimeout(100 * time.Millisecond)
	status, body = ping("bridge", asToken)
	wantAPIError(t, status, body, 504, "M_CONNECTION_TIMEOUT")
	status, body = ping("dead", "dead-as")
	wantAPIError(t, status, body, 502, "M_CONNECTION_FAILED")
	status, body = ping("nourl", "nourl-as")
	wantAPIError(t, status, body, 400, "M_URL_NOT_SET")
	status, body = ping("dead", asToken)
	wantAPIError(t, status, body, 403, "M_FORBIDDEN")
	status, body = ping("bridge", alice.AccessToken)
	wantAPIError(t, status, body, 403, "M_FORBIDDEN")
	status, body = ping("bridge", "")
	wantAPIError(t, status, body, 401, "M_MISSING_TOKEN")
}

func TestAppServiceDirectories(t *testing.T) {
	f := newFakeAS(t)
	r, _ := startWithBridge(t, f)
	ctx := context.Background()
	alice := r.CreateUser("alice")
	status, body := asCall(t, r, "POST", v3+"/createRoom", "", map[string]any{"preset": "public_chat", "name": "Gitter portal"})
	if status != 200 {
		t.Fatalf("createRoom as the service: %d %v", status, body)
	}
	portal := body["room_id"].(string)
	publicRooms := func(filter map[string]any) []string {
		t.Helper()
		status, body := apiCall(t, r, alice, v3, "POST", "/publicRooms", filter)
		if status != 200 {
			t.Fatalf("publicRooms %v: %d %v", filter, status, body)
		}
		var ids []string
		for _, c := range body["chunk"].([]any) {
			ids = append(ids, c.(map[string]any)["room_id"].(string))
		}
		return ids
	}
	path := v3 + "/directory/list/appservice/gitter/" + esc(portal)
	status, body = apiCall(t, r, alice, v3, "PUT", "/directory/list/appservice/gitter/"+esc(portal), map[string]any{"visibility": "public"})
	wantAPIError(t, status, body, 403, "M_FORBIDDEN")
	status, body = asCall(t, r, "PUT", path, "", map[string]any{})
	wantAPIError(t, status, body, 400, "M_MISSING_PARAM")
	status, body = asCall(t, r, "PUT", path, "", map[string]any{"visibility": "secret"})
	wantAPIError(t, status, body, 400, "M_INVALID_PARAM")
	status, body = asCall(t, r, "PUT", v3+"/directory/list/appservice/gitter/"+esc("!nope:axon.test"), "", map[string]any{"visibility": "public"})
	wantAPIError(t, status, body, 404, "M_NOT_FOUND")
	if got := publicRooms(map[string]any{"third_party_instance_id": "bridge|gitter"}); len(got) != 0 {
		t.Fatalf("network directory before publishing: %v", got)
	}
	if status, body = asCall(t, r, "PUT", path, "", map[string]any{"visibility": "public"}); status != 200 {
		t.Fatalf("publish: %d %v", status, body)
	}
	if got := publicRooms(map[string]any{"third_party_instance_id": "bridge|gitter"}); len(got) != 1 || got[0] != portal {
		t.Fatalf("network directory: %v", got)
	}
	if got := publicRooms(map[string]any{}); len(got) != 0 {
		t.Fatalf("the server's own directory lists the network's room: %v", got)
	}
	if got := publicRooms(map[string]any{"include_all_networks": true}); len(got) != 1 || got[0] != portal {
		t.Fatalf("all networks: %v", got)
	}
	if got := publicRooms(map[string]any{"third_party_instance_id": "bridge|irc"}); len(got) != 0 {
		t.Fatalf("another network: %v", got)
	}
	if status, body = asCall(t, r, "PUT", path, "", map[string]any{"visibility": "private"}); status != 200 {
		t.Fatalf("unpublish: %d %v", status, body)
	}
	if got := publicRooms(map[string]any{"include_all_networks": true}); len(got) != 0 {
		t.Fatalf("after unpublishing: %v", got)
	}

	// An unknown alias in the service's namespace is asked of the service,
	// which creates it before answering.
	f.mu.Lock()
	f.onRoomQuery = func(alias string) bool {
		req, _ := http.NewRequest("PUT", r.URL+v3+"/directory/room/"+url.PathEscape(alias), strings.NewReader(`{"room_id":"`+portal+`"}`))
		req.Header.Set("Authorization", "Bearer "+asToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}
	f.mu.Unlock()
	res, err := alice.ResolveAlias(ctx, "#_bridge_matrix_dev:axon.test")
	if err != nil || res.RoomID.String() != portal {
		t.Fatalf("alias created on query: %+v %v", res, err)
	}
	_, err = alice.ResolveAlias(ctx, "#nobody:axon.test")
	wantClientError(t, err, 404, "M_NOT_FOUND")
	f.mu.Lock()
	if len(f.queries) != 1 || f.queries[0] != "#_bridge_matrix_dev:axon.test" {
		t.Errorf("alias queries: %q (only aliases in the namespace are asked)", f.queries)
	}
	f.mu.Unlock()
}

// TestAppServiceInvalidRegistrationStopsStart checks a bad registration
// file stops the server with an error naming the file and the field.
func TestAppServiceInvalidRegistrationStopsStart(t *testing.T) {
	dir := t.TempDir()
	file := writeRegistration(t, dir, "broken.yaml", strings.Replace(bridgeRegistration("http://127.0.0.1:1"), `regex: "#_bridge_.*"`, `regex: "#_bridge_(["`, 1))
	cfg, err := config.Load("", func(k string) string {
		return map[string]string{"AXON_DATA_DIR": filepath.Join(dir, "data"), "AXON_SERVER_NAME": "axon.test"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.AppServiceConfigFiles = []string{file}
	srv, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		srv.Close()
		t.Fatal("server started with an invalid registration")
	}
	if !strings.Contains(err.Error(), "broken.yaml") || !strings.Contains(err.Error(), "namespaces.aliases[0].regex") {
		t.Fatalf("error does not name the file and field: %v", err)
	}
	if _, statErr := os.Stat(filepath.Join(dir, "data", "axon.db")); statErr == nil {
		t.Error("the database was created before the registration was checked")
	}
}

// TestAppServiceUserQuery checks an invite to an unknown user in a
// service's namespace asks the service, which may create the user.
func TestAppServiceUserQuery(t *testing.T) {
	f := newFakeAS(t)
	r, _ := startWithBridge(t, f)
	ctx := context.Background()
	alice := r.CreateUser("alice")
	f.mu.Lock()
	f.onUserQuery = func(userID string) bool {
		if userID != "@_bridge_newbie:axon.test" {
			return false
		}
		req, _ := http.NewRequest("POST", r.URL+"/_matrix/client/v3/register",
			strings.NewReader(`{"type":"m.login.application_service","username":"_bridge_newbie","inhibit_login":true}`))
		req.Header.Set("Authorization", "Bearer "+asToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}
	f.mu.Unlock()
	room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat"})
	if _, err := alice.InviteUser(ctx, room, &mautrix.ReqInviteUser{UserID: "@_bridge_newbie:axon.test"}); err != nil {
		t.Fatalf("invite of a user the service creates: %v", err)
	}
	_, err := alice.InviteUser(ctx, room, &mautrix.ReqInviteUser{UserID: "@_bridge_nobody:axon.test"})
	wantClientError(t, err, 404, "M_NOT_FOUND")
	_, err = alice.InviteUser(ctx, room, &mautrix.ReqInviteUser{UserID: "@stranger:axon.test"})
	wantClientError(t, err, 404, "M_NOT_FOUND")
	f.mu.Lock()
	defer f.mu.Unlock()
	if strings.Join(f.userQueries, ",") != "@_bridge_newbie:axon.test,@_bridge_nobody:axon.test" {
		t.Errorf("user queries: %q (only unknown users in the namespace are asked)", f.userQueries)
	}
}

// TestAppServiceMSC3202 checks a service that opted into MSC3202 gets its
// devices' one-time key counts when they change, and the device list
// changes of the users it shares rooms with.
func TestAppServiceMSC3202(t *testing.T) {
	f := newFakeAS(t)
	r, _ := startWithRegistrations(t, bridgeRegistration(f.srv.URL)+"org.matrix.msc3202: true\n")
	const ann = "@_bridge_ann:axon.test"
	alice := r.CreateUser("alice")
	registerAS(t, r, "_bridge_ann")
	room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if status, body := asCall(t, r, "POST", v3+"/join/"+esc(room.String()), ann, map[string]any{}); status != 200 {
		t.Fatalf("join: %d %v", status, body)
	}
	if status, body := asCall(t, r, "PUT", v3+"/devices/ANNDEV", ann, map[string]any{}); status != 200 {
		t.Fatalf("create device: %d %v", status, body)
	}
	// alice signs in on another device: her device list changes.
	if status, body := apiCall(t, r, nil, v3, "POST", "/login", map[string]any{"type": "m.login.password",
		"identifier": map[string]any{"type": "m.id.user", "user": "alice"}, "password": "password-alice"}); status != 200 {
		t.Fatalf("login: %d %v", status, body)
	}
	if status, body := asCall(t, r, "POST", v3+"/keys/upload?device_id=ANNDEV", ann, map[string]any{
		"one_time_keys": map[string]any{"curve25519:AAAA": "a2V5MQ", "curve25519:AAAB": "a2V5Mg"}}); status != 200 {
		t.Fatalf("keys upload: %d %v", status, body)
	}
	countSeen := func(n int) func() bool {
		return func() bool {
			for _, b := range f.txns() {
				if c, ok := b.Counts[ann]["ANNDEV"]["curve25519"]; ok && c == n {
					return true
				}
			}
			return false
		}
	}
	f.waitFor("one-time key count 2", countSeen(2))
	f.waitFor("alice's device list change", func() bool {
		for _, b := range f.txns() {
			if b.DeviceLists != nil && strings.Contains(strings.Join(b.DeviceLists.Changed, ","), alice.UserID.String()) {
				return true
			}
		}
		return false
	})
	// alice claims one of the keys: the service learns its count dropped.
	if status, body := apiCall(t, r, alice, v3, "POST", "/keys/claim", map[string]any{"one_time_keys": map[string]any{
		ann: map[string]any{"ANNDEV": "curve25519"}}}); status != 200 {
		t.Fatalf("claim: %d %v", status, body)
	}
	f.waitFor("one-time key count 1", countSeen(1))
}

// TestAppServiceLegacyPaths checks a service of the drafts before v1, which
// knows only /transactions/{txnId} with the token in the query, still gets
// its events.
func TestAppServiceLegacyPaths(t *testing.T) {
	got := make(chan []byte, 10)
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /transactions/{txnId}", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("access_token") != hsToken {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		b, _ := io.ReadAll(r.Body)
		got <- b
		io.WriteString(w, "{}")
	})
	old := httptest.NewServer(mux) // anything else: 404 without a Matrix error
	t.Cleanup(old.Close)
	r, _ := startWithRegistrations(t, bridgeRegistration(old.URL))
	alice := r.CreateUser("alice")
	if status, body := asCall(t, r, "POST", "/_matrix/client/v3/register", "", map[string]any{"type": "m.login.application_service",
		"username": "_bridge_ann", "inhibit_login": true}); status != 200 {
		t.Fatalf("register: %d %v", status, body)
	}
	room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if status, body := asCall(t, r, "POST", "/_matrix/client/v3/join/"+esc(room.String()), "@_bridge_ann:axon.test", map[string]any{}); status != 200 {
		t.Fatalf("join: %d %v", status, body)
	}
	testrig.SendText(t, alice, room, "to an old bridge")
	deadline := time.After(10 * time.Second)
	for {
		select {
		case b := <-got:
			if strings.Contains(strings.Join(messageBodies(t, b), "|"), "to an old bridge") {
				return
			}
		case <-deadline:
			t.Fatal("the legacy service got no transaction")
		}
	}
}

// TestAppServiceBadInput checks malformed requests of services get the
// Matrix error for them and change nothing.
func TestAppServiceBadInput(t *testing.T) {
	f := newFakeAS(t)
	r, _ := startWithBridge(t, f)
	for _, c := range []struct {
		name, method, path string
		body               any
		status             int
		code               string
	}{
		{"register without username", "POST", v3 + "/register", map[string]any{"type": "m.login.application_service"}, 400, "M_MISSING_PARAM"},
		{"register with a bad name", "POST", v3 + "/register", map[string]any{"type": "m.login.application_service", "username": "_bridge_Ann"}, 400, "M_INVALID_USERNAME"},
		{"register on another server", "POST", v3 + "/register", map[string]any{"type": "m.login.application_service", "username": "@_bridge_x:elsewhere.example"}, 400, "M_INVALID_USERNAME"},
		{"login with a third-party identifier", "POST", v3 + "/login", map[string]any{"type": "m.login.application_service",
			"identifier": map[string]any{"type": "m.id.thirdparty", "medium": "email", "address": "a@b.c"}}, 400, "M_UNKNOWN"},
		{"login as nobody", "POST", v3 + "/login", map[string]any{"type": "m.login.application_service",
			"identifier": map[string]any{"type": "m.id.user", "user": "_bridge_ghost"}}, 403, "M_FORBIDDEN"},
		{"ping with a non-JSON body", "POST", "/_matrix/client/v1/appservice/bridge/ping", "{nope", 400, "M_NOT_JSON"},
		{"network with a bar", "PUT", v3 + "/directory/list/appservice/a%7Cb/" + esc("!r:axon.test"), map[string]any{"visibility": "public"}, 400, "M_INVALID_PARAM"},
		{"room that is not a room ID", "PUT", v3 + "/directory/list/appservice/gitter/nope", map[string]any{"visibility": "public"}, 400, "M_INVALID_PARAM"},
		{"ts that is negative", "PUT", v3 + "/rooms/" + esc("!r:axon.test") + "/send/m.room.message/x?ts=-5", map[string]any{"body": "x"}, 400, "M_INVALID_PARAM"},
	} {
		status, body := asCall(t, r, c.method, c.path, "", c.body) // a string body goes as it is
		if status != c.status || body["errcode"] != c.code {
			t.Errorf("%s: got %d %v, want %d %s", c.name, status, body, c.status, c.code)
		}
	}
	users, err := r.Server.Accounts.Users(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 1 || users[0].UserID != "@_bridge_bot:axon.test" {
		t.Errorf("accounts after bad requests: %+v (only the sender should exist)", users)
	}
}
