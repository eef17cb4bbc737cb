package account

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/axon-matrix/axon/internal/auth"
	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/rooms"
	"github.com/axon-matrix/axon/internal/storage"
)

const server = "acc.test"

// cheap keeps hashing fast; never use it outside tests.
var cheap = auth.Hasher{Memory: 64, Time: 1, Threads: 1}

type fixture struct {
	t     *testing.T
	s     *Service
	db    *storage.DB
	rooms *rooms.Service
	cfg   *config.Config
}

func newFixture(t *testing.T, mode string) *fixture {
	t.Helper()
	db, err := storage.Open(context.Background(), filepath.Join(t.TempDir(), "axon.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := config.Default()
	cfg.ServerName = server
	cfg.Registration = mode
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := New(db, cfg, log)
	s.SetHasher(cheap)
	_, priv, _ := ed25519.GenerateKey(nil)
	rs := rooms.New(db, server, "ed25519:test", priv, log)
	return &fixture{t: t, s: s, db: db, rooms: rs, cfg: cfg}
}

func uid(localpart string) string { return "@" + localpart + ":" + server }

// user creates an account with password "password-<localpart>".
func (f *fixture) user(localpart string) string {
	f.t.Helper()
	id, err := f.s.CreateAccount(context.Background(), NewAccount{Localpart: localpart, Password: "password-" + localpart})
	if err != nil {
		f.t.Fatalf("create %s: %v", localpart, err)
	}
	return id
}

func (f *fixture) login(localpart, deviceID string) *Session {
	f.t.Helper()
	pw := "password-" + localpart
	s, err := f.s.Login(context.Background(), LoginRequest{Type: LoginTypePassword, Identifier: &Identifier{Type: "m.id.user", User: localpart}, Password: &pw, DeviceID: deviceID})
	if err != nil {
		f.t.Fatalf("login %s: %v", localpart, err)
	}
	return s
}

func (f *fixture) tokenWorks(token string) bool {
	f.t.Helper()
	_, err := f.s.Authenticate(context.Background(), token)
	if err == nil {
		return true
	}
	wantCode(f.t, err, "M_UNKNOWN_TOKEN")
	return false
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	e, ok := mxerr.As(err)
	if !ok || e.Code != code {
		t.Fatalf("want %s, got %v", code, err)
	}
}

func wantStatus(t *testing.T, err error, code string, status int) {
	t.Helper()
	wantCode(t, err, code)
	e, _ := mxerr.As(err)
	if got := mxerr.StatusOf(e); got != status {
		t.Fatalf("%s: status %d, want %d", code, got, status)
	}
}

// wantChallenge asserts a 401 user-interactive auth answer.
func wantChallenge(t *testing.T, err error, errcode string) *AuthRequired {
	t.Helper()
	var ar *AuthRequired
	if !errors.As(err, &ar) {
		t.Fatalf("want a user-interactive auth challenge, got %v", err)
	}
	if ar.Session == "" || len(ar.Flows) == 0 {
		t.Fatalf("challenge without session or flows: %+v", ar)
	}
	switch {
	case errcode == "" && ar.Err != nil:
		t.Fatalf("challenge carries error %v", ar.Err)
	case errcode != "" && (ar.Err == nil || ar.Err.Code != errcode):
		t.Fatalf("challenge error = %v, want %s", ar.Err, errcode)
	}
	body := ar.Body()
	if _, has := body["errcode"]; has != (errcode != "") {
		t.Fatalf("body errcode presence wrong: %v", body)
	}
	for _, k := range []string{"flows", "params", "session", "completed"} {
		if _, ok := body[k]; !ok {
			t.Fatalf("challenge body lacks %q: %v", k, body)
		}
	}
	return ar
}

func ptr[T any](v T) *T { return &v }

// jstr is s as a JSON value, as PUT /profile passes it.
func jstr(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

func TestLocalpartGrammar(t *testing.T) {
	f := newFixture(t, config.RegistrationOpen)
	for _, ok := range []string{"alice", "a", "a.b_c=d-e/f+g", "0123"} {
		if _, err := f.s.CheckLocalpart(ok); err != nil {
			t.Errorf("%q rejected: %v", ok, err)
		}
	}
	long := make([]byte, maxUserIDLen-len(":"+server))
	for i := range long {
		long[i] = 'a'
	}
	for _, bad := range []string{"", "Alice", "al ice", "al:ice", "al@ice", "ålice", "a#b", string(long)} {
		_, err := f.s.CheckLocalpart(bad)
		wantStatus(t, err, "M_INVALID_USERNAME", 400)
	}
	if _, err := f.s.CheckLocalpart(string(long[1:])); err != nil {
		t.Errorf("a user ID of exactly 255 bytes was rejected: %v", err)
	}
	for in, want := range map[string]string{"alice": uid("alice"), "Alice": uid("alice"), "@alice:" + server: uid("alice"), "@Bob:" + server: uid("bob")} {
		if got, ok := f.s.ResolveUser(in); !ok || got != want {
			t.Errorf("ResolveUser(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "@alice:other.test", "@alice", "a:b"} {
		if got, ok := f.s.ResolveUser(in); ok {
			t.Errorf("ResolveUser(%q) = %q, want failure", in, got)
		}
	}
}

func TestLogin(t *testing.T) {
	f := newFixture(t, config.RegistrationDisabled)
	ctx := context.Background()
	alice := f.user("alice")
	pw := "password-alice"
	for name, req := range map[string]LoginRequest{
		"localpart":   {Identifier: &Identifier{Type: "m.id.user", User: "alice"}},
		"full ID":     {Identifier: &Identifier{Type: "m.id.user", User: alice}},
		"upper case":  {Identifier: &Identifier{Type: "m.id.user", User: "ALICE"}},
		"legacy user": {User: "alice"},
	} {
		req.Type, req.Password = LoginTypePassword, &pw
		s, err := f.s.Login(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if s.UserID != alice || len(s.DeviceID) != 10 || !f.tokenWorks(s.AccessToken) {
			t.Fatalf("%s: bad session %+v", name, s)
		}
	}

	wrong := "nope"
	for name, tc := range map[string]struct {
		req    LoginRequest
		code   string
		status int
	}{
		"wrong password":   {LoginRequest{Identifier: &Identifier{Type: "m.id.user", User: "alice"}, Password: &wrong}, "M_FORBIDDEN", 403},
		"unknown user":     {LoginRequest{Identifier: &Identifier{Type: "m.id.user", User: "mallory"}, Password: &pw}, "M_FORBIDDEN", 403},
		"other server":     {LoginRequest{Identifier: &Identifier{Type: "m.id.user", User: "@alice:other.test"}, Password: &pw}, "M_FORBIDDEN", 403},
		"third party":      {LoginRequest{Identifier: &Identifier{Type: "m.id.thirdparty", Medium: "email", Address: "a@b.c"}, Password: &pw}, "M_FORBIDDEN", 403},
		"legacy 3pid":      {LoginRequest{Medium: "email", Address: "a@b.c", Password: &pw}, "M_FORBIDDEN", 403},
		"bad id type":      {LoginRequest{Identifier: &Identifier{Type: "m.id.nonsense"}, Password: &pw}, "M_UNKNOWN", 400},
		"no identifier":    {LoginRequest{Password: &pw}, "M_INVALID_PARAM", 400},
		"no password":      {LoginRequest{User: "alice"}, "M_MISSING_PARAM", 400},
		"bad login type":   {LoginRequest{Type: "m.login.sso", User: "alice"}, "M_UNKNOWN", 400},
		"no login token":   {LoginRequest{Type: LoginTypeToken, User: "alice"}, "M_MISSING_PARAM", 400},
		"bad login token":  {LoginRequest{Type: LoginTypeToken, Token: "nope"}, "M_FORBIDDEN", 403},
		"control device":   {LoginRequest{User: "alice", Password: &pw, DeviceID: "a\nb"}, "M_INVALID_PARAM", 400},
		"empty identifier": {LoginRequest{Identifier: &Identifier{Type: "m.id.user"}, Password: &pw}, "M_MISSING_PARAM", 400},
	} {
		if tc.req.Type == "" {
			tc.req.Type = LoginTypePassword
		}
		_, err := f.s.Login(ctx, tc.req)
		if e, ok := mxerr.As(err); !ok || e.Code != tc.code || mxerr.StatusOf(e) != tc.status {
			t.Errorf("%s: got %v, want %d %s", name, err, tc.status, tc.code)
		}
	}
}

func TestLoginDeviceReuse(t *testing.T) {
	f := newFixture(t, config.RegistrationDisabled)
	ctx := context.Background()
	alice := f.user("alice")
	pw := "password-alice"
	first, err := f.s.Login(ctx, LoginRequest{Type: LoginTypePassword, User: "alice", Password: &pw, DeviceID: "PHONE", DeviceDisplayName: "My phone"})
	if err != nil {
		t.Fatal(err)
	}
	second, err := f.s.Login(ctx, LoginRequest{Type: LoginTypePassword, User: "alice", Password: &pw, DeviceID: "PHONE", DeviceDisplayName: "Renamed?"})
	if err != nil {
		t.Fatal(err)
	}
	if second.DeviceID != "PHONE" || first.AccessToken == second.AccessToken {
		t.Fatalf("sessions: %+v %+v", first, second)
	}
	if f.tokenWorks(first.AccessToken) {
		t.Error("the old token of a reused device still works")
	}
	if !f.tokenWorks(second.AccessToken) {
		t.Error("the new token does not work")
	}
	ds, _ := f.s.Devices(ctx, alice)
	if len(ds) != 1 || ds[0].DisplayName != "My phone" {
		t.Fatalf("devices after reuse: %+v", ds)
	}
}

func TestLoginDeactivated(t *testing.T) {
	f := newFixture(t, config.RegistrationDisabled)
	ctx := context.Background()
	bob := f.user("bob")
	s := f.login("bob", "")
	if err := f.s.DeactivateAccount(ctx, nil, bob); err != nil {
		t.Fatal(err)
	}
	if f.tokenWorks(s.AccessToken) {
		t.Error("token of a deactivated account still works")
	}
	pw := "password-bob"
	_, err := f.s.Login(ctx, LoginRequest{Type: LoginTypePassword, User: "bob", Password: &pw})
	wantStatus(t, err, "M_USER_DEACTIVATED", 403)
}

func TestLogout(t *testing.T) {
	f := newFixture(t, config.RegistrationDisabled)
	ctx := context.Background()
	alice := f.user("alice")
	a, b, c := f.login("alice", "A"), f.login("alice", "B"), f.login("alice", "C")
	if err := f.s.Logout(ctx, alice, "A"); err != nil {
		t.Fatal(err)
	}
	if f.tokenWorks(a.AccessToken) || !f.tokenWorks(b.AccessToken) {
		t.Fatal("logout removed the wrong sessions")
	}
	if err := f.s.LogoutAll(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if f.tokenWorks(b.AccessToken) || f.tokenWorks(c.AccessToken) {
		t.Fatal("logout/all left a session")
	}
	if ds, _ := f.s.Devices(ctx, alice); len(ds) != 0 {
		t.Fatalf("devices left: %+v", ds)
	}
}

func TestRegisterOpen(t *testing.T) {
	f := newFixture(t, config.RegistrationOpen)
	ctx := context.Background()
	req := RegisterRequest{Username: "Alice", Password: "secret-password", DeviceDisplayName: "laptop"}
	_, err := f.s.Register(ctx, req)
	ar := wantChallenge(t, err, "")
	if !slices.Equal(ar.Flows[0].Stages, []string{StageDummy}) || len(ar.Flows) != 1 {
		t.Fatalf("flows: %+v", ar.Flows)
	}
	req.Auth = &AuthDict{Type: StageDummy, Session: ar.Session}
	reg, err := f.s.Register(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if reg.UserID != uid("alice") || reg.Session == nil || !f.tokenWorks(reg.Session.AccessToken) {
		t.Fatalf("registration: %+v", reg)
	}
	p, _ := f.s.GetProfile(ctx, reg.UserID)
	if p.DisplayName != "alice" {
		t.Errorf("default display name %q, want the localpart", p.DisplayName)
	}
	f.login2("alice", "secret-password", "")

	// The session is spent.
	_, err = f.s.Register(ctx, RegisterRequest{Username: "other", Auth: &AuthDict{Type: StageDummy, Session: ar.Session}})
	wantStatus(t, err, "M_UNKNOWN", 400)

	// Name problems come before authentication.
	_, err = f.s.Register(ctx, RegisterRequest{Username: "alice"})
	wantStatus(t, err, "M_USER_IN_USE", 400)
	_, err = f.s.Register(ctx, RegisterRequest{Username: "al ice"})
	wantStatus(t, err, "M_INVALID_USERNAME", 400)
	_, err = f.s.Register(ctx, RegisterRequest{Kind: "guest"})
	wantStatus(t, err, "M_GUEST_ACCESS_FORBIDDEN", 403)

	// A client that knows the flow may skip the first round trip only
	// with auth data; no username means a generated one; inhibit_login
	// means no device.
	reg, err = f.s.Register(ctx, RegisterRequest{InhibitLogin: true, Auth: &AuthDict{Type: StageDummy}})
	if err != nil {
		t.Fatal(err)
	}
	if reg.Session != nil || !f.s.IsLocal(reg.UserID) {
		t.Fatalf("inhibited registration: %+v", reg)
	}
	if ds, _ := f.s.Devices(ctx, reg.UserID); len(ds) != 0 {
		t.Fatalf("inhibit_login created devices: %+v", ds)
	}
}

func TestRegisterPassword(t *testing.T) {
	f := newFixture(t, config.RegistrationOpen)
	ctx := context.Background()
	_, err := f.s.Register(ctx, RegisterRequest{Username: "carol", Password: "password-carol", DeviceID: "MINE", Auth: &AuthDict{Type: StageDummy}})
	if err != nil {
		t.Fatal(err)
	}
	if s := f.login("carol", ""); s.UserID != uid("carol") {
		t.Fatal(s)
	}
	if _, err := f.s.Device(ctx, uid("carol"), "MINE"); err != nil {
		t.Fatalf("requested device_id not used: %v", err)
	}
}

func TestRegisterDisabled(t *testing.T) {
	f := newFixture(t, config.RegistrationDisabled)
	ctx := context.Background()
	_, err := f.s.Register(ctx, RegisterRequest{Username: "alice", Auth: &AuthDict{Type: StageDummy}})
	wantStatus(t, err, "M_FORBIDDEN", 403)
	// Availability still answers.
	if err := f.s.UsernameAvailable(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	f.user("alice")
	wantStatus(t, f.s.UsernameAvailable(ctx, "alice"), "M_USER_IN_USE", 400)
	wantStatus(t, f.s.UsernameAvailable(ctx, "ALICE"), "M_USER_IN_USE", 400)
	wantStatus(t, f.s.UsernameAvailable(ctx, "a lice"), "M_INVALID_USERNAME", 400)
	_, err = f.s.RegistrationTokenValid(ctx, "x")
	wantStatus(t, err, "M_FORBIDDEN", 403)
}

func TestRegisterWithToken(t *testing.T) {
	f := newFixture(t, config.RegistrationToken)
	ctx := context.Background()
	tok, err := f.s.NewRegistrationToken(ctx, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := f.s.RegistrationTokenValid(ctx, tok.Token); !ok || err != nil {
		t.Fatalf("fresh token: %v %v", ok, err)
	}
	if ok, _ := f.s.RegistrationTokenValid(ctx, "nonsense"); ok {
		t.Fatal("unknown token valid")
	}

	_, err = f.s.Register(ctx, RegisterRequest{Username: "alice"})
	ar := wantChallenge(t, err, "")
	if !slices.Equal(ar.Flows[0].Stages, []string{StageRegistrationToken}) {
		t.Fatalf("flows: %+v", ar.Flows)
	}
	// Dummy is not offered in token mode.
	_, err = f.s.Register(ctx, RegisterRequest{Username: "alice", Auth: &AuthDict{Type: StageDummy, Session: ar.Session}})
	wantChallenge(t, err, "M_UNRECOGNIZED")
	_, err = f.s.Register(ctx, RegisterRequest{Username: "alice", Auth: &AuthDict{Type: StageRegistrationToken, Token: "wrong", Session: ar.Session}})
	wantChallenge(t, err, "M_UNAUTHORIZED")
	reg, err := f.s.Register(ctx, RegisterRequest{Username: "alice", Auth: &AuthDict{Type: StageRegistrationToken, Token: tok.Token, Session: ar.Session}})
	if err != nil {
		t.Fatal(err)
	}
	if reg.UserID != uid("alice") {
		t.Fatal(reg)
	}
	// The only use is spent.
	if ok, _ := f.s.RegistrationTokenValid(ctx, tok.Token); ok {
		t.Fatal("token still valid after its last use")
	}
	_, err = f.s.Register(ctx, RegisterRequest{Username: "bob", Auth: &AuthDict{Type: StageRegistrationToken, Token: tok.Token}})
	wantChallenge(t, err, "M_UNAUTHORIZED")
	ts, _ := f.s.RegistrationTokens(ctx)
	if len(ts) != 1 || ts[0].Completed != 1 || f.s.TokenState(ts[0]) != "used up" {
		t.Fatalf("tokens: %+v", ts)
	}
}

// Two clients pass the token stage while one use is left: only one gets
// the account, the other is asked for a token again.
func TestRegisterTokenRace(t *testing.T) {
	f := newFixture(t, config.RegistrationToken)
	ctx := context.Background()
	tok, _ := f.s.NewRegistrationToken(ctx, 1, 0)
	var sessions []string
	for _, name := range []string{"alice", "bob"} {
		_, err := f.s.Register(ctx, RegisterRequest{Username: name})
		ar := wantChallenge(t, err, "")
		// Complete the token stage but make the flow need a second look:
		// both sessions validate while the token is still unused.
		sess, _ := f.s.uia.get(ar.Session)
		sess.completed = []string{StageRegistrationToken}
		sess.regToken = tok.Token
		f.s.uia.update(sess)
		sessions = append(sessions, ar.Session)
	}
	if _, err := f.s.Register(ctx, RegisterRequest{Username: "alice", Auth: &AuthDict{Session: sessions[0]}}); err != nil {
		t.Fatal(err)
	}
	_, err := f.s.Register(ctx, RegisterRequest{Username: "bob", Auth: &AuthDict{Session: sessions[1]}})
	ar := wantChallenge(t, err, "M_UNAUTHORIZED")
	if len(ar.Completed) != 0 {
		t.Fatalf("token stage still marked complete: %v", ar.Completed)
	}
	if _, err := f.db.GetUser(ctx, uid("bob")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("bob was created: %v", err)
	}
}

func TestTokenExpiry(t *testing.T) {
	f := newFixture(t, config.RegistrationToken)
	ctx := context.Background()
	tok, _ := f.s.NewRegistrationToken(ctx, 0, time.Hour)
	if ok, _ := f.s.RegistrationTokenValid(ctx, tok.Token); !ok {
		t.Fatal("unexpired token invalid")
	}
	f.s.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if ok, _ := f.s.RegistrationTokenValid(ctx, tok.Token); ok {
		t.Fatal("expired token valid")
	}
	ts, _ := f.s.RegistrationTokens(ctx)
	if f.s.TokenState(ts[0]) != "expired" {
		t.Fatal(f.s.TokenState(ts[0]))
	}
	f.s.now = time.Now
	if err := f.s.RevokeRegistrationToken(ctx, tok.Token); err != nil {
		t.Fatal(err)
	}
	if ok, _ := f.s.RegistrationTokenValid(ctx, tok.Token); ok {
		t.Fatal("revoked token valid")
	}
	wantCode(t, f.s.RevokeRegistrationToken(ctx, "nope"), "M_NOT_FOUND")
}

func TestUIASessionRules(t *testing.T) {
	f := newFixture(t, config.RegistrationOpen)
	ctx := context.Background()
	alice := f.user("alice")
	s := f.login("alice", "KEEP")
	f.login("alice", "OTHER")

	// An unknown session is a plain 400.
	err := f.s.DeleteDevices(ctx, alice, []string{"OTHER"}, &AuthDict{Type: StagePassword, Session: "bogus"})
	wantStatus(t, err, "M_UNKNOWN", 400)

	// A session opened for one operation cannot authorise another.
	_, err = f.s.Register(ctx, RegisterRequest{Username: "zed"})
	reg := wantChallenge(t, err, "")
	err = f.s.DeleteDevices(ctx, alice, []string{"OTHER"}, &AuthDict{Type: StagePassword, Session: reg.Session,
		Identifier: &Identifier{Type: "m.id.user", User: "alice"}, Password: "password-alice"})
	wantStatus(t, err, "M_FORBIDDEN", 403)

	// A wrong password keeps the session, with the error in the 401.
	err = f.s.DeleteDevices(ctx, alice, []string{"OTHER"}, nil)
	ch := wantChallenge(t, err, "")
	if !slices.Equal(ch.Flows[0].Stages, []string{StagePassword}) {
		t.Fatalf("flows: %+v", ch.Flows)
	}
	err = f.s.DeleteDevices(ctx, alice, []string{"OTHER"}, &AuthDict{Type: StagePassword, Session: ch.Session,
		Identifier: &Identifier{Type: "m.id.user", User: "alice"}, Password: "wrong"})
	wantChallenge(t, err, "M_FORBIDDEN")
	// Another user's credentials do not authorise alice's request, and
	// no retry would mend that: a plain 403, not a challenge.
	f.user("bob")
	err = f.s.DeleteDevices(ctx, alice, []string{"OTHER"}, &AuthDict{Type: StagePassword, Session: ch.Session,
		Identifier: &Identifier{Type: "m.id.user", User: "bob"}, Password: "password-bob"})
	wantStatus(t, err, "M_FORBIDDEN", 403)
	// Nor may bob use alice's session.
	err = f.s.DeleteDevices(ctx, uid("bob"), nil, &AuthDict{Type: StagePassword, Session: ch.Session,
		Identifier: &Identifier{Type: "m.id.user", User: "bob"}, Password: "password-bob"})
	wantStatus(t, err, "M_FORBIDDEN", 403)

	err = f.s.DeleteDevices(ctx, alice, []string{"OTHER", "NOT-A-DEVICE"}, &AuthDict{Type: StagePassword, Session: ch.Session,
		User: "alice", Password: "password-alice"})
	if err != nil {
		t.Fatal(err)
	}
	ds, _ := f.s.Devices(ctx, alice)
	if len(ds) != 1 || ds[0].DeviceID != "KEEP" || !f.tokenWorks(s.AccessToken) {
		t.Fatalf("devices: %+v", ds)
	}
}

// Completed stages cannot be retried: a finished session that is
// replayed before the operation succeeded performs it.
func TestUIACompletedSessionProceeds(t *testing.T) {
	f := newFixture(t, config.RegistrationOpen)
	ctx := context.Background()
	f.user("taken")
	_, err := f.s.Register(ctx, RegisterRequest{})
	ar := wantChallenge(t, err, "")
	sess, _ := f.s.uia.get(ar.Session)
	sess.completed = []string{StageDummy}
	f.s.uia.update(sess)
	reg, err := f.s.Register(ctx, RegisterRequest{Username: "fresh", Auth: &AuthDict{Type: "m.login.whatever", Session: ar.Session}})
	if err != nil {
		t.Fatal(err)
	}
	if reg.UserID != uid("fresh") {
		t.Fatal(reg)
	}
}

func TestUIASessionsExpire(t *testing.T) {
	now := time.Now()
	st := newUIAStore(func() time.Time { return now })
	s := st.create("op", "")
	if _, ok := st.get(s.id); !ok {
		t.Fatal("fresh session missing")
	}
	now = now.Add(uiaTTL + time.Second)
	if _, ok := st.get(s.id); ok {
		t.Fatal("expired session returned")
	}
	for range maxUIASessions + 10 {
		st.create("op", "")
	}
	if n := len(st.sessions); n > maxUIASessions {
		t.Fatalf("%d sessions kept", n)
	}
}

func TestChangePassword(t *testing.T) {
	f := newFixture(t, config.RegistrationDisabled)
	ctx := context.Background()
	alice := f.user("alice")
	cur, other := f.login("alice", "CUR"), f.login("alice", "OTHER")

	auth := &AuthDict{Type: StagePassword, Identifier: &Identifier{Type: "m.id.user", User: "alice"}, Password: "password-alice"}
	err := f.s.ChangePassword(ctx, ChangePasswordRequest{UserID: alice, DeviceID: "CUR", NewPassword: ptr("")})
	wantCode(t, err, "M_WEAK_PASSWORD")
	err = f.s.ChangePassword(ctx, ChangePasswordRequest{UserID: alice, DeviceID: "CUR"})
	wantCode(t, err, "M_MISSING_PARAM")
	err = f.s.ChangePassword(ctx, ChangePasswordRequest{UserID: alice, DeviceID: "CUR", NewPassword: ptr("new-password-1")})
	wantChallenge(t, err, "")
	if err := f.s.ChangePassword(ctx, ChangePasswordRequest{UserID: alice, DeviceID: "CUR", NewPassword: ptr("new-password-1"), Auth: auth}); err != nil {
		t.Fatal(err)
	}
	if !f.tokenWorks(cur.AccessToken) || f.tokenWorks(other.AccessToken) {
		t.Fatal("logout_devices default: want the current session kept and the others ended")
	}
	old := "password-alice"
	_, err = f.s.Login(ctx, LoginRequest{Type: LoginTypePassword, User: "alice", Password: &old})
	wantCode(t, err, "M_FORBIDDEN")

	// logout_devices false keeps everything; no access token works via
	// the password stage alone.
	third := f.login2("alice", "new-password-1", "THIRD")
	auth2 := &AuthDict{Type: StagePassword, User: "alice", Password: "new-password-1"}
	if err := f.s.ChangePassword(ctx, ChangePasswordRequest{NewPassword: ptr("new-password-2"), LogoutDevices: ptr(false), Auth: auth2}); err != nil {
		t.Fatal(err)
	}
	if !f.tokenWorks(cur.AccessToken) || !f.tokenWorks(third.AccessToken) {
		t.Fatal("logout_devices=false ended sessions")
	}
	f.login2("alice", "new-password-2", "")

	// The command-line reset ends every session.
	if err := f.s.ResetPassword(ctx, alice, "new-password-3"); err != nil {
		t.Fatal(err)
	}
	if f.tokenWorks(cur.AccessToken) {
		t.Fatal("reset kept a session")
	}
	f.login2("alice", "new-password-3", "")
	wantCode(t, f.s.ResetPassword(ctx, uid("nobody"), "long-enough"), "M_NOT_FOUND")
	// Shorter than password_min_length: refused, the password unchanged.
	wantStatus(t, f.s.ResetPassword(ctx, alice, "short"), "M_WEAK_PASSWORD", 400)
	f.login2("alice", "new-password-3", "")
}

func (f *fixture) login2(localpart, pw, deviceID string) *Session {
	f.t.Helper()
	s, err := f.s.Login(context.Background(), LoginRequest{Type: LoginTypePassword, User: localpart, Password: &pw, DeviceID: deviceID})
	if err != nil {
		f.t.Fatalf("login %s: %v", localpart, err)
	}
	return s
}

func TestPasswordlessAccountCannotUseUIA(t *testing.T) {
	f := newFixture(t, config.RegistrationOpen)
	ctx := context.Background()
	reg, err := f.s.Register(ctx, RegisterRequest{Username: "nopw", Auth: &AuthDict{Type: StageDummy}})
	if err != nil {
		t.Fatal(err)
	}
	err = f.s.DeleteDevices(ctx, reg.UserID, []string{reg.Session.DeviceID}, nil)
	wantStatus(t, err, "M_FORBIDDEN", 403)
	empty := ""
	_, err = f.s.Login(ctx, LoginRequest{Type: LoginTypePassword, User: "nopw", Password: &empty})
	wantCode(t, err, "M_FORBIDDEN")
}

func TestSharedSecretRegistration(t *testing.T) {
	f := newFixture(t, config.RegistrationDisabled)
	ctx := context.Background()
	_, err := f.s.SharedSecretNonce()
	wantStatus(t, err, "M_UNKNOWN", 400)
	_, err = f.s.SharedSecretRegister(ctx, SharedSecretRequest{})
	wantStatus(t, err, "M_UNKNOWN", 400)

	const secret = "s3cret"
	f.cfg.RegistrationSharedSecret = secret
	req := func(nonce, user, pw string, admin bool, mac string) SharedSecretRequest {
		return SharedSecretRequest{Nonce: &nonce, Username: &user, Password: &pw, Admin: admin, Mac: &mac}
	}
	nonce, err := f.s.SharedSecretNonce()
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.s.SharedSecretRegister(ctx, req(nonce, "root", "root-password", true, auth.RegistrationMAC("wrong", nonce, "root", "root-password", true, "")))
	wantStatus(t, err, "M_FORBIDDEN", 403)
	// The nonce was spent by the failed attempt.
	_, err = f.s.SharedSecretRegister(ctx, req(nonce, "root", "root-password", true, auth.RegistrationMAC(secret, nonce, "root", "root-password", true, "")))
	wantStatus(t, err, "M_UNKNOWN", 400)
	// The admin flag is covered by the MAC.
	nonce, _ = f.s.SharedSecretNonce()
	_, err = f.s.SharedSecretRegister(ctx, req(nonce, "root", "root-password", true, auth.RegistrationMAC(secret, nonce, "root", "root-password", false, "")))
	wantStatus(t, err, "M_FORBIDDEN", 403)

	nonce, _ = f.s.SharedSecretNonce()
	s, err := f.s.SharedSecretRegister(ctx, req(nonce, "Root", "root-password", true, auth.RegistrationMAC(secret, nonce, "Root", "root-password", true, "")))
	if err != nil {
		t.Fatal(err)
	}
	if s.UserID != uid("root") || !f.tokenWorks(s.AccessToken) {
		t.Fatalf("session %+v", s)
	}
	u, _ := f.db.GetUser(ctx, s.UserID)
	if !u.IsAdmin || u.DisplayName != "root" {
		t.Fatalf("user %+v", u)
	}
	f.login2("root", "root-password", "")

	nonce, _ = f.s.SharedSecretNonce()
	_, err = f.s.SharedSecretRegister(ctx, req(nonce, "root", "root-password", false, auth.RegistrationMAC(secret, nonce, "root", "root-password", false, "")))
	wantStatus(t, err, "M_USER_IN_USE", 400)

	nonce, _ = f.s.SharedSecretNonce()
	r := req(nonce, "bot1", "bot1-password", false, auth.RegistrationMAC(secret, nonce, "bot1", "bot1-password", false, "bot"))
	r.UserType, r.DisplayName = "bot", "Beep"
	if _, err := f.s.SharedSecretRegister(ctx, r); err != nil {
		t.Fatal(err)
	}
	if p, _ := f.s.GetProfile(ctx, uid("bot1")); p.DisplayName != "Beep" {
		t.Fatalf("display name %q", p.DisplayName)
	}

	nonce, _ = f.s.SharedSecretNonce()
	_, err = f.s.SharedSecretRegister(ctx, SharedSecretRequest{Nonce: &nonce})
	wantStatus(t, err, "M_BAD_JSON", 400)
}

func TestDevices(t *testing.T) {
	f := newFixture(t, config.RegistrationDisabled)
	ctx := context.Background()
	alice := f.user("alice")
	f.login("alice", "D1")
	if _, err := f.s.Device(ctx, alice, "D1"); err != nil {
		t.Fatal(err)
	}
	_, err := f.s.Device(ctx, alice, "NOPE")
	wantStatus(t, err, "M_NOT_FOUND", 404)
	if err := f.s.RenameDevice(ctx, alice, "D1", ptr("Phone")); err != nil {
		t.Fatal(err)
	}
	d, _ := f.s.Device(ctx, alice, "D1")
	if d.DisplayName != "Phone" {
		t.Fatal(d)
	}
	wantStatus(t, f.s.RenameDevice(ctx, alice, "NOPE", ptr("x")), "M_NOT_FOUND", 404)
	wantStatus(t, f.s.RenameDevice(ctx, alice, "NOPE", nil), "M_NOT_FOUND", 404)
	// Another user's device is not ours to see or rename.
	f.user("bob")
	_, err = f.s.Device(ctx, uid("bob"), "D1")
	wantCode(t, err, "M_NOT_FOUND")

	f.s.SeenDevice(ctx, alice, "D1", "192.0.2.1")
	d, _ = f.s.Device(ctx, alice, "D1")
	if d.LastSeenIP != "192.0.2.1" || d.LastSeenTS == 0 {
		t.Fatalf("last seen not recorded: %+v", d)
	}
}

// joinedRoom creates a room as alice and joins bob, returning its ID.
func (f *fixture) joinedRoom(creator string, others ...string) string {
	f.t.Helper()
	ctx := context.Background()
	roomID, err := f.rooms.CreateRoom(ctx, rooms.CreateRequest{Creator: creator, Preset: "public_chat"})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, u := range others {
		if _, err := f.rooms.Join(ctx, rooms.JoinRequest{Room: roomID, User: u}); err != nil {
			f.t.Fatal(err)
		}
	}
	return roomID
}

func (f *fixture) memberContent(roomID, userID string) map[string]any {
	f.t.Helper()
	ev, err := f.rooms.CurrentStateEvent(context.Background(), roomID, "m.room.member", userID)
	if err != nil || ev == nil {
		f.t.Fatalf("member event: %v", err)
	}
	var c map[string]any
	if err := json.Unmarshal(ev.PDU.Content, &c); err != nil {
		f.t.Fatal(err)
	}
	return c
}

func TestProfilePropagates(t *testing.T) {
	f := newFixture(t, config.RegistrationDisabled)
	ctx := context.Background()
	alice, bob := f.user("alice"), f.user("bob")
	shared := f.joinedRoom(alice, bob)
	own := f.joinedRoom(alice)
	invited := f.joinedRoom(bob)
	if err := f.rooms.Invite(ctx, invited, bob, alice, "", false); err != nil {
		t.Fatal(err)
	}
	before, _ := f.rooms.CurrentStateEvent(ctx, invited, "m.room.member", alice)

	if err := f.s.SetProfileField(ctx, f.rooms, alice, alice, FieldDisplayName, jstr("Alice A")); err != nil {
		t.Fatal(err)
	}
	if err := f.s.SetProfileField(ctx, f.rooms, alice, alice, FieldAvatarURL, jstr("mxc://acc.test/abc")); err != nil {
		t.Fatal(err)
	}
	for _, room := range []string{shared, own} {
		c := f.memberContent(room, alice)
		if c["displayname"] != "Alice A" || c["avatar_url"] != "mxc://acc.test/abc" || c["membership"] != "join" {
			t.Fatalf("member content in %s: %v", room, c)
		}
	}
	after, _ := f.rooms.CurrentStateEvent(ctx, invited, "m.room.member", alice)
	if before.EventID != after.EventID {
		t.Fatal("profile change touched a room the user is only invited to")
	}
	if c := f.memberContent(shared, bob); c["displayname"] != "bob" {
		t.Fatalf("bob's member event changed: %v", c)
	}
	p, err := f.s.GetProfile(ctx, alice)
	if err != nil || p.DisplayName != "Alice A" || p.AvatarURL != "mxc://acc.test/abc" {
		t.Fatalf("profile %+v %v", p, err)
	}

	// Setting the same value again sends nothing.
	ev1, _ := f.rooms.CurrentStateEvent(ctx, shared, "m.room.member", alice)
	if err := f.s.SetProfileField(ctx, f.rooms, alice, alice, FieldDisplayName, jstr("Alice A")); err != nil {
		t.Fatal(err)
	}
	if ev2, _ := f.rooms.CurrentStateEvent(ctx, shared, "m.room.member", alice); ev1.EventID != ev2.EventID {
		t.Fatal("an unchanged profile sent a member event")
	}

	// Removing a field removes it from the member events.
	if err := f.s.SetProfileField(ctx, f.rooms, alice, alice, FieldAvatarURL, nil); err != nil {
		t.Fatal(err)
	}
	if c := f.memberContent(shared, alice); c["avatar_url"] != nil || c["displayname"] != "Alice A" {
		t.Fatalf("after delete: %v", c)
	}
	_, err = f.s.GetProfileField(ctx, alice, FieldAvatarURL)
	wantStatus(t, err, "M_NOT_FOUND", 404)
	if v, err := f.s.GetProfileField(ctx, alice, FieldDisplayName); err != nil || string(v) != `"Alice A"` {
		t.Fatal(v, err)
	}
}

func TestProfileRules(t *testing.T) {
	f := newFixture(t, config.RegistrationDisabled)
	ctx := context.Background()
	alice, bob := f.user("alice"), f.user("bob")
	wantStatus(t, f.s.SetProfileField(ctx, f.rooms, alice, bob, FieldDisplayName, jstr("x")), "M_FORBIDDEN", 403)
	wantStatus(t, f.s.SetProfileField(ctx, f.rooms, alice, alice, FieldAvatarURL, jstr("https://x/y.png")), "M_INVALID_PARAM", 400)
	wantStatus(t, f.s.SetProfileField(ctx, f.rooms, alice, alice, "m.tz", json.RawMessage(`5`)), "M_INVALID_PARAM", 400)
	wantStatus(t, f.s.SetProfileField(ctx, f.rooms, alice, alice, "org.example.x", json.RawMessage(`null`)), "M_INVALID_PARAM", 400)
	wantStatus(t, f.s.SetProfileField(ctx, f.rooms, alice, alice, "Bad Key", jstr("x")), "M_INVALID_PARAM", 400)
	long := make([]byte, maxDisplayNameLen+1)
	wantStatus(t, f.s.SetProfileField(ctx, f.rooms, alice, alice, FieldDisplayName, jstr(string(long))), "M_INVALID_PARAM", 400)
	_, err := f.s.GetProfile(ctx, uid("nobody"))
	wantStatus(t, err, "M_NOT_FOUND", 404)
	_, err = f.s.GetProfile(ctx, "@alice:elsewhere.test")
	wantStatus(t, err, "M_NOT_FOUND", 404)
	_, err = f.s.GetProfile(ctx, "alice")
	wantStatus(t, err, "M_INVALID_PARAM", 400)
	_, err = f.s.GetProfileField(ctx, alice, "m.tz")
	wantStatus(t, err, "M_NOT_FOUND", 404)
	if p, err := f.s.GetProfile(ctx, alice); err != nil || string(p.Fields()["displayname"]) != `"alice"` {
		t.Fatal(p, err)
	}
}

func TestDeactivate(t *testing.T) {
	f := newFixture(t, config.RegistrationDisabled)
	ctx := context.Background()
	alice, bob := f.user("alice"), f.user("bob")
	s := f.login("bob", "B")
	joined := f.joinedRoom(alice, bob)
	invited := f.joinedRoom(alice)
	if err := f.rooms.Invite(ctx, invited, alice, bob, "", false); err != nil {
		t.Fatal(err)
	}

	err := f.s.Deactivate(ctx, f.rooms, DeactivateRequest{UserID: bob})
	ch := wantChallenge(t, err, "")
	err = f.s.Deactivate(ctx, f.rooms, DeactivateRequest{UserID: bob, Auth: &AuthDict{Type: StagePassword, Session: ch.Session, User: "bob", Password: "password-bob"}})
	if err != nil {
		t.Fatal(err)
	}
	if f.tokenWorks(s.AccessToken) {
		t.Fatal("token survived deactivation")
	}
	for _, room := range []string{joined, invited} {
		if m, _ := f.rooms.Membership(ctx, room, bob); m != "leave" {
			t.Fatalf("membership in %s after deactivation: %q", room, m)
		}
	}
	p, _ := f.s.GetProfile(ctx, bob)
	if p.DisplayName != "" {
		t.Fatalf("profile kept: %+v", p)
	}
	pw := "password-bob"
	_, err = f.s.Login(ctx, LoginRequest{Type: LoginTypePassword, User: "bob", Password: &pw})
	wantCode(t, err, "M_USER_DEACTIVATED")
	wantCode(t, f.s.UsernameAvailable(ctx, "bob"), "M_USER_IN_USE")
}

// The command line deactivates without touching rooms; the server
// finishes the job with LeaveRoomsOfDeactivated.
func TestLeaveRoomsOfDeactivated(t *testing.T) {
	f := newFixture(t, config.RegistrationDisabled)
	ctx := context.Background()
	alice, bob := f.user("alice"), f.user("bob")
	room := f.joinedRoom(alice, bob)
	if err := f.s.DeactivateAccount(ctx, nil, bob); err != nil {
		t.Fatal(err)
	}
	if m, _ := f.rooms.Membership(ctx, room, bob); m != "join" {
		t.Fatalf("membership %q before the server pass", m)
	}
	n, err := f.s.LeaveRoomsOfDeactivated(ctx, f.rooms)
	if err != nil || n != 1 {
		t.Fatalf("left %d rooms, %v", n, err)
	}
	if m, _ := f.rooms.Membership(ctx, room, bob); m != "leave" {
		t.Fatalf("membership %q after the server pass", m)
	}
	if n, _ := f.s.LeaveRoomsOfDeactivated(ctx, f.rooms); n != 0 {
		t.Fatalf("second pass left %d rooms", n)
	}
	wantCode(t, f.s.DeactivateAccount(ctx, nil, uid("nobody")), "M_NOT_FOUND")
}
