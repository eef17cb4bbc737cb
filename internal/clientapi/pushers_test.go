package clientapi_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/storage"
	"github.com/axon-matrix/axon/internal/testrig"
)

// recorder is a push gateway on loopback that records what it is sent.
type recorder struct {
	srv *httptest.Server
	got chan recorded

	mu       sync.Mutex
	down     bool
	failures int
	rejected map[string]bool
}

type recorded struct {
	at   time.Time
	raw  []byte
	note struct {
		EventID string          `json:"event_id"`
		RoomID  string          `json:"room_id"`
		Type    string          `json:"type"`
		Sender  string          `json:"sender"`
		Prio    string          `json:"prio"`
		Content json.RawMessage `json:"content"`
		Counts  map[string]any  `json:"counts"`
		Devices []struct {
			AppID   string         `json:"app_id"`
			PushKey string         `json:"pushkey"`
			Data    map[string]any `json:"data"`
			Tweaks  map[string]any `json:"tweaks"`
		} `json:"devices"`
	}
}

func newRecorder(t *testing.T) *recorder {
	rec := &recorder{got: make(chan recorded, 1000), rejected: map[string]bool{}}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/_matrix/push/v1/notify" || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		down := rec.down
		if down {
			rec.failures++
		}
		rec.mu.Unlock()
		if down {
			http.Error(w, "gateway down", http.StatusServiceUnavailable)
			return
		}
		var x recorded
		x.at, x.raw = time.Now(), body
		var wrapper struct {
			Notification json.RawMessage `json:"notification"`
		}
		if err := json.Unmarshal(body, &wrapper); err != nil {
			t.Errorf("gateway got invalid JSON: %s", body)
		}
		json.Unmarshal(wrapper.Notification, &x.note)
		rejected := []string{}
		rec.mu.Lock()
		for _, d := range x.note.Devices {
			if rec.rejected[d.PushKey] {
				rejected = append(rejected, d.PushKey)
			}
		}
		rec.mu.Unlock()
		rec.got <- x
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"rejected": rejected})
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *recorder) url() string { return rec.srv.URL + "/_matrix/push/v1/notify" }

func (rec *recorder) setDown(down bool) {
	rec.mu.Lock()
	rec.down = down
	rec.mu.Unlock()
}

// next waits for n pushes and returns them sorted by pushkey within the
// batch order they arrived in.
func (rec *recorder) next(t *testing.T, n int) []recorded {
	t.Helper()
	var out []recorded
	timeout := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case x := <-rec.got:
			out = append(out, x)
		case <-timeout:
			t.Fatalf("got %d pushes, want %d", len(out), n)
		}
	}
	return out
}

func (rec *recorder) none(t *testing.T, wait time.Duration) {
	t.Helper()
	select {
	case x := <-rec.got:
		t.Fatalf("unexpected push: %s", x.raw)
	case <-time.After(wait):
	}
}

func pushOptions(c *config.Config) {
	c.Push.AllowHTTP = true
	c.Push.AllowPrivateAddresses = true
}

func setPusher(t *testing.T, r *testrig.Rig, c *mautrix.Client, pushkey, url string, extra map[string]any) {
	t.Helper()
	data := map[string]any{"url": url}
	for k, v := range extra {
		data[k] = v
	}
	status, body := apiCall(t, r, c, v3, http.MethodPost, "/pushers/set", map[string]any{
		"kind": "http", "app_id": "org.axon.test", "pushkey": pushkey, "app_display_name": "Axon test",
		"device_display_name": string(c.DeviceID), "lang": "en", "data": data,
	})
	if status != 200 {
		t.Fatalf("set pusher: %d %v", status, body)
	}
}

func byPushKey(xs []recorded) map[string]recorded {
	m := map[string]recorded{}
	for _, x := range xs {
		m[x.note.Devices[0].PushKey] = x
	}
	return m
}

func unreadOf(x recorded) float64 {
	u, _ := x.note.Counts["unread"].(float64)
	return u
}

