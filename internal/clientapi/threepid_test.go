package clientapi_test

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/testrig"
)

const (
	addToken     = v3 + "/account/3pid/email/requestToken"
	resetToken   = v3 + "/account/password/email/requestToken"
	regToken     = v3 + "/register/email/requestToken"
	validatePath = "/_axon/client/email/validate"
)

var (
	linkRe = regexp.MustCompile(`http://\S+` + validatePath + `\?\S+`)
	codeRe = regexp.MustCompile(`enter this code in your Matrix app if it asks for one: (\S+)`)
)

// emailLink returns the validation link of a message and its parameters.
func emailLink(t *testing.T, m testrig.Mail) (string, url.Values) {
	t.Helper()
	link := linkRe.FindString(m.Body)
	if link == "" {
		t.Fatalf("no validation link in %q", m.Body)
	}
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return link, u.Query()
}

func getPage(t *testing.T, link string) (int, string) {
	t.Helper()
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// confirmLink opens the link and presses the page's button, as a person
// does.
func confirmLink(t *testing.T, r *testrig.Rig, m testrig.Mail) {
	t.Helper()
	link, q := emailLink(t, m)
	status, page := getPage(t, link)
	if status != 200 || !strings.Contains(page, `<form method="post"`) {
		t.Fatalf("validation page: %d %s", status, page)
	}
	resp, err := http.PostForm(r.URL+validatePath, q)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "Email address confirmed") {
		t.Fatalf("confirm: %d %s", resp.StatusCode, b)
	}
}

// validatedEmail runs requestToken for purpose's endpoint and confirms the
// link; it returns the session's sid.
func validatedEmail(t *testing.T, r *testrig.Rig, smtp *testrig.SMTPServer, endpoint, email, secret string) string {
	t.Helper()
	before := len(smtp.Mails())
	status, body := r.JSON(t, "POST", endpoint, "", map[string]any{"client_secret": secret, "email": email, "send_attempt": 1})
	if status != 200 {
		t.Fatalf("requestToken %s: %d %v", email, status, body)
	}
	confirmLink(t, r, smtp.Wait(t, before+1))
	return body["sid"].(string)
}

func emailAuth(sid, secret, session string) map[string]any {
	a := map[string]any{"type": "m.login.email.identity", "threepid_creds": map[string]any{"sid": sid, "client_secret": secret}}
	if session != "" {
		a["session"] = session
	}
	return a
}

