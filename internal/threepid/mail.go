package threepid

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"strconv"
	"strings"
	"time"

	"github.com/axon-matrix/axon/internal/config"
)

// Message is one plain-text email.
type Message struct {
	To      string
	Subject string
	Text    string
}

// Mailer sends email. The SMTP implementation is the real one; tests may
// substitute their own.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// sendTimeout bounds one whole SMTP conversation: a request waits for
// it, and net/smtp has no timeouts of its own.
const sendTimeout = 30 * time.Second

// SMTP sends mail through an SMTP server (net/smtp).
type SMTP struct {
	Host     string
	Port     int
	Username string
	Password string
	TLS      string // config.SMTPStartTLS, SMTPTLS or SMTPNoTLS
	From     *mail.Address
	// Hello is the name given in EHLO.
	Hello string
	// RootCAs verifies the server's certificate; nil uses the system's
	// (SSL_CERT_FILE works as usual).
	RootCAs *x509.CertPool
}

// NewSMTP builds the mailer from the email settings (nil when email is not
// configured). The password is read here, once, from the setting or its
// file.
func NewSMTP(cfg *config.Config) (*SMTP, error) {
	e := cfg.Email
	if !e.Enabled() {
		return nil, nil
	}
	pw, err := e.Password()
	if err != nil {
		return nil, err
	}
	from, err := mail.ParseAddress(e.From)
	if err != nil {
		return nil, fmt.Errorf("config: email.from: %w", err)
	}
	hello, _, err := net.SplitHostPort(cfg.ServerName)
	if err != nil {
		hello = cfg.ServerName
	}
	return &SMTP{Host: e.SMTPHost, Port: int(e.SMTPPort), Username: e.SMTPUsername, Password: pw, TLS: e.SMTPTLS, From: from, Hello: hello}, nil
}

func (m *SMTP) tlsConfig() *tls.Config {
	return &tls.Config{ServerName: strings.Trim(m.Host, "[]"), MinVersion: tls.VersionTLS12, RootCAs: m.RootCAs}
}

// Send delivers one message. Errors never include the password.
func (m *SMTP) Send(ctx context.Context, msg Message) error {
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	addr := net.JoinHostPort(strings.Trim(m.Host, "[]"), strconv.Itoa(m.Port))
	var conn net.Conn
	var err error
	if m.TLS == config.SMTPTLS {
		d := &tls.Dialer{Config: m.tlsConfig()}
		conn, err = d.DialContext(ctx, "tcp", addr)
	} else {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("smtp: connect to %s: %w", addr, err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	// Closing the connection when ctx ends unblocks a stalled exchange.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	c, err := smtp.NewClient(conn, strings.Trim(m.Host, "[]"))
	if err != nil {
		return fmt.Errorf("smtp: greeting: %w", err)
	}
	defer c.Close()
	if err := c.Hello(m.Hello); err != nil {
		return fmt.Errorf("smtp: EHLO: %w", err)
	}
	if m.TLS == config.SMTPStartTLS {
		// Without STARTTLS the password and the validation links would
		// cross the network in clear: refuse rather than fall back.
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errors.New("smtp: the server does not offer STARTTLS (set email.smtp_tls to tls or none if that is intended)")
		}
		if err := c.StartTLS(m.tlsConfig()); err != nil {
			return fmt.Errorf("smtp: STARTTLS: %w", err)
		}
	}
	if m.Username != "" {
		// PlainAuth itself refuses to send the password over an
		// unencrypted connection to anything but localhost.
		if err := c.Auth(smtp.PlainAuth("", m.Username, m.Password, strings.Trim(m.Host, "[]"))); err != nil {
			return fmt.Errorf("smtp: login as %s: %w", m.Username, err)
		}
	}
	if err := c.Mail(m.From.Address); err != nil {
		return fmt.Errorf("smtp: MAIL FROM: %w", err)
	}
	if err := c.Rcpt(msg.To); err != nil {
		return fmt.Errorf("smtp: RCPT TO: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp: DATA: %w", err)
	}
	if _, err := w.Write(compose(m.From, msg, time.Now())); err != nil {
		return fmt.Errorf("smtp: writing message: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp: message refused: %w", err)
	}
	return c.Quit()
}

// compose renders the message with its headers. The recipient was
// validated (no CR, LF or quotes can reach a header); the subject is
// encoded; the body is quoted-printable, so lines stay short and non-ASCII
// text survives any relay.
func compose(from *mail.Address, msg Message, now time.Time) []byte {
	var b bytes.Buffer
	domain := from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	hdr := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	hdr("From", from.String())
	hdr("To", "<"+msg.To+">")
	hdr("Subject", mime.QEncoding.Encode("utf-8", msg.Subject))
	hdr("Date", now.Format(time.RFC1123Z))
	hdr("Message-ID", "<"+rand.Text()+"@"+domain+">")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "quoted-printable")
	// Tells mail systems not to answer it with out-of-office replies.
	hdr("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	qp.Write([]byte(strings.ReplaceAll(msg.Text, "\n", "\r\n")))
	qp.Close()
	return b.Bytes()
}