// TestPushRecorderScenario is the scenario: one user with two
// devices and pushers; messages, a mention, a receipt on one device, a
// gateway outage across a restart, a rejected pushkey.
func TestPushRecorderScenario(t *testing.T) {
	ctx := context.Background()
	rec := newRecorder(t)
	r := testrig.Start(t, pushOptions)
	r.Server.Push.SetBackoff(20*time.Millisecond, 200*time.Millisecond)
	alice := r.CreateUserDevice("alice", "PHONE", true)
	aliceTablet := r.CreateUserDevice("alice", "TABLET", false)
	bob := r.CreateUser("bob")
	carol := r.CreateUser("carol")

	room := testrig.CreateRoom(t, bob, &mautrix.ReqCreateRoom{Preset: "public_chat", Name: "Ops"})
	testrig.Join(t, room, alice, carol)
	setPusher(t, r, alice, "key-phone", rec.url(), nil)
	setPusher(t, r, aliceTablet, "key-tablet", rec.url(), map[string]any{"custom": "kept"})
	logPush := func(label string, xs []recorded) {
		for _, x := range xs {
			t.Logf("%s: %s", label, x.raw)
		}
	}

	// A message: one notify per pusher, with the counts.
	msg := testrig.SendText(t, bob, room, "disk almost full")
	got := byPushKey(rec.next(t, 2))
	logPush("message", []recorded{got["key-phone"], got["key-tablet"]})
	for _, key := range []string{"key-phone", "key-tablet"} {
		x, ok := got[key]
		if !ok {
			t.Fatalf("no push for %s", key)
		}
		n := x.note
		if n.EventID != msg.String() || n.RoomID != room.String() || n.Type != "m.room.message" ||
			n.Sender != bob.UserID.String() || unreadOf(x) != 1 || n.Prio != "low" {
			t.Errorf("%s: %s", key, x.raw)
		}
		if hl, ok := n.Devices[0].Tweaks["highlight"].(bool); !ok || hl {
			t.Errorf("%s: highlight tweak must be false, not absent or null: %s", key, x.raw)
		}
		if _, ok := n.Devices[0].Data["url"]; ok {
			t.Errorf("%s: data must not carry the url: %s", key, x.raw)
		}
		if !strings.Contains(string(x.raw), `"room_name":"Ops"`) {
			t.Errorf("%s: no room name: %s", key, x.raw)
		}
	}
	if got["key-tablet"].note.Devices[0].Data["custom"] != "kept" {
		t.Errorf("custom data not forwarded: %s", got["key-tablet"].raw)
	}

	// A mention: highlight and sound, high priority.
	mention, err := bob.SendMessageEvent(ctx, room, event.EventMessage, map[string]any{
		"msgtype": "m.text", "body": "alice: look", "m.mentions": map[string]any{"user_ids": []string{alice.UserID.String()}},
	})
	if err != nil {
		t.Fatal(err)
	}
	got = byPushKey(rec.next(t, 2))
	logPush("mention", []recorded{got["key-phone"], got["key-tablet"]})
	for key, x := range got {
		tw := x.note.Devices[0].Tweaks
		if x.note.EventID != mention.EventID.String() || tw["highlight"] != true || tw["sound"] != "default" || x.note.Prio != "high" || unreadOf(x) != 2 {
			t.Errorf("%s: %s", key, x.raw)
		}
	}
	// carol's messages reach nobody's gateway but alice's; alice's own
	// messages reach nobody.
	testrig.SendText(t, alice, room, "on it")
	rec.none(t, 200*time.Millisecond)

	// The phone reads: both devices get a badge-only update to 0.
	if err := alice.SendReceipt(ctx, room, mention.EventID, event.ReceiptTypeRead, nil); err != nil {
		t.Fatal(err)
	}
	got = byPushKey(rec.next(t, 2))
	logPush("receipt", []recorded{got["key-phone"], got["key-tablet"]})
	for _, key := range []string{"key-phone", "key-tablet"} {
		x, ok := got[key]
		if !ok || x.note.EventID != "" || unreadOf(x) != 0 || x.note.Counts["unread"] == nil {
			t.Errorf("badge update for %s: %s", key, x.raw)
		}
	}

	// The gateway goes down; three messages queue up; the server restarts;
	// the gateway comes back: every push arrives, in order.
	rec.setDown(true)
	var sent []id.EventID
	for _, body := range []string{"one", "two", "three"} {
		resp, err := bob.SendText(ctx, room, body)
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, resp.EventID)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		rec.mu.Lock()
		f := rec.failures
		rec.mu.Unlock()
		if f >= 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	dir := r.DataDir
	r.Stop()
	rec.setDown(false)
	r = testrig.StartIn(t, dir, pushOptions)
	r.Server.Push.SetBackoff(20*time.Millisecond, 200*time.Millisecond)
	// Gateways suppress duplicates by event_id (push gateway API), so a
	// push repeated after a failure is tolerated; a missing one is not.
	order := map[string][]string{}
	seen := map[string]bool{}
	var xs []recorded
	for len(seen) < 6 {
		x := rec.next(t, 1)[0]
		xs = append(xs, x)
		k := x.note.Devices[0].PushKey
		if !seen[k+x.note.EventID] {
			seen[k+x.note.EventID] = true
			order[k] = append(order[k], x.note.EventID)
		}
	}
	logPush("after outage and restart", xs)
	for _, key := range []string{"key-phone", "key-tablet"} {
		want := []string{sent[0].String(), sent[1].String(), sent[2].String()}
		if strings.Join(order[key], ",") != strings.Join(want, ",") {
			t.Errorf("%s got %v, want %v", key, order[key], want)
		}
	}
	last := xs[len(xs)-1]
	if unreadOf(last) != 3 {
		t.Errorf("unread after three more messages: %s", last.raw)
	}

	// The gateway rejects the tablet's pushkey: that pusher goes away.
	rec.mu.Lock()
	rec.rejected["key-tablet"] = true
	rec.mu.Unlock()
	status, _ := apiCall(t, r, bob, v3, http.MethodPut, "/rooms/"+room.String()+"/send/m.room.message/rej1",
		map[string]any{"msgtype": "m.text", "body": "again"})
	if status != 200 {
		t.Fatal(status)
	}
	rec.next(t, 2)
	deadline = time.Now().Add(5 * time.Second)
	for {
		status, body := apiCall(t, r, alice, v3, http.MethodGet, "/pushers", nil)
		ps, _ := body["pushers"].([]any)
		if status == 200 && len(ps) == 1 && ps[0].(map[string]any)["pushkey"] == "key-phone" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rejected pusher not removed: %v", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	status, _ = apiCall(t, r, bob, v3, http.MethodPut, "/rooms/"+room.String()+"/send/m.room.message/rej2",
		map[string]any{"msgtype": "m.text", "body": "only the phone"})
	if status != 200 {
		t.Fatal(status)
	}
	if x := rec.next(t, 1)[0]; x.note.Devices[0].PushKey != "key-phone" {
		t.Errorf("push after removal went to %s", x.raw)
	}
	rec.none(t, 200*time.Millisecond)
}