func TestThreepidAddListDelete(t *testing.T) {
	smtp := testrig.StartSMTP(t)
	smtp.User, smtp.Password = "axon-mailer", "smtp-secret"
	r := testrig.Start(t, testrig.WithSMTP(smtp))
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")

	status, body := r.JSON(t, "GET", v3+"/capabilities", alice.AccessToken, nil)
	if status != 200 || body["capabilities"].(map[string]any)["m.3pid_changes"].(map[string]any)["enabled"] != true {
		t.Fatalf("capabilities: %d %v", status, body)
	}

	// One message per send_attempt.
	req := map[string]any{"client_secret": "alice-secret", "email": "Alice@Example.org", "send_attempt": 1}
	status, body = r.JSON(t, "POST", addToken, "", req)
	if status != 200 || body["sid"] == "" || body["submit_url"] != r.URL+"/_axon/client/email/submit_token" {
		t.Fatalf("requestToken: %d %v", status, body)
	}
	sid := body["sid"].(string)
	m := smtp.Wait(t, 1)
	if len(m.To) != 1 || m.To[0] != "alice@example.org" || m.From != "noreply@axon.test" ||
		m.AuthUser != "axon-mailer" || m.AuthPass != "smtp-secret" || !strings.Contains(m.Header.Get("Subject"), "axon.test") {
		t.Fatalf("mail: %+v", m)
	}
	status, body = r.JSON(t, "POST", addToken, "", req)
	if status != 200 || body["sid"] != sid {
		t.Fatalf("retried requestToken: %d %v", status, body)
	}
	if n := len(smtp.Mails()); n != 1 {
		t.Fatalf("the retry sent mail: %d messages", n)
	}
	// A higher send_attempt sends again, in the same session; the first
	// message's link keeps working.
	req["send_attempt"] = 2
	status, body = r.JSON(t, "POST", addToken, "", req)
	if status != 200 || body["sid"] != sid {
		t.Fatalf("send_attempt 2: %d %v", status, body)
	}
	if _, q2 := emailLink(t, smtp.Wait(t, 2)); q2.Get("sid") != sid {
		t.Fatalf("second message for session %q", q2.Get("sid"))
	}

	// Not added before the link is used, and opening the link alone (as a
	// mail scanner does) validates nothing.
	add := map[string]any{"sid": sid, "client_secret": "alice-secret"}
	status, body = r.JSON(t, "POST", v3+"/account/3pid/add", alice.AccessToken, add)
	wantAPIError(t, status, body, 403, "M_THREEPID_AUTH_FAILED", "add before validation")
	link, q := emailLink(t, m)
	if status, page := getPage(t, link); status != 200 || !strings.Contains(page, "alice@example.org") {
		t.Fatalf("page: %d %s", status, page)
	}
	status, body = r.JSON(t, "POST", v3+"/account/3pid/add", alice.AccessToken, add)
	wantAPIError(t, status, body, 403, "M_THREEPID_AUTH_FAILED", "add after only opening the link")
	bad := url.Values{"sid": {sid}, "client_secret": {"alice-secret"}, "token": {"AAAABBBBCCCCDDDD"}}
	if status, _ := getPage(t, r.URL+validatePath+"?"+bad.Encode()); status != 400 {
		t.Fatalf("page with a wrong token: %d", status)
	}
	wrongSecret := url.Values{"sid": {sid}, "client_secret": {"other"}, "token": {q.Get("token")}}
	if status, _ := getPage(t, r.URL+validatePath+"?"+wrongSecret.Encode()); status != 400 {
		t.Fatalf("page with a wrong client secret: %d", status)
	}
	confirmLink(t, r, m)

	// Adding asks for the password.
	status, body = r.JSON(t, "POST", v3+"/account/3pid/add", alice.AccessToken, add)
	session := acctChallenge(t, "3pid add", status, body, "m.login.password")
	add["auth"] = passwordAuth(session, "bob", "password-bob")
	status, body = r.JSON(t, "POST", v3+"/account/3pid/add", alice.AccessToken, add)
	wantAPIError(t, status, body, 403, "M_FORBIDDEN", "add with bob's password")
	add["auth"] = passwordAuth(session, "alice", "password-alice")
	status, body = r.JSON(t, "POST", v3+"/account/3pid/add", alice.AccessToken, add)
	if status != 200 {
		t.Fatalf("add: %d %v", status, body)
	}
	status, body = r.JSON(t, "GET", v3+"/account/3pid", alice.AccessToken, nil)
	list, _ := body["threepids"].([]any)
	if status != 200 || len(list) != 1 {
		t.Fatalf("3pids: %d %v", status, body)
	}
	tp := list[0].(map[string]any)
	if tp["medium"] != "email" || tp["address"] != "alice@example.org" || tp["validated_at"].(float64) <= 0 || tp["added_at"].(float64) < tp["validated_at"].(float64) {
		t.Fatalf("3pid: %v", tp)
	}
	// The session is spent.
	status, body = r.JSON(t, "POST", v3+"/account/3pid/add", alice.AccessToken, map[string]any{"sid": sid, "client_secret": "alice-secret"})
	wantAPIError(t, status, body, 403, "M_THREEPID_AUTH_FAILED", "session reused")

	// The address is taken: bob cannot request it, and alice can log in with it.
	status, body = r.JSON(t, "POST", addToken, bob.AccessToken, map[string]any{"client_secret": "bob-secret", "email": "ALICE@example.org", "send_attempt": 1})
	wantAPIError(t, status, body, 400, "M_THREEPID_IN_USE", "taken address")
	status, body = r.JSON(t, "POST", v3+"/login", "", map[string]any{"type": "m.login.password", "password": "password-alice",
		"identifier": map[string]any{"type": "m.id.thirdparty", "medium": "email", "address": "alice@EXAMPLE.org"}})
	if status != 200 || body["user_id"] != alice.UserID.String() {
		t.Fatalf("login by email: %d %v", status, body)
	}
	status, body = r.JSON(t, "POST", v3+"/login", "", map[string]any{"type": "m.login.password", "password": "password-alice",
		"identifier": map[string]any{"type": "m.id.thirdparty", "medium": "email", "address": "nobody@example.org"}})
	wantAPIError(t, status, body, 403, "M_FORBIDDEN", "login by unknown email")

	// Bob cannot delete alice's address; alice can, once.
	del := map[string]any{"medium": "email", "address": "alice@example.org"}
	status, body = r.JSON(t, "POST", v3+"/account/3pid/delete", bob.AccessToken, del)
	wantAPIError(t, status, body, 400, "M_THREEPID_NOT_FOUND", "delete someone else's")
	status, body = r.JSON(t, "POST", v3+"/account/3pid/delete", alice.AccessToken, del)
	if status != 200 || body["id_server_unbind_result"] != "no-support" {
		t.Fatalf("delete: %d %v", status, body)
	}
	status, body = r.JSON(t, "GET", v3+"/account/3pid", alice.AccessToken, nil)
	if status != 200 || len(body["threepids"].([]any)) != 0 {
		t.Fatalf("3pids after delete: %d %v", status, body)
	}
	status, body = r.JSON(t, "POST", v3+"/account/3pid/delete", alice.AccessToken, del)
	wantAPIError(t, status, body, 400, "M_THREEPID_NOT_FOUND", "delete twice")

	// The spent session is gone: the same secret starts a new one.
	status, body = r.JSON(t, "POST", addToken, "", req)
	if status != 200 || body["sid"] == sid {
		t.Fatalf("requestToken after use: %d %v", status, body)
	}
	smtp.Wait(t, 3)
}

