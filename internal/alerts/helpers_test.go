package alerts

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/testrig"
)

// proxy stands between the client and the rig on a fixed port, so a test
// can take "the server" down (connection refused) and bring it back, or
// drop the response of a send after the server handled it.
type proxy struct {
	t        *testing.T
	addr     string
	target   *url.URL
	mu       sync.Mutex
	srv      *http.Server
	dropSend atomic.Int32 // drop this many send responses after forwarding
}

func newProxy(t *testing.T, target string) *proxy {
	u, _ := url.Parse(target)
	p := &proxy{t: t, target: u}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.down)
	return p
}

func (p *proxy) URL() string { return "http://" + p.addr }

func (p *proxy) serve(ln net.Listener) {
	rp := httputil.NewSingleHostReverseProxy(p.target)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/send/") && p.dropSend.Load() > 0 {
			p.dropSend.Add(-1)
			rec := &discardWriter{h: http.Header{}}
			rp.ServeHTTP(rec, r)
			hj, ok := w.(http.Hijacker)
			if !ok {
				panic("no hijacker")
			}
			c, _, _ := hj.Hijack()
			c.Close()
			return
		}
		rp.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: h}
	p.mu.Lock()
	p.srv = srv
	p.mu.Unlock()
	go srv.Serve(ln)
}

func (p *proxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv != nil {
		p.srv.Close()
		p.srv = nil
	}
}

func (p *proxy) up() {
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatal(err)
	}
	p.serve(ln)
}

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// world is a rig with a human (alice) and a bot account (pusher) and a
// room alice created and invited the bot to.
type world struct {
	r      *testrig.Rig
	alice  *mautrix.Client
	roomID id.RoomID
	cfg    *Config
}

func newWorld(t *testing.T, encrypted bool) *world {
	t.Helper()
	r := testrig.Start(t)
	ctx := context.Background()
	alice := r.CreateUser("alice")
	r.CreateUser("pusher") // password "password-pusher"
	req := &mautrix.ReqCreateRoom{Preset: "private_chat", Name: "PushNotifications", Invite: []id.UserID{r.UserID("pusher")}}
	if encrypted {
		req.InitialState = []*event.Event{testrig.Encrypted()}
	}
	roomID := testrig.CreateRoom(t, alice, req)
	cfg := &Config{Homeserver: r.URL, User: "pusher", Room: roomID.String(), StateDir: t.TempDir(),
		Hostname: "web1", DeviceName: "axon notify test", RetryFor: 300 * time.Millisecond}
	if _, _, err := Login(ctx, cfg, "password-pusher"); err != nil {
		t.Fatalf("login: %v", err)
	}
	return &world{r: r, alice: alice, roomID: roomID, cfg: cfg}
}

// botMessages returns the bodies of the bot's messages in the room, oldest first.
func (w *world) botMessages(t *testing.T, c *mautrix.Client) []*event.Event {
	t.Helper()
	msgs, err := c.Messages(context.Background(), w.roomID, "", "", mautrix.DirectionBackward, nil, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []*event.Event
	for i := len(msgs.Chunk) - 1; i >= 0; i-- {
		ev := msgs.Chunk[i]
		if ev.Sender == w.r.UserID("pusher") && (ev.Type == event.EventMessage || ev.Type == event.EventEncrypted) {
			_ = ev.Content.ParseRaw(ev.Type)
			out = append(out, ev)
		}
	}
	return out
}

func readAll(r io.Reader) string { b, _ := io.ReadAll(r); return string(b) }