// TestPushLatency measures the time from a send to the gateway receiving
// its notify, over 100 sends.
func TestPushLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("latency measurement")
	}
	rec := newRecorder(t)
	r := testrig.Start(t, pushOptions)
	alice, bob, _, room := bobsRoom(t, r)
	setPusher(t, r, alice, "key", rec.url(), map[string]any{"format": "event_id_only"})
	var lat, sendTimes []time.Duration
	for i := 0; i < 100; i++ {
		start := time.Now()
		resp := testrig.SendText(t, bob, room, "ping")
		sendTimes = append(sendTimes, time.Since(start))
		x := rec.next(t, 1)[0]
		if x.note.EventID != resp.String() {
			t.Fatalf("push for %s, want %s", x.note.EventID, resp)
		}
		if x.note.Type != "" || x.note.Content != nil || x.note.Counts["unread"] == nil {
			t.Fatalf("event_id_only payload: %s", x.raw)
		}
		lat = append(lat, x.at.Sub(start))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	sort.Slice(sendTimes, func(i, j int) bool { return sendTimes[i] < sendTimes[j] })
	t.Logf("send -> gateway over 100 sends: median %v, p90 %v, max %v (send request itself: median %v)",
		lat[50], lat[90], lat[99], sendTimes[50])
	if lat[50] > time.Second {
		t.Errorf("median send -> gateway %v", lat[50])
	}
}