func TestThreepidPasswordReset(t *testing.T) {
	smtp := testrig.StartSMTP(t)
	r := testrig.Start(t, testrig.WithSMTP(smtp))
	carol := r.CreateUser("carol")
	dave := r.CreateUser("dave")
	sid := validatedEmail(t, r, smtp, addToken, "carol@example.org", "c-add")
	status, body := r.JSON(t, "POST", v3+"/account/3pid/add", carol.AccessToken, map[string]any{"sid": sid, "client_secret": "c-add",
		"auth": passwordAuth("", "carol", "password-carol")})
	if status != 200 {
		t.Fatalf("add: %d %v", status, body)
	}

	status, body = r.JSON(t, "POST", resetToken, "", map[string]any{"client_secret": "x", "email": "nobody@example.org", "send_attempt": 1})
	wantAPIError(t, status, body, 400, "M_THREEPID_NOT_FOUND", "unknown address")

	// Validation through the submit_url with the code from the message.
	status, body = r.JSON(t, "POST", resetToken, "", map[string]any{"client_secret": "c-reset", "email": "carol@example.org", "send_attempt": 1})
	if status != 200 {
		t.Fatalf("requestToken: %d %v", status, body)
	}
	resetSID := body["sid"].(string)
	m := smtp.Wait(t, 2)
	if !strings.Contains(m.Header.Get("Subject"), "Reset your password") {
		t.Fatalf("subject %q", m.Header.Get("Subject"))
	}
	code := codeRe.FindStringSubmatch(m.Body)
	if code == nil {
		t.Fatalf("no code in %q", m.Body)
	}
	submit := map[string]any{"sid": resetSID, "client_secret": "c-reset", "token": "ZZZZ-ZZZZ-ZZZZ-ZZZZ"}
	status, body = r.JSON(t, "POST", "/_axon/client/email/submit_token", "", submit)
	wantAPIError(t, status, body, 400, "M_TOKEN_INCORRECT", "wrong code")

	// Before validation the email stage fails (and nothing changes).
	reset := map[string]any{"new_password": "brand-new", "auth": emailAuth(resetSID, "c-reset", "")}
	status, body = r.JSON(t, "POST", v3+"/account/password", "", reset)
	wantAPIError(t, status, body, 401, "M_THREEPID_AUTH_FAILED", "reset before validation")
	submit["token"] = strings.ToLower(code[1]) // codes are read case-insensitively
	status, body = r.JSON(t, "POST", "/_axon/client/email/submit_token", "", submit)
	if status != 200 || body["success"] != true {
		t.Fatalf("submit_token: %d %v", status, body)
	}

	// A session for adding an address does not reset a password.
	other := validatedEmail(t, r, smtp, addToken, "spare@example.org", "c-spare")
	status, body = r.JSON(t, "POST", v3+"/account/password", "", map[string]any{"new_password": "x-password", "auth": emailAuth(other, "c-spare", "")})
	wantAPIError(t, status, body, 401, "M_THREEPID_AUTH_FAILED", "reset with an add session")
	// Dave's token cannot reset carol's password with carol's session.
	status, body = r.JSON(t, "POST", v3+"/account/password", dave.AccessToken, map[string]any{"new_password": "x-password", "auth": emailAuth(resetSID, "c-reset", "")})
	wantAPIError(t, status, body, 401, "M_FORBIDDEN", "reset of someone else's account")

	status, body = r.JSON(t, "POST", v3+"/account/password", "", reset)
	if status != 200 {
		t.Fatalf("reset: %d %v", status, body)
	}
	status, body = r.JSON(t, "GET", v3+"/account/whoami", carol.AccessToken, nil)
	wantAPIError(t, status, body, 401, "M_UNKNOWN_TOKEN", "old device after reset")
	acctLogin(t, r, "carol", "brand-new", "")
	status, body = r.JSON(t, "POST", v3+"/login", "", map[string]any{"type": "m.login.password", "password": "password-carol",
		"identifier": map[string]any{"type": "m.id.user", "user": "carol"}})
	wantAPIError(t, status, body, 403, "M_FORBIDDEN", "old password")
	// The session reset the password once.
	reset["new_password"] = "again-password"
	status, body = r.JSON(t, "POST", v3+"/account/password", "", reset)
	wantAPIError(t, status, body, 401, "M_THREEPID_AUTH_FAILED", "session reused")

	// logout_devices: false keeps the devices.
	carol2 := acctLogin(t, r, "carol", "brand-new", "KEEP")
	sid2 := validatedEmail(t, r, smtp, resetToken, "carol@example.org", "c-reset-2")
	status, body = r.JSON(t, "POST", v3+"/account/password", "", map[string]any{"new_password": "third-password", "logout_devices": false,
		"auth": emailAuth(sid2, "c-reset-2", "")})
	if status != 200 {
		t.Fatalf("reset keeping devices: %d %v", status, body)
	}
	if status, body := r.JSON(t, "GET", v3+"/account/whoami", carol2.AccessToken, nil); status != 200 {
		t.Fatalf("device after reset with logout_devices false: %d %v", status, body)
	}
}

