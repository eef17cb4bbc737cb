package httpapi

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"
)

// bodyDeadline bounds the time a request body may take to arrive, so that
// a client declaring a large body and sending it a byte at a time cannot
// hold its connection (and the handler waiting for the body) for as long
// as it likes. The http.Server's own timeouts cannot do this: its
// ReadTimeout would also cut long-polls, which read nothing for minutes.
//
// The deadline is BodyTimeout after the request arrived plus one second
// per BodyMinRate bytes received so far: a body of any size passes as
// long as it keeps arriving at the minimum rate (media uploads get time in
// proportion to their size), while a dribbling one is cut after about
// BodyTimeout. It is set before the handler runs, so that it also bounds
// the server's reading of a body the handler ignored, and removed once
// the body has been read, so that it cannot end the long-poll that may
// follow.
func (m *Mux) bodyDeadline(next http.Handler) http.Handler {
	if m.opts.BodyTimeout <= 0 || m.opts.BodyMinRate <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		b := &deadlineBody{ReadCloser: r.Body, w: w, rc: http.NewResponseController(w), start: time.Now(),
			timeout: m.opts.BodyTimeout, rate: m.opts.BodyMinRate}
		if err := b.rc.SetReadDeadline(b.deadline()); err != nil {
			next.ServeHTTP(w, r) // a writer without deadlines (tests' recorders)
			return
		}
		r.Body = b
		next.ServeHTTP(w, r)
	})
}

type deadlineBody struct {
	io.ReadCloser
	w       http.ResponseWriter
	rc      *http.ResponseController
	start   time.Time
	timeout time.Duration
	rate    int64
	read    int64
	done    bool
}

func (b *deadlineBody) deadline() time.Time {
	return b.start.Add(b.timeout + time.Duration(float64(b.read)/float64(b.rate)*float64(time.Second)))
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if b.done {
		return b.ReadCloser.Read(p)
	}
	b.rc.SetReadDeadline(b.deadline())
	n, err := b.ReadCloser.Read(p)
	b.read += int64(n)
	switch {
	case err == io.EOF:
		b.done = true
		b.rc.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The connection's input is now unusable mid-body: answer (if the
		// client still reads) and close it.
		b.w.Header().Set("Connection", "close")
	}
	return n, err
}