func TestPusherValidation(t *testing.T) {
	r := testrig.Start(t) // defaults: https only, public addresses only
	alice := r.CreateUser("alice")
	base := func() map[string]any {
		return map[string]any{"kind": "http", "app_id": "a", "pushkey": "k", "app_display_name": "A",
			"device_display_name": "D", "lang": "en", "data": map[string]any{"url": "https://push.example.org/_matrix/push/v1/notify"}}
	}
	for _, tc := range []struct {
		name   string
		change func(m map[string]any)
		status int
		code   string
	}{
		{"valid", func(map[string]any) {}, 200, ""},
		{"no kind", func(m map[string]any) { delete(m, "kind") }, 400, "M_MISSING_PARAM"},
		{"no lang", func(m map[string]any) { delete(m, "lang") }, 400, "M_MISSING_PARAM"},
		{"no url", func(m map[string]any) { m["data"] = map[string]any{} }, 400, "M_MISSING_PARAM"},
		{"wrong path", func(m map[string]any) { m["data"] = map[string]any{"url": "https://push.example.org/notify"} }, 400, "M_INVALID_PARAM"},
		{"plain http", func(m map[string]any) {
			m["data"] = map[string]any{"url": "http://push.example.org/_matrix/push/v1/notify"}
		}, 400, "M_INVALID_PARAM"},
		{"loopback", func(m map[string]any) { m["data"] = map[string]any{"url": "https://127.0.0.1/_matrix/push/v1/notify"} }, 400, "M_INVALID_PARAM"},
		{"private", func(m map[string]any) { m["data"] = map[string]any{"url": "https://10.1.2.3/_matrix/push/v1/notify"} }, 400, "M_INVALID_PARAM"},
		{"localhost", func(m map[string]any) { m["data"] = map[string]any{"url": "https://localhost/_matrix/push/v1/notify"} }, 400, "M_INVALID_PARAM"},
		{"NAT64 of loopback", func(m map[string]any) {
			m["data"] = map[string]any{"url": "https://[64:ff9b::7f00:1]/_matrix/push/v1/notify"}
		}, 400, "M_INVALID_PARAM"},
		{"NAT64 of metadata", func(m map[string]any) {
			m["data"] = map[string]any{"url": "https://[64:ff9b::a9fe:a9fe]/_matrix/push/v1/notify"}
		}, 400, "M_INVALID_PARAM"},
		{"local NAT64", func(m map[string]any) {
			m["data"] = map[string]any{"url": "https://[64:ff9b:1::a00:1]/_matrix/push/v1/notify"}
		}, 400, "M_INVALID_PARAM"},
		{"6to4 of private", func(m map[string]any) {
			m["data"] = map[string]any{"url": "https://[2002:a00:1::1]/_matrix/push/v1/notify"}
		}, 400, "M_INVALID_PARAM"},
		{"Teredo of loopback", func(m map[string]any) {
			m["data"] = map[string]any{"url": "https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/_matrix/push/v1/notify"}
		}, 400, "M_INVALID_PARAM"},
		{"IPv4-compatible", func(m map[string]any) {
			m["data"] = map[string]any{"url": "https://[::10.1.2.3]/_matrix/push/v1/notify"}
		}, 400, "M_INVALID_PARAM"},
		{"benchmarking", func(m map[string]any) { m["data"] = map[string]any{"url": "https://198.18.0.1/_matrix/push/v1/notify"} }, 400, "M_INVALID_PARAM"},
		{"this network", func(m map[string]any) { m["data"] = map[string]any{"url": "https://0.0.0.0/_matrix/push/v1/notify"} }, 400, "M_INVALID_PARAM"},
		{"site-local", func(m map[string]any) { m["data"] = map[string]any{"url": "https://[fec0::1]/_matrix/push/v1/notify"} }, 400, "M_INVALID_PARAM"},
		{"bad format", func(m map[string]any) {
			m["data"] = map[string]any{"url": "https://push.example.org/_matrix/push/v1/notify", "format": "full"}
		}, 400, "M_INVALID_PARAM"},
		{"email", func(m map[string]any) { m["kind"] = "email" }, 400, "M_INVALID_PARAM"},
		{"long app id", func(m map[string]any) { m["app_id"] = strings.Repeat("a", 65) }, 400, "M_INVALID_PARAM"},
	} {
		m := base()
		tc.change(m)
		status, body := apiCall(t, r, alice, v3, http.MethodPost, "/pushers/set", m)
		if tc.status == 200 {
			if status != 200 {
				t.Errorf("%s: %d %v", tc.name, status, body)
			}
			continue
		}
		if status != tc.status || body["errcode"] != tc.code {
			t.Errorf("%s: %d %v, want %d %s", tc.name, status, body, tc.status, tc.code)
		}
	}
	status, body := apiCall(t, r, alice, v3, http.MethodGet, "/pushers", nil)
	ps, _ := body["pushers"].([]any)
	if status != 200 || len(ps) != 1 {
		t.Fatalf("pushers: %d %v", status, body)
	}
	p := ps[0].(map[string]any)
	if p["app_id"] != "a" || p["pushkey"] != "k" || p["lang"] != "en" || p["data"].(map[string]any)["url"] == nil {
		t.Errorf("pusher: %v", p)
	}
	// Another user taking the same app_id + pushkey replaces it unless append.
	bob := r.CreateUser("bob")
	if status, body := apiCall(t, r, bob, v3, http.MethodPost, "/pushers/set", base()); status != 200 {
		t.Fatalf("bob: %d %v", status, body)
	}
	_, body = apiCall(t, r, alice, v3, http.MethodGet, "/pushers", nil)
	if ps, _ := body["pushers"].([]any); len(ps) != 0 {
		t.Errorf("alice's pusher survived bob's non-append set: %v", body)
	}
	// kind null deletes.
	del := map[string]any{"kind": nil, "app_id": "a", "pushkey": "k"}
	if status, body := apiCall(t, r, bob, v3, http.MethodPost, "/pushers/set", del); status != 200 {
		t.Fatalf("delete: %d %v", status, body)
	}
	_, body = apiCall(t, r, bob, v3, http.MethodGet, "/pushers", nil)
	if ps, _ := body["pushers"].([]any); len(ps) != 0 {
		t.Errorf("pusher not deleted: %v", body)
	}
}