func TestThreepidRegistration(t *testing.T) {
	smtp := testrig.StartSMTP(t)
	r := testrig.Start(t, testrig.WithSMTP(smtp), func(c *config.Config) { c.RegistrationRequiresEmail = true })
	erin := r.CreateUser("erin")
	sid := validatedEmail(t, r, smtp, addToken, "erin@example.org", "e-add")
	if status, body := r.JSON(t, "POST", v3+"/account/3pid/add", erin.AccessToken, map[string]any{"sid": sid, "client_secret": "e-add",
		"auth": passwordAuth("", "erin", "password-erin")}); status != 200 {
		t.Fatalf("add: %d %v", status, body)
	}

	status, body := r.JSON(t, "POST", v3+"/register", "", map[string]any{"username": "frank", "password": "pw-long-enough"})
	session := acctChallenge(t, "register", status, body, "m.login.email.identity")

	status, body = r.JSON(t, "POST", regToken, "", map[string]any{"client_secret": "f", "email": "erin@example.org", "send_attempt": 1})
	wantAPIError(t, status, body, 400, "M_THREEPID_IN_USE", "register with a taken address")

	regSID := validatedEmail(t, r, smtp, regToken, "frank@example.org", "f-reg")
	status, body = r.JSON(t, "POST", v3+"/register", "", map[string]any{"username": "frank", "password": "pw-long-enough",
		"auth": emailAuth(regSID, "wrong-secret", session)})
	wantAPIError(t, status, body, 401, "M_THREEPID_AUTH_FAILED", "register with a wrong client secret")
	status, body = r.JSON(t, "POST", v3+"/register", "", map[string]any{"username": "frank", "password": "pw-long-enough",
		"auth": emailAuth(regSID, "f-reg", session)})
	if status != 200 || body["user_id"] != "@frank:axon.test" {
		t.Fatalf("register: %d %v", status, body)
	}
	token := body["access_token"].(string)
	status, body = r.JSON(t, "GET", v3+"/account/3pid", token, nil)
	if list, _ := body["threepids"].([]any); status != 200 || len(list) != 1 || list[0].(map[string]any)["address"] != "frank@example.org" {
		t.Fatalf("frank's 3pids: %d %v", status, body)
	}

	// Deactivation frees the address.
	status, body = r.JSON(t, "POST", v3+"/account/deactivate", token, map[string]any{"auth": passwordAuth("", "frank", "pw-long-enough")})
	if status != 200 {
		t.Fatalf("deactivate: %d %v", status, body)
	}
	status, body = r.JSON(t, "POST", regToken, "", map[string]any{"client_secret": "f2", "email": "frank@example.org", "send_attempt": 1})
	if status != 200 {
		t.Fatalf("address of a deactivated account: %d %v", status, body)
	}
}

