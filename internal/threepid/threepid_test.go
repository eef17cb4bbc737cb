package threepid_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"mime"
	"net"
	"net/mail"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/axon-matrix/axon/internal/account"
	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/storage"
	"github.com/axon-matrix/axon/internal/testrig"
	"github.com/axon-matrix/axon/internal/threepid"
)

func TestValidateEmail(t *testing.T) {
	good := map[string]string{
		"alice@example.org":          "alice@example.org",
		" Alice.B+tag@Example.ORG ":  "alice.b+tag@example.org",
		"o'brien@mail.example.co.uk": "o'brien@mail.example.co.uk",
		"root@localhost":             "root@localhost",
		"a@example.org\n":            "a@example.org",
	}
	for in, want := range good {
		if got, err := threepid.ValidateEmail(in); err != nil || got != want {
			t.Errorf("ValidateEmail(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "@", "a@", "@example.org", "a@@example.org", "a@b@example.org", "a b@example.org", `"a"@example.org`,
		".a@example.org", "a.@example.org", "a..b@example.org", "a@example..org", "a@-example.org", "a@example-.org",
		"a@[127.0.0.1]", "a@exa_mple.org", "a@example.org\r\nBcc: b@example.org", "ü@example.org",
		"a@" + strings.Repeat("x", 64) + ".org", strings.Repeat("a", 65) + "@example.org",
		"a@" + strings.Repeat("abcdefghi.", 25) + "org",
	} {
		if got, err := threepid.ValidateEmail(in); err == nil {
			t.Errorf("ValidateEmail(%q) = %q, want an error", in, got)
		} else if e, ok := mxerr.As(err); !ok || e.Code != "M_INVALID_PARAM" {
			t.Errorf("ValidateEmail(%q) error %v, want M_INVALID_PARAM", in, err)
		}
	}
}

// countingMailer records messages instead of sending them.
type countingMailer struct {
	mu   sync.Mutex
	sent []threepid.Message
	fail error
}

func (m *countingMailer) Send(ctx context.Context, msg threepid.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.sent = append(m.sent, msg)
	return nil
}

func newService(t *testing.T, rateLimits bool, mailer threepid.Mailer) *threepid.Service {
	t.Helper()
	db, err := storage.Open(context.Background(), filepath.Join(t.TempDir(), "axon.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := config.Default()
	cfg.ServerName = "example.org"
	cfg.Registration = config.RegistrationOpen
	cfg.RateLimits = rateLimits
	return threepid.New(db, cfg, mailer, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func request(addr string, attempt int64) threepid.TokenRequest {
	return threepid.TokenRequest{Purpose: account.PurposeRegister, Medium: "email", ClientSecret: "secret", Email: addr, SendAttempt: &attempt}
}

func TestMailsPerAddressLimited(t *testing.T) {
	ctx := context.Background()
	m := &countingMailer{}
	s := newService(t, true, m)
	for i := range int64(5) {
		if _, err := s.RequestToken(ctx, request("victim@example.org", i+1)); err != nil {
			t.Fatalf("message %d: %v", i+1, err)
		}
	}
	_, err := s.RequestToken(ctx, request("victim@example.org", 6))
	if e, ok := mxerr.As(err); !ok || e.Code != "M_LIMIT_EXCEEDED" || e.Extra["retry_after_ms"] == nil {
		t.Fatalf("sixth message: %v", err)
	}
	if _, err := s.RequestToken(ctx, request("other@example.org", 1)); err != nil {
		t.Fatalf("another address: %v", err)
	}
	if len(m.sent) != 6 {
		t.Fatalf("sent %d messages, want 6", len(m.sent))
	}
}

func TestFailedSendIsRetried(t *testing.T) {
	ctx := context.Background()
	m := &countingMailer{fail: errors.New("relay down")}
	s := newService(t, false, m)
	if _, err := s.RequestToken(ctx, request("a@example.org", 1)); err == nil {
		t.Fatal("a failed send was reported as success")
	}
	// The same send_attempt must send now: nothing was recorded.
	m.fail = nil
	if _, err := s.RequestToken(ctx, request("a@example.org", 1)); err != nil || len(m.sent) != 1 {
		t.Fatalf("retry: %v, %d sent", err, len(m.sent))
	}
	if got := m.sent[0]; got.To != "a@example.org" || !strings.Contains(got.Text, "/_axon/client/email/validate?") {
		t.Fatalf("message %+v", got)
	}
}

func smtpMailer(t *testing.T, srv *testrig.SMTPServer, tlsMode, user, pass string) *threepid.SMTP {
	t.Helper()
	host, port, _ := net.SplitHostPort(srv.Addr)
	p, _ := strconv.Atoi(port)
	from, _ := mail.ParseAddress("Axön Server <noreply@example.org>")
	return &threepid.SMTP{Host: host, Port: p, TLS: tlsMode, From: from, Hello: "example.org", Username: user, Password: pass}
}

func TestSMTPMessage(t *testing.T) {
	srv := testrig.StartSMTP(t)
	srv.User, srv.Password = "u", "p"
	text := "Ünïcode line and a long link: https://example.org/" + strings.Repeat("x", 200) + "\nsecond line\n"
	err := smtpMailer(t, srv, config.SMTPNoTLS, "u", "p").Send(context.Background(), threepid.Message{To: "a@example.org", Subject: "Grüße from example.org", Text: text})
	if err != nil {
		t.Fatal(err)
	}
	m := srv.Wait(t, 1)
	subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil || subject != "Grüße from example.org" {
		t.Fatalf("subject %q %v (raw %q)", subject, err, m.Header.Get("Subject"))
	}
	if m.Body != text {
		t.Fatalf("body %q, want %q", m.Body, text)
	}
	from, err := m.Header.AddressList("From")
	if err != nil || from[0].Address != "noreply@example.org" || from[0].Name != "Axön Server" {
		t.Fatalf("From %v %v", from, err)
	}
	if m.Header.Get("Message-ID") == "" || m.Header.Get("Date") == "" || m.Header.Get("Auto-Submitted") != "auto-generated" {
		t.Fatalf("headers %v", m.Header)
	}
}

func TestSMTPErrors(t *testing.T) {
	srv := testrig.StartSMTP(t)
	srv.User, srv.Password = "u", "right-password"
	msg := threepid.Message{To: "a@example.org", Subject: "s", Text: "t"}
	// A wrong password fails without the password in the error.
	err := smtpMailer(t, srv, config.SMTPNoTLS, "u", "wrong-password").Send(context.Background(), msg)
	if err == nil || strings.Contains(err.Error(), "wrong-password") {
		t.Fatalf("wrong password: %v", err)
	}
	// starttls refuses a server that does not offer it.
	err = smtpMailer(t, srv, config.SMTPStartTLS, "u", "right-password").Send(context.Background(), msg)
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("no STARTTLS: %v", err)
	}
	if n := len(srv.Mails()); n != 0 {
		t.Fatalf("%d messages delivered", n)
	}
}

// selfSigned makes a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smtp.test"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool
}

func TestSMTPTLS(t *testing.T) {
	serverTLS, pool := selfSigned(t)
	msg := threepid.Message{To: "a@example.org", Subject: "s", Text: "t"}
	for _, mode := range []string{config.SMTPStartTLS, config.SMTPTLS} {
		srv := testrig.StartSMTP(t)
		srv.User, srv.Password, srv.TLS, srv.ImplicitTLS = "u", "p", serverTLS, mode == config.SMTPTLS
		// An untrusted certificate is refused before anything is sent.
		if err := smtpMailer(t, srv, mode, "u", "p").Send(context.Background(), msg); err == nil {
			t.Fatalf("%s: untrusted certificate accepted", mode)
		}
		m := smtpMailer(t, srv, mode, "u", "p")
		m.RootCAs = pool
		if err := m.Send(context.Background(), msg); err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		got := srv.Wait(t, 1)
		if !got.Secure || got.AuthUser != "u" || len(srv.Mails()) != 1 {
			t.Fatalf("%s: %+v", mode, got)
		}
	}
}