// TestPushOverHTTPS delivers to an https gateway verified with a test CA,
// the spec's default, with plain http refused.
func TestPushOverHTTPS(t *testing.T) {
	got := make(chan []byte, 10)
	gw := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- b
		w.Write([]byte(`{"rejected":[]}`))
	}))
	defer gw.Close()
	r := testrig.Start(t, func(c *config.Config) { c.Push.AllowPrivateAddresses = true })
	pool := x509.NewCertPool()
	pool.AddCert(gw.Certificate())
	r.Server.Push.SetRootCAs(pool)
	alice := r.CreateUser("alice")
	bob := r.CreateUser("bob")
	room := testrig.CreateRoom(t, bob, &mautrix.ReqCreateRoom{Preset: "public_chat", Invite: []id.UserID{alice.UserID}})
	testrig.Join(t, room, alice)
	status, body := apiCall(t, r, alice, v3, http.MethodPost, "/pushers/set", map[string]any{
		"kind": "http", "app_id": "a", "pushkey": "k", "app_display_name": "A", "device_display_name": "D", "lang": "en",
		"data": map[string]any{"url": "http://" + gw.Listener.Addr().String() + "/_matrix/push/v1/notify"},
	})
	wantAPIError(t, status, body, 400, "M_INVALID_PARAM")
	setPusher(t, r, alice, "k", gw.URL+"/_matrix/push/v1/notify", nil)
	msg := testrig.SendText(t, bob, room, "over tls")
	// The invite can reach the new pusher first when the push worker is
	// still behind the stream (a loaded machine): wait for the message.
	deadline := time.After(10 * time.Second)
	for {
		select {
		case b := <-got:
			if !strings.Contains(string(b), msg.String()) {
				continue
			}
			if !strings.Contains(string(b), `"sound":"default"`) {
				t.Errorf("payload: %s", b)
			}
			return
		case <-deadline:
			t.Fatal("no push over https")
		}
	}
}