func TestThreepidOptionalAtRegistration(t *testing.T) {
	smtp := testrig.StartSMTP(t)
	r := testrig.Start(t, testrig.WithSMTP(smtp))
	status, body := r.JSON(t, "POST", v3+"/register", "", map[string]any{"username": "gina", "password": "pw-long-enough"})
	if status != 401 || len(body["flows"].([]any)) != 2 {
		t.Fatalf("flows: %d %v", status, body)
	}
	status, body = r.JSON(t, "POST", v3+"/register", "", map[string]any{"username": "gina", "password": "pw-long-enough",
		"auth": map[string]any{"type": "m.login.dummy", "session": body["session"]}})
	if status != 200 {
		t.Fatalf("register without email: %d %v", status, body)
	}
	// Without an access token, the password can be changed with the
	// password or with an email address.
	status, body = r.JSON(t, "POST", v3+"/account/password", "", map[string]any{"new_password": "x-password"})
	if status != 401 || len(body["flows"].([]any)) != 2 {
		t.Fatalf("password flows: %d %v", status, body)
	}
	// With registration tokens, a required address comes after the token.
	tokenRig := testrig.Start(t, testrig.WithSMTP(smtp), func(c *config.Config) {
		c.Registration, c.RegistrationRequiresEmail = config.RegistrationToken, true
	})
	status, body = tokenRig.JSON(t, "POST", v3+"/register", "", map[string]any{"username": "hal", "password": "pw-long-enough"})
	acctChallenge(t, "token registration", status, body, "m.login.registration_token", "m.login.email.identity")
}

