package testrig

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"io"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/axon-matrix/axon/internal/config"
)

// Mail is one message received by an SMTPServer.
type Mail struct {
	From     string   // envelope sender
	To       []string // envelope recipients
	AuthUser string   // user of AUTH PLAIN, "" without login
	AuthPass string
	Header   mail.Header
	Body     string // decoded (quoted-printable undone)
	// Secure reports whether the login (if any) happened over TLS.
	Secure bool
}

// SMTPServer is a minimal SMTP server on 127.0.0.1 that keeps what it
// receives, for tests of the email Axon sends. It speaks just enough of
// RFC 5321 for net/smtp: EHLO, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP,
// QUIT. No TLS.
type SMTPServer struct {
	Addr string
	// User and Password, when set, are required through AUTH PLAIN.
	User, Password string
	// TLS, when set, is offered through STARTTLS, or, with ImplicitTLS,
	// spoken from the first byte (as on port 465).
	TLS         *tls.Config
	ImplicitTLS bool

	ln   net.Listener
	mu   sync.Mutex
	mail []Mail
	got  chan struct{}
	wg   sync.WaitGroup
}

// StartSMTP starts a server, stopped when the test ends.
func StartSMTP(t testing.TB) *SMTPServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &SMTPServer{Addr: ln.Addr().String(), ln: ln, got: make(chan struct{}, 100)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

// WithSMTP configures the rig to send email through s (no TLS, as to a
// local relay).
func WithSMTP(s *SMTPServer) Option {
	return func(c *config.Config) {
		host, port, _ := net.SplitHostPort(s.Addr)
		p, _ := strconv.ParseInt(port, 10, 64)
		c.Email = config.EmailSettings{SMTPHost: host, SMTPPort: p, SMTPTLS: config.SMTPNoTLS,
			From: "Axon <noreply@axon.test>", SMTPUsername: s.User, SMTPPassword: s.Password}
	}
}

// Mails returns the messages received so far.
func (s *SMTPServer) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mail...)
}

// Wait returns the n-th message (1-based), waiting up to a few seconds.
func (s *SMTPServer) Wait(t testing.TB, n int) Mail {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		if m := s.Mails(); len(m) >= n {
			return m[n-1]
		}
		select {
		case <-s.got:
		case <-deadline:
			t.Fatalf("SMTP: message %d never arrived (have %d)", n, len(s.Mails()))
		}
	}
}

func (s *SMTPServer) serve(c net.Conn) {
	defer func() { c.Close() }()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	secure := false
	if s.ImplicitTLS {
		c, secure = tls.Server(c, s.TLS), true
	}
	r := bufio.NewReader(c)
	reply := func(line string) { io.WriteString(c, line+"\r\n") }
	reply("220 smtp.test ESMTP")
	var cur Mail
	authed := s.User == ""
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			reply("250-smtp.test")
			if s.TLS != nil && !secure {
				reply("250-STARTTLS")
			}
			reply("250-AUTH PLAIN")
			reply("250 8BITMIME")
		case "STARTTLS":
			if s.TLS == nil || secure {
				reply("502 not implemented")
				continue
			}
			reply("220 go ahead")
			c, secure = tls.Server(c, s.TLS), true
			r = bufio.NewReader(c)
			cur = Mail{}
		case "AUTH":
			mech, resp, _ := strings.Cut(arg, " ")
			raw, err := base64.StdEncoding.DecodeString(resp)
			parts := strings.Split(string(raw), "\x00")
			if strings.ToUpper(mech) != "PLAIN" || err != nil || len(parts) != 3 {
				reply("501 bad AUTH")
				continue
			}
			cur.AuthUser, cur.AuthPass, cur.Secure = parts[1], parts[2], secure
			if parts[1] != s.User || parts[2] != s.Password {
				reply("535 authentication failed")
				continue
			}
			authed = true
			reply("235 ok")
		case "MAIL":
			if !authed {
				reply("530 authentication required")
				continue
			}
			cur.From = angle(arg)
			reply("250 ok")
		case "RCPT":
			cur.To = append(cur.To, angle(arg))
			reply("250 ok")
		case "DATA":
			reply("354 go ahead")
			var data strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				data.WriteString(strings.TrimPrefix(l, "."))
			}
			msg, err := mail.ReadMessage(strings.NewReader(data.String()))
			if err != nil {
				reply("554 unparsable message")
				continue
			}
			cur.Header = msg.Header
			var body io.Reader = msg.Body
			if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
				body = quotedprintable.NewReader(body)
			}
			b, _ := io.ReadAll(body)
			cur.Body = strings.ReplaceAll(string(b), "\r\n", "\n")
			s.mu.Lock()
			s.mail = append(s.mail, cur)
			s.mu.Unlock()
			select {
			case s.got <- struct{}{}:
			default:
			}
			cur = Mail{AuthUser: cur.AuthUser, AuthPass: cur.AuthPass, Secure: cur.Secure}
			reply("250 queued")
		case "RSET":
			cur = Mail{AuthUser: cur.AuthUser, AuthPass: cur.AuthPass, Secure: cur.Secure}
			reply("250 ok")
		case "NOOP":
			reply("250 ok")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 not implemented")
		}
	}
}

// angle returns the path between < and > of a MAIL or RCPT argument.
func angle(arg string) string {
	_, rest, _ := strings.Cut(arg, "<")
	path, _, _ := strings.Cut(rest, ">")
	return path
}