// TestPusherGoesWithDevice: logging a device out removes the pushers it set.
func TestPusherGoesWithDevice(t *testing.T) {
	rec := newRecorder(t)
	r := testrig.Start(t, pushOptions)
	phone := r.CreateUserDevice("alice", "PHONE", true)
	tablet := r.CreateUserDevice("alice", "TABLET", false)
	setPusher(t, r, phone, "key-phone", rec.url(), nil)
	setPusher(t, r, tablet, "key-tablet", rec.url(), nil)
	if status, body := apiCall(t, r, tablet, v3, http.MethodPost, "/logout", map[string]any{}); status != 200 {
		t.Fatalf("logout: %d %v", status, body)
	}
	_, body := apiCall(t, r, phone, v3, http.MethodGet, "/pushers", nil)
	ps, _ := body["pushers"].([]any)
	if len(ps) != 1 || ps[0].(map[string]any)["pushkey"] != "key-phone" {
		t.Errorf("pushers after the tablet logged out: %v", body)
	}
}

// TestHungGatewayDelaysOnlyItself: a gateway that never answers does not
// hold up another user's pushes.
func TestHungGatewayDelaysOnlyItself(t *testing.T) {
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hung.Close()
	defer close(release)
	rec := newRecorder(t)
	r := testrig.Start(t, pushOptions)
	alice := r.CreateUser("alice")
	carol := r.CreateUser("carol")
	bob := r.CreateUser("bob")
	room := testrig.PublicRoom(t, bob, alice, carol)
	setPusher(t, r, carol, "carol-key", hung.URL+"/_matrix/push/v1/notify", nil)
	setPusher(t, r, alice, "alice-key", rec.url(), nil)
	for i := 0; i < 3; i++ {
		start := time.Now()
		resp := testrig.SendText(t, bob, room, "hello")
		x := rec.next(t, 1)[0]
		if x.note.EventID != resp.String() {
			t.Fatalf("push for %s", x.raw)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("alice's push took %v behind carol's hung gateway", d)
		}
	}
}