func TestThreepidWithoutEmail(t *testing.T) {
	r := testrig.Start(t)
	alice := r.CreateUser("alice")
	status, body := r.JSON(t, "GET", v3+"/capabilities", alice.AccessToken, nil)
	if status != 200 || body["capabilities"].(map[string]any)["m.3pid_changes"].(map[string]any)["enabled"] != false {
		t.Fatalf("capabilities: %d %v", status, body)
	}
	email := map[string]any{"client_secret": "s", "email": "a@example.org", "send_attempt": 1}
	phone := map[string]any{"client_secret": "s", "country": "GB", "phone_number": "07700900001", "send_attempt": 1}
	for _, path := range []string{"/account/3pid/email/requestToken", "/account/password/email/requestToken", "/register/email/requestToken"} {
		status, body = r.JSON(t, "POST", v3+path, "", email)
		wantAPIError(t, status, body, 400, "M_THREEPID_MEDIUM_NOT_SUPPORTED", path)
		path = strings.Replace(path, "email", "msisdn", 1)
		status, body = r.JSON(t, "POST", v3+path, "", phone)
		wantAPIError(t, status, body, 400, "M_THREEPID_MEDIUM_NOT_SUPPORTED", path)
	}
	status, body = r.JSON(t, "POST", v3+"/account/3pid/add", alice.AccessToken, map[string]any{"sid": "x", "client_secret": "y"})
	wantAPIError(t, status, body, 403, "M_THREEPID_AUTH_FAILED", "add")

	// Registration and password change keep their flows.
	status, body = r.JSON(t, "POST", v3+"/register", "", map[string]any{"username": "zed", "password": "pw-long-enough"})
	acctChallenge(t, "register", status, body, "m.login.dummy")
	status, body = r.JSON(t, "POST", v3+"/account/password", alice.AccessToken, map[string]any{"new_password": "pw-long-enough"})
	acctChallenge(t, "password", status, body, "m.login.password")

	// No identity server is ever used.
	bind := map[string]any{"client_secret": "s", "id_server": "id.example.org", "id_access_token": "t", "sid": "x"}
	status, body = r.JSON(t, "POST", v3+"/account/3pid/bind", alice.AccessToken, bind)
	wantAPIError(t, status, body, 400, "M_SERVER_NOT_TRUSTED", "bind")
	status, body = r.JSON(t, "POST", v3+"/account/3pid", alice.AccessToken, map[string]any{"three_pid_creds": bind})
	wantAPIError(t, status, body, 400, "M_SERVER_NOT_TRUSTED", "deprecated add")
	status, body = r.JSON(t, "POST", v3+"/account/3pid/unbind", alice.AccessToken, map[string]any{"medium": "email", "address": "a@example.org", "id_server": "id.example.org"})
	if status != 200 || body["id_server_unbind_result"] != "no-support" {
		t.Fatalf("unbind: %d %v", status, body)
	}
	status, body = r.JSON(t, "GET", v3+"/account/3pid", alice.AccessToken, nil)
	if status != 200 || len(body["threepids"].([]any)) != 0 {
		t.Fatalf("3pids: %d %v", status, body)
	}
}

