package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// HTTPError is a non-200 answer from the server. It keeps the status and
// (the start of) the body so that a server-side failure can be reported
// exactly as the server gave it.
type HTTPError struct {
	Method string
	Path   string
	Status int
	Body   string // at most maxErrorBody bytes
	raw    []byte
}

const (
	maxErrorBody   = 512
	requestTimeout = time.Minute
)

func (e *HTTPError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.Method, e.Path, e.Status, e.Body)
}

// client is a thin JSON-over-HTTP client. It deliberately uses net/http
// directly, so that what is measured is the server and not a client SDK.
type client struct {
	base string
	hc   *http.Client
	txn  atomic.Int64 // source of transaction IDs, unique within a run
}

func newClient(base string) *client {
	tr := &http.Transport{
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		// Every long-polling client holds one connection, and between two
		// polls that connection sits in the idle pool: the pool must hold
		// all of them or connections are closed and dialled again, which
		// would be measured as server latency.
		MaxIdleConns:        4096,
		MaxIdleConnsPerHost: 4096,
		IdleConnTimeout:     120 * time.Second,
		// The server is on loopback: compression only costs CPU on both
		// sides of a 2-core machine.
		DisableCompression: true,
		ForceAttemptHTTP2:  false,
	}
	return &client{
		base: strings.TrimRight(base, "/"),
		hc:   &http.Client{Transport: tr},
	}
}

func (c *client) close() { c.hc.CloseIdleConnections() }

// do sends one request and decodes a 200 answer into out (if not nil).
// Any other status is returned as *HTTPError.
func (c *client) do(ctx context.Context, method, path, token string, body []byte, out any) error {
	data, err := c.raw(ctx, method, path, token, body)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decoding answer: %w", method, path, err)
	}
	return nil
}

// raw is do without decoding: it returns the body of a 200 answer.
func (c *client) raw(ctx context.Context, method, path, token string, body []byte) ([]byte, error) {
	// Every request is bounded, so a server that stops answering fails the
	// benchmark instead of hanging it; long polls stay well within this.
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading answer: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		b := data
		if len(b) > maxErrorBody {
			b = b[:maxErrorBody]
		}
		return nil, &HTTPError{Method: method, Path: path, Status: resp.StatusCode, Body: string(b), raw: data}
	}
	return data, nil
}

// user is a registered account with its access token.
type user struct {
	ID    string
	Token string
}

const benchPassword = "axon-bench-password"

// register creates an account with the m.login.dummy flow, answering a 401
// user-interactive-auth challenge with its session once.
func (c *client) register(ctx context.Context, username string) (*user, error) {
	type auth struct {
		Type    string `json:"type"`
		Session string `json:"session,omitempty"`
	}
	type request struct {
		Username string `json:"username"`
		Password string `json:"password"`
		Auth     auth   `json:"auth"`
	}
	var answer struct {
		UserID      string `json:"user_id"`
		AccessToken string `json:"access_token"`
	}
	req := request{Username: username, Password: benchPassword, Auth: auth{Type: "m.login.dummy"}}
	body, _ := json.Marshal(req)
	const path = "/_matrix/client/v3/register"
	err := c.do(ctx, http.MethodPost, path, "", body, &answer)
	var he *HTTPError
	if errors.As(err, &he) && he.Status == http.StatusUnauthorized {
		var uia struct {
			Session string `json:"session"`
		}
		if json.Unmarshal(he.raw, &uia) != nil || uia.Session == "" {
			return nil, fmt.Errorf("registering %s: %w", username, err)
		}
		req.Auth.Session = uia.Session
		body, _ = json.Marshal(req)
		err = c.do(ctx, http.MethodPost, path, "", body, &answer)
	}
	if err != nil {
		return nil, fmt.Errorf("registering %s: %w", username, err)
	}
	if answer.AccessToken == "" || answer.UserID == "" {
		return nil, fmt.Errorf("registering %s: answer has no user_id or access_token", username)
	}
	return &user{ID: answer.UserID, Token: answer.AccessToken}, nil
}

func (c *client) createRoom(ctx context.Context, u *user) (string, error) {
	var answer struct {
		RoomID string `json:"room_id"`
	}
	err := c.do(ctx, http.MethodPost, "/_matrix/client/v3/createRoom", u.Token,
		[]byte(`{"preset":"public_chat"}`), &answer)
	if err != nil {
		return "", fmt.Errorf("creating a room as %s: %w", u.ID, err)
	}
	if answer.RoomID == "" {
		return "", fmt.Errorf("creating a room as %s: answer has no room_id", u.ID)
	}
	return answer.RoomID, nil
}

func (c *client) join(ctx context.Context, u *user, roomID string) error {
	err := c.do(ctx, http.MethodPost, "/_matrix/client/v3/join/"+url.PathEscape(roomID), u.Token, []byte(`{}`), nil)
	if err != nil {
		return fmt.Errorf("joining %s as %s: %w", roomID, u.ID, err)
	}
	return nil
}

// send posts one m.text message and returns its event ID.
func (c *client) send(ctx context.Context, u *user, roomID, text string) (string, error) {
	body, _ := json.Marshal(struct {
		MsgType string `json:"msgtype"`
		Body    string `json:"body"`
	}{"m.text", text})
	path := "/_matrix/client/v3/rooms/" + url.PathEscape(roomID) + "/send/m.room.message/" +
		fmt.Sprintf("bench%d", c.txn.Add(1))
	var answer struct {
		EventID string `json:"event_id"`
	}
	if err := c.do(ctx, http.MethodPut, path, u.Token, body, &answer); err != nil {
		return "", fmt.Errorf("sending as %s: %w", u.ID, err)
	}
	if answer.EventID == "" {
		return "", fmt.Errorf("sending as %s: answer has no event_id", u.ID)
	}
	return answer.EventID, nil
}

// syncResponse is the part of a /sync answer the benchmark looks at.
type syncResponse struct {
	NextBatch string `json:"next_batch"`
	Rooms     struct {
		Join map[string]struct {
			Timeline struct {
				Events []struct {
					EventID string `json:"event_id"`
					Type    string `json:"type"`
				} `json:"events"`
				Limited bool `json:"limited"`
			} `json:"timeline"`
		} `json:"join"`
	} `json:"rooms"`
}

// syncPath builds a /sync request path. An empty since makes an initial
// sync; filter is an inline JSON filter or empty.
func syncPath(since, filter string, timeout time.Duration) string {
	q := url.Values{}
	if since != "" {
		q.Set("since", since)
	}
	if filter != "" {
		q.Set("filter", filter)
	}
	if timeout > 0 {
		q.Set("timeout", fmt.Sprint(timeout.Milliseconds()))
	}
	p := "/_matrix/client/v3/sync"
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	return p
}