// TestPushFanout200 has 200 users with a pusher each in one room: every
// message is a push to each of them, and sending stays as fast as without.
func TestPushFanout200(t *testing.T) {
	if testing.Short() {
		t.Skip("fan-out measurement")
	}
	rec := newRecorder(t)
	r := testrig.Start(t, pushOptions)
	bob := r.CreateUser("bob")
	room := testrig.CreateRoom(t, bob, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	const n = 200
	for i := 0; i < n; i++ {
		c := r.CreateUser(fmt.Sprint("u", i))
		testrig.Join(t, room, c)
		setPusher(t, r, c, fmt.Sprint("key", i), rec.url(), map[string]any{"format": "event_id_only"})
	}
	var sends, all []time.Duration
	for m := 0; m < 5; m++ {
		start := time.Now()
		resp := testrig.SendText(t, bob, room, "hello everyone")
		sends = append(sends, time.Since(start))
		for _, x := range rec.next(t, n) {
			if x.note.EventID != resp.String() {
				t.Fatalf("push for another event: %s", x.raw)
			}
		}
		all = append(all, time.Since(start))
	}
	sort.Slice(sends, func(i, j int) bool { return sends[i] < sends[j] })
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	t.Logf("%d pushers: send median %v; all %d notifies received, median %v after the send", n, sends[2], n, all[2])
}

// TestPushWorkerReadsOnlyWhatConcernsPushers: the delivery worker, woken by
// every event, skips the streams while nobody has a pusher, and once
// someone has one evaluates only the events of rooms they are in; pushes
// for those still arrive, and only those.
func TestPushWorkerReadsOnlyWhatConcernsPushers(t *testing.T) {
	rec := newRecorder(t)
	r := testrig.Start(t, pushOptions)
	alice, bob, carol := r.CreateUser("alice"), r.CreateUser("bob"), r.CreateUser("carol")
	roomA := testrig.CreateRoom(t, bob, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	roomB := testrig.CreateRoom(t, bob, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	testrig.Join(t, roomA, alice)
	testrig.Join(t, roomB, carol)
	for i := 0; i < 20; i++ {
		testrig.SendText(t, bob, roomA, "nobody has a pusher")
	}
	// Wait for the worker to pass every event so far.
	push := r.Server.Push
	end := r.Server.DB.StreamPosition(storage.StreamEvents)
	for deadline := time.Now().Add(5 * time.Second); push.Stats().EventsCursor < end; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("worker at %d, events at %d", push.Stats().EventsCursor, end)
		}
	}
	if st := push.Stats(); st.EventsRead != 0 || st.EventsEvaluated != 0 {
		t.Fatalf("worker read events while no pusher existed: %+v", st)
	}

	// carol (in room B only) gets a pusher: room A's traffic still costs
	// no evaluation and sends nothing; room B's message is pushed.
	setPusher(t, r, carol, "carol", rec.url(), map[string]any{"format": "event_id_only"})
	for i := 0; i < 10; i++ {
		testrig.SendText(t, bob, roomA, "not for carol")
	}
	resp := testrig.SendText(t, bob, roomB, "for carol")
	if x := rec.next(t, 1)[0]; x.note.EventID != resp.String() {
		t.Fatalf("push for %s, want %s", x.note.EventID, resp)
	}
	rec.none(t, 200*time.Millisecond)
	st := push.Stats()
	if st.EventsRead != 11 || st.EventsEvaluated != 1 {
		t.Fatalf("want 11 events read and 1 evaluated, got %+v", st)
	}
	// An invite of carol to a room without pushers is evaluated and pushed
	// (the invite rule notifies its target).
	roomC := testrig.CreateRoom(t, bob, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{carol.UserID}})
	if x := rec.next(t, 1)[0]; x.note.RoomID != roomC.String() {
		t.Fatalf("push for room %s, want the invite to %s", x.note.RoomID, roomC)
	}
}

// TestPusherURLErrorsNameTheSetting: a refused gateway URL says which
// setting would allow it, for the user to pass on to the server's admin.
func TestPusherURLErrorsNameTheSetting(t *testing.T) {
	r := testrig.Start(t)
	alice := r.CreateUser("alice")
	for url, want := range map[string][]string{
		"http://push.example.org/_matrix/push/v1/notify": {"push.allow_http"},
		"https://10.1.2.3/_matrix/push/v1/notify":        {"push.allow_private_addresses", "outbound.allowed_networks"},
	} {
		status, body := apiCall(t, r, alice, v3, http.MethodPost, "/pushers/set", map[string]any{"kind": "http", "app_id": "a",
			"pushkey": "k", "app_display_name": "A", "device_display_name": "D", "lang": "en", "data": map[string]any{"url": url}})
		msg, _ := body["error"].(string)
		for _, w := range want {
			if status != 400 || body["errcode"] != "M_INVALID_PARAM" || !strings.Contains(msg, w) {
				t.Errorf("%s: %d %v, want 400 M_INVALID_PARAM naming %s", url, status, body, w)
			}
		}
	}
}