func TestThreepidBadInput(t *testing.T) {
	smtp := testrig.StartSMTP(t)
	r := testrig.Start(t, testrig.WithSMTP(smtp))
	alice := r.CreateUser("alice")
	req := func(secret, email string, attempt any) map[string]any {
		m := map[string]any{"client_secret": secret, "email": email}
		if attempt != nil {
			m["send_attempt"] = attempt
		}
		return m
	}
	cases := []struct {
		name   string
		path   string
		body   map[string]any
		status int
		code   string
	}{
		{"secret with a space", addToken, req("a b", "a@example.org", 1), 400, "M_INVALID_PARAM"},
		{"secret with a slash", regToken, req("a/b", "a@example.org", 1), 400, "M_INVALID_PARAM"},
		{"secret too long", resetToken, req(strings.Repeat("a", 256), "a@example.org", 1), 400, "M_INVALID_PARAM"},
		{"no secret", addToken, req("", "a@example.org", 1), 400, "M_MISSING_PARAM"},
		{"no email", addToken, req("s", "", 1), 400, "M_MISSING_PARAM"},
		{"no send_attempt", addToken, req("s", "a@example.org", nil), 400, "M_MISSING_PARAM"},
		{"send_attempt a string", addToken, req("s", "a@example.org", "1"), 400, "M_BAD_JSON"},
		{"no at sign", addToken, req("s", "example.org", 1), 400, "M_INVALID_PARAM"},
		{"two at signs", addToken, req("s", "a@b@example.org", 1), 400, "M_INVALID_PARAM"},
		{"header injection", addToken, req("s", "a@example.org\r\nBcc: victim@example.org", 1), 400, "M_INVALID_PARAM"},
		{"smtp injection", regToken, req("s", "a@example.org>\r\nRCPT TO:<b@example.org", 1), 400, "M_INVALID_PARAM"},
		{"quoted local part", addToken, req("s", `"a b"@example.org`, 1), 400, "M_INVALID_PARAM"},
		{"empty domain label", addToken, req("s", "a@example..org", 1), 400, "M_INVALID_PARAM"},
		{"non-ASCII", addToken, req("s", "jörg@example.org", 1), 400, "M_INVALID_PARAM"},
		{"bad next_link", addToken, map[string]any{"client_secret": "s", "email": "a@example.org", "send_attempt": 1, "next_link": "javascript:alert(1)"}, 400, "M_INVALID_PARAM"},
		{"phone number", v3 + "/account/3pid/msisdn/requestToken", map[string]any{"client_secret": "s", "country": "GB", "phone_number": "07700900001", "send_attempt": 1}, 400, "M_THREEPID_MEDIUM_NOT_SUPPORTED"},
	}
	for _, c := range cases {
		status, body := r.JSON(t, "POST", c.path, "", c.body)
		wantAPIError(t, status, body, c.status, c.code, c.name)
	}
	status, body := r.JSON(t, "POST", v3+"/account/3pid/add", alice.AccessToken, map[string]any{"sid": "x", "client_secret": "a b"})
	wantAPIError(t, status, body, 400, "M_INVALID_PARAM", "add with a bad secret")
	status, body = r.JSON(t, "POST", v3+"/account/3pid/add", alice.AccessToken, map[string]any{"client_secret": "s"})
	wantAPIError(t, status, body, 400, "M_MISSING_PARAM", "add without sid")
	status, body = r.JSON(t, "POST", v3+"/account/3pid/delete", alice.AccessToken, map[string]any{"medium": "fax", "address": "1"})
	wantAPIError(t, status, body, 400, "M_INVALID_PARAM", "delete a fax")
	status, body = r.JSON(t, "POST", v3+"/account/3pid/delete", alice.AccessToken, map[string]any{"medium": "email"})
	wantAPIError(t, status, body, 400, "M_MISSING_PARAM", "delete without address")
	status, body = r.JSON(t, "POST", v3+"/account/3pid/bind", alice.AccessToken, map[string]any{"sid": "x", "client_secret": "s", "id_server": "i"})
	wantAPIError(t, status, body, 400, "M_MISSING_PARAM", "bind without id_access_token")
	status, body = r.JSON(t, "POST", v3+"/account/3pid", alice.AccessToken, map[string]any{})
	wantAPIError(t, status, body, 400, "M_MISSING_PARAM", "deprecated add without creds")
	status, body = r.JSON(t, "POST", "/_axon/client/email/submit_token", "", map[string]any{"sid": "nope", "client_secret": "s", "token": "t"})
	wantAPIError(t, status, body, 400, "M_INVALID_PARAM", "submit to an unknown session")
	if n := len(smtp.Mails()); n != 0 {
		t.Fatalf("bad requests sent %d messages", n)
	}
}
