package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/testrig"
)

func bodyLimits(timeout time.Duration, minRate int64) testrig.Option {
	return func(c *config.Config) {
		c.Connections.RequestBodyTimeout = timeout
		c.Connections.RequestBodyMinRate = minRate
	}
}

func dial(t *testing.T, rig *testrig.Rig) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(rig.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedWithin reads from c until the server closes it and reports how
// long that took, or false if it is still open after max.
func closedWithin(c net.Conn, max time.Duration) (time.Duration, bool) {
	start := time.Now()
	c.SetReadDeadline(start.Add(max))
	_, err := io.Copy(io.Discard, c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, false
	}
	return time.Since(start), true
}

// TestDribbledBodyIsCut: an unauthenticated client declaring a 100 kB
// login body and sending it a byte at a time loses its connection after
// about request_body_timeout, instead of holding it as long as it likes.
func TestDribbledBodyIsCut(t *testing.T) {
	rig := testrig.Start(t, bodyLimits(time.Second, 1024))
	c := dial(t, rig)
	fmt.Fprintf(c, "POST /_matrix/client/v3/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
				if _, err := c.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	took, closed := closedWithin(c, 6*time.Second)
	if !closed {
		t.Fatal("dribbling connection still open after 6s (request_body_timeout 1s)")
	}
	t.Logf("dribbling connection closed after %v", took.Round(time.Millisecond))
	if took > 3*time.Second {
		t.Errorf("closed after %v, want about 1s", took)
	}
}

// TestIgnoredBodyIsCut: a body sent to a route that does not read it (an
// unknown path) is bounded too, while the server discards it.
func TestIgnoredBodyIsCut(t *testing.T) {
	rig := testrig.Start(t, bodyLimits(time.Second, 1024))
	c := dial(t, rig)
	fmt.Fprintf(c, "POST /_matrix/client/v3/nothing_here HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{")
	if took, closed := closedWithin(c, 6*time.Second); !closed || took > 3*time.Second {
		t.Fatalf("closed=%v after %v, want closed after about 1s", closed, took)
	}
}

// TestSlowUploadAtMinimumRatePasses: a body that keeps arriving at the
// minimum rate gets time in proportion to its size (a media upload taking
// longer than request_body_timeout), and one slower than it is cut.
func TestSlowUploadAtMinimumRatePasses(t *testing.T) {
	rig := testrig.Start(t, bodyLimits(time.Second, 16<<10))
	alice := rig.CreateUser("alice")
	upload := func(chunk int, every time.Duration, total int) (int, error) {
		pr, pw := io.Pipe()
		go func() {
			for sent := 0; sent < total; sent += chunk {
				time.Sleep(every)
				if _, err := pw.Write(bytes.Repeat([]byte("x"), chunk)); err != nil {
					return
				}
			}
			pw.Close()
		}()
		req, _ := http.NewRequest(http.MethodPost, rig.URL+"/_matrix/media/v3/upload", pr)
		req.ContentLength = int64(total)
		req.Header.Set("Authorization", "Bearer "+alice.AccessToken)
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			pr.CloseWithError(err)
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	// 48 KiB at 32 KiB/s: 1.5 s, within 1 s + 48 KiB / 16 KiB/s = 4 s.
	start := time.Now()
	if status, err := upload(4<<10, 125*time.Millisecond, 48<<10); err != nil || status != http.StatusOK {
		t.Fatalf("upload at twice the minimum rate: %d %v", status, err)
	}
	t.Logf("upload at twice the minimum rate took %v", time.Since(start).Round(time.Millisecond))
	// 48 KiB at 4 KiB/s: 12 s, far past its allowance.
	start = time.Now()
	status, err := upload(1<<10, 250*time.Millisecond, 48<<10)
	if err == nil && status == http.StatusOK {
		t.Fatal("upload at a quarter of the minimum rate was accepted")
	}
	if took := time.Since(start); took > 6*time.Second {
		t.Errorf("slow upload cut after %v, want within its allowance (about 1.3 s)", took)
	}
}

// TestLongPollAfterBodyIsNotCut: the body deadline is lifted once the body
// is read, so a POST long-poll (sliding sync) waits its full timeout.
func TestLongPollAfterBodyIsNotCut(t *testing.T) {
	rig := testrig.Start(t, bodyLimits(500*time.Millisecond, 1024))
	alice := rig.CreateUser("alice")
	path := "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"
	status, first := rig.JSON(t, http.MethodPost, path, alice.AccessToken, map[string]any{})
	if status != http.StatusOK {
		t.Fatalf("first sliding sync: %d %v", status, first)
	}
	start := time.Now()
	status, second := rig.JSON(t, http.MethodPost, path+"?timeout=2000&pos="+first["pos"].(string), alice.AccessToken, map[string]any{})
	if status != http.StatusOK {
		t.Fatalf("long-poll: %d %v", status, second)
	}
	if took := time.Since(start); took < 1800*time.Millisecond {
		t.Errorf("long-poll returned after %v, want its 2s timeout", took)
	}
}

// TestRateLimitedConnectionIsClosed: a 429 ends the connection, so a flood
// of refused requests cannot keep connections (and memory) held.
func TestRateLimitedConnectionIsClosed(t *testing.T) {
	rig := testrig.Start(t, func(c *config.Config) {
		c.RateLimits = true
		c.RateLimit.Default = config.RateLimit{PerSecond: 0.1, Burst: 2}
	})
	c := dial(t, rig)
	br := bufio.NewReader(c)
	for i := 1; ; i++ {
		fmt.Fprintf(c, "GET /_matrix/client/v3/publicRooms HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests {
			if i > 5 {
				t.Fatalf("no 429 after %d requests", i)
			}
			continue
		}
		if !resp.Close {
			t.Error("429 without Connection: close")
		}
		break
	}
	if _, closed := closedWithin(c, 2*time.Second); !closed {
		t.Fatal("connection still open after a 429")
	}
}

// TestConnectionsPerAddressCapped: connections from one address past
// max_per_address are closed at once, those within it are served, a slot
// freed is reusable, and the server's goroutines stay bounded however many
// connections are attempted.
func TestConnectionsPerAddressCapped(t *testing.T) {
	const limit, attempts = 20, 1000
	rig := testrig.Start(t, func(c *config.Config) {
		c.Connections.MaxPerAddress = limit
		c.Connections.LimitLoopback = true
	})
	rig.Do(http.MethodGet, "/_matrix/client/versions", "", nil)
	http.DefaultClient.CloseIdleConnections()
	time.Sleep(100 * time.Millisecond)
	before := runtime.NumGoroutine()
	conns := make([]net.Conn, attempts)
	for i := range conns {
		conns[i] = dial(t, rig)
	}
	time.Sleep(300 * time.Millisecond)
	grew := runtime.NumGoroutine() - before
	var open []net.Conn
	closed := 0
	for _, c := range conns {
		if _, isClosed := closedWithin(c, 20*time.Millisecond); isClosed {
			closed++
		} else {
			open = append(open, c)
		}
	}
	t.Logf("%d connections: %d open, %d closed, goroutines +%d", attempts, len(open), closed, grew)
	if len(open) != limit {
		t.Fatalf("%d connections open, want %d", len(open), limit)
	}
	if grew > limit+20 {
		t.Errorf("goroutines grew by %d for %d connections (cap %d)", grew, attempts, limit)
	}
	// An accepted connection is served.
	fmt.Fprintf(open[0], "GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\n\r\n")
	open[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(open[0]), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("request on an accepted connection: %v %v", resp, err)
	}
	var versions map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&versions); err != nil || versions["versions"] == nil {
		t.Fatalf("versions: %v %v", versions, err)
	}
	// Closing connections frees their slots.
	for _, c := range open[:5] {
		c.Close()
	}
	time.Sleep(200 * time.Millisecond)
	reopened := 0
	for range 5 {
		if _, isClosed := closedWithin(dial(t, rig), 100*time.Millisecond); !isClosed {
			reopened++
		}
	}
	if reopened != 5 {
		t.Errorf("%d of 5 connections accepted after 5 were closed", reopened)
	}
}

// TestConnectionsTotalCapped: past max_total, connections are closed at
// once; loopback is not counted per address by default, only in total.
func TestConnectionsTotalCapped(t *testing.T) {
	rig := testrig.Start(t, func(c *config.Config) {
		c.Connections.MaxTotal = 10
		c.Connections.MaxPerAddress = 2 // not applied: loopback without limit_loopback
	})
	open := 0
	for range 15 {
		if _, closed := closedWithin(dial(t, rig), 100*time.Millisecond); !closed {
			open++
		}
	}
	if open != 10 {
		t.Fatalf("%d of 15 connections open, want max_total 10", open)
	}
}
