package appservice

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
	"sort"
	"strings"
	"time"

	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/storage"
)

// maxResponseBytes bounds what is read of a service's answer.
const maxResponseBytes = 1 << 20

// call makes one authenticated request to a service and returns the status
// and (bounded) body. A service that does not know a /_matrix/app/v1 path
// is asked again at the path of the older drafts, as the spec asks: every
// time, so that an updated service is noticed at once.
func (s *Service) call(ctx context.Context, c *http.Client, reg *Registration, method, path string, query url.Values, body []byte) (int, []byte, error) {
	status, resp, err := s.call1(ctx, c, reg, method, path, query, body, false)
	if err != nil || !unsupported(status, resp) {
		return status, resp, err
	}
	legacy := legacyPath(path)
	if legacy == "" {
		return status, resp, err
	}
	lstatus, lresp, lerr := s.call1(ctx, c, reg, method, legacy, query, body, true)
	if lerr != nil || unsupported(lstatus, lresp) {
		return status, resp, nil // the v1 answer is the one to report
	}
	return lstatus, lresp, nil
}

// legacyPath maps a v1 path to the path of the drafts before it ("" for
// endpoints that had none).
func legacyPath(path string) string {
	rest, ok := strings.CutPrefix(path, "/_matrix/app/v1/")
	if !ok {
		return ""
	}
	switch {
	case strings.HasPrefix(rest, "transactions/"), strings.HasPrefix(rest, "users/"), strings.HasPrefix(rest, "rooms/"):
		return "/" + rest
	case strings.HasPrefix(rest, "thirdparty/"):
		return "/_matrix/app/unstable/" + rest
	}
	return ""
}

// unsupported reports whether an answer means the service does not know
// the endpoint: 404, 405 or 501, unless it is a Matrix error other than
// M_UNRECOGNIZED (a 404 M_NOT_FOUND from a user query means "no such user").
func unsupported(status int, body []byte) bool {
	if status != http.StatusNotFound && status != http.StatusMethodNotAllowed && status != http.StatusNotImplemented {
		return false
	}
	var e struct {
		Errcode string `json:"errcode"`
	}
	if json.Unmarshal(body, &e) == nil && e.Errcode != "" && e.Errcode != "M_UNRECOGNIZED" {
		return false
	}
	return true
}

func (s *Service) call1(ctx context.Context, c *http.Client, reg *Registration, method, path string, query url.Values, body []byte, legacy bool) (int, []byte, error) {
	if reg.URL == "" {
		return 0, nil, errNoURL
	}
	if legacy {
		// Services of the older drafts read the token from the query.
		q := url.Values{}
		for k, v := range query {
			q[k] = v
		}
		q.Set("access_token", reg.HSToken)
		query = q
	}
	u := reg.URL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+reg.HSToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if legacy && errors.As(err, &ue) {
			err = fmt.Errorf("%s %s: %w", method, path, ue.Err) // the URL holds the hs_token
		}
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return resp.StatusCode, nil, err
	}
	return resp.StatusCode, b, nil
}

// Ping asks the service asID to answer POST /_matrix/app/v1/ping, on behalf
// of caller (the service whose as_token made the request, "" if none), and
// returns how long that took.
func (s *Service) Ping(ctx context.Context, asID, caller, txnID string) (time.Duration, error) {
	reg := s.ByID(asID)
	if reg == nil || caller != asID {
		return 0, mxerr.Forbidden("Provided access token is not the application service's as_token")
	}
	if reg.URL == "" {
		return 0, mxerr.New("M_URL_NOT_SET", "Application service doesn't have a URL configured")
	}
	body := map[string]string{}
	if txnID != "" {
		body["transaction_id"] = txnID
	}
	b, _ := json.Marshal(body)
	start := time.Now()
	status, resp, err := s.call(ctx, s.queryClient, reg, http.MethodPost, "/_matrix/app/v1/ping", nil, b)
	took := time.Since(start)
	if err == nil {
		s.answered(reg)
	}
	if err != nil {
		if isTimeout(err) {
			return 0, mxerr.New("M_CONNECTION_TIMEOUT", "Connection to application service timed out").WithStatus(http.StatusGatewayTimeout)
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		s.log.Info("appservice ping failed", "appservice", reg.ID, "err", err)
		return 0, mxerr.New("M_CONNECTION_FAILED", "Connection to application service failed").WithStatus(http.StatusBadGateway)
	}
	if status < 200 || status > 299 {
		e := mxerr.New("M_BAD_STATUS", "Ping returned status %d", status).WithStatus(http.StatusBadGateway)
		e.Extra = map[string]any{"status": status, "body": string(resp)}
		return 0, e
	}
	return took, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// QueryAlias asks the services whose aliases namespaces cover alias
// whether it exists (GET /_matrix/app/v1/rooms/{alias}); a service that
// answers 200 has created it. It reports whether one did; see queryExists
// for the errors.
func (s *Service) QueryAlias(ctx context.Context, alias string) (bool, error) {
	return s.queryExists(ctx, "/_matrix/app/v1/rooms/"+url.PathEscape(alias), func(reg *Registration) bool {
		return reg.InAliasNamespace(alias)
	})
}

// QueryUser asks the services whose users namespaces cover userID whether
// it exists (GET /_matrix/app/v1/users/{userId}); a service that answers
// 200 has registered it. See queryExists for the errors.
func (s *Service) QueryUser(ctx context.Context, userID string) (bool, error) {
	return s.queryExists(ctx, "/_matrix/app/v1/users/"+url.PathEscape(userID), func(reg *Registration) bool {
		return userID != reg.Sender && reg.InUserNamespace(userID)
	})
}

// queryCooldown is how long a service that timed out or could not be
// reached is not asked again: the requests that would have asked it fail
// at once with the same error. A bridge that is down would otherwise hold
// every such client request (and a connection) for the whole timeout, and
// clients retrying would pile up more. A transaction or ping the service
// accepts ends the cooldown early.
const queryCooldown = 30 * time.Second

// queryExists asks each service that match selects (in registration order,
// each within the query timeout; namespaces seldom overlap, so that is
// mostly one) whether the entity at path exists, and
// reports whether one answered 200. A 404 (or an endpoint the service
// does not know) means no. When no service said yes and one did not
// answer properly, the error tells the client why, as the spec asks
// instead of a misleading 404: 408 M_CONNECTION_TIMEOUT for a timeout,
// 502 M_CONNECTION_FAILED for an unreachable service, 502 M_BAD_STATUS for
// any other answer. Unlike the spec's "retry several times", each service
// is asked once: retries would multiply the client's wait, and a service
// that did not answer in time rarely does a moment later.
func (s *Service) queryExists(ctx context.Context, path string, match func(*Registration) bool) (bool, error) {
	var regs []*Registration
	for _, reg := range s.regs {
		if reg.URL != "" && match(reg) {
			regs = append(regs, reg)
		}
	}
	if len(regs) == 0 {
		return false, nil
	}
	var firstErr error
	for _, reg := range regs {
		ok, err := s.ask(ctx, reg, path)
		if ok {
			return true, nil
		}
		if ctx.Err() != nil {
			return false, ctx.Err() // the client went away
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return false, firstErr
}

// queryFlight is one query in progress, which concurrent identical
// queries wait for instead of asking the service again.
type queryFlight struct {
	done   chan struct{}
	exists bool
	err    error
}

// ask makes one existence query of a service, shared with the identical
// queries made meanwhile and refused at once during a cooldown.
func (s *Service) ask(ctx context.Context, reg *Registration, path string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.queryClient.Timeout)
	defer cancel()
	key := reg.ID + " " + path
	asked := s.now()
	if err := s.cooled(reg); err != nil {
		return false, err
	}
	sem := s.querySlots(reg)
	s.qmu.Lock()
	f := s.flights[key]
	if f == nil {
		f = &queryFlight{done: make(chan struct{})}
		if s.flights == nil {
			s.flights = map[string]*queryFlight{}
		}
		s.flights[key] = f
		// The query is the service's, not this client's: a client
		// that goes away must not fail the others waiting for it.
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.queryClient.Timeout)
		go func() {
			defer cancel()
			select {
			case sem <- struct{}{}:
				f.exists, f.err = s.askOnce(qctx, reg, path, asked)
				<-sem
			case <-qctx.Done():
				// The callers waiting for this query have given up
				// too, and started a cooldown: a service this busy
				// answers too slowly.
				f.err = mxerr.New("M_CONNECTION_TIMEOUT", "Application service %s is busy with other queries", reg.ID).WithStatus(http.StatusRequestTimeout)
			}
			s.qmu.Lock()
			delete(s.flights, key)
			s.qmu.Unlock()
			close(f.done)
		}()
	}
	s.qmu.Unlock()
	select {
	case <-f.done:
		return f.exists, f.err
	case <-ctx.Done():
		if ctxErr := ctx.Err(); errors.Is(ctxErr, context.DeadlineExceeded) {
			// The query itself (or its wait for a slot) ends a
			// moment later; the cooldown starts now, for the
			// requests that come meanwhile.
			err := queryTimeoutErr(reg)
			s.cool(reg, err, asked)
			return false, err
		}
		return false, ctx.Err()
	}
}

func queryTimeoutErr(reg *Registration) error {
	return mxerr.New("M_CONNECTION_TIMEOUT", "Application service %s did not answer in time", reg.ID).WithStatus(http.StatusRequestTimeout)
}

// askOnce makes the request and turns its outcome into an answer or a
// client error; timeouts and connection failures start a cooldown.
func (s *Service) askOnce(ctx context.Context, reg *Registration, path string, asked time.Time) (bool, error) {
	status, _, err := s.call(ctx, s.queryClient, reg, http.MethodGet, path, nil, nil)
	var out error
	switch {
	case err != nil && isTimeout(err):
		out = queryTimeoutErr(reg)
	case err != nil:
		out = mxerr.New("M_CONNECTION_FAILED", "Application service %s could not be reached", reg.ID).WithStatus(http.StatusBadGateway)
	case status == http.StatusOK:
		return true, nil
	case status == http.StatusNotFound || status == http.StatusMethodNotAllowed || status == http.StatusNotImplemented:
		return false, nil
	default:
		s.log.Info("appservice query answered with an error", "appservice", reg.ID, "status", status)
		e := mxerr.New("M_BAD_STATUS", "Application service %s answered with status %d", reg.ID, status).WithStatus(http.StatusBadGateway)
		e.Extra = map[string]any{"status": status}
		return false, e
	}
	s.log.Info("appservice query failed", "appservice", reg.ID, "err", err)
	s.cool(reg, out, asked)
	return false, out
}

// maxQueriesInFlight bounds the existence queries a service is asked at
// once. Lookups of distinct unknown users cannot share a query, and
// profile lookups need no account: without a bound, a burst of them
// would become as many concurrent requests to the bridge.
const maxQueriesInFlight = 8

// querySlots returns the semaphore of a service's queries.
func (s *Service) querySlots(reg *Registration) chan struct{} {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if s.qslots == nil {
		s.qslots = map[string]chan struct{}{}
	}
	sem := s.qslots[reg.ID]
	if sem == nil {
		sem = make(chan struct{}, maxQueriesInFlight)
		s.qslots[reg.ID] = sem
	}
	return sem
}

// cooled returns the error of a service in query cooldown, or nil.
func (s *Service) cooled(reg *Registration) error {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if err := s.cooling[reg.ID]; err != nil && s.now().Before(s.coolUntil[reg.ID]) {
		return err
	}
	return nil
}

// noteFailure starts a cooldown after a third-party lookup that timed out
// or could not connect, as for existence queries.
func (s *Service) noteFailure(reg *Registration, err error, asked time.Time) {
	switch {
	case err == nil || errors.Is(err, errNoURL) || errors.Is(err, context.Canceled):
		// Not a failure of the service (a client that went away).
	case isTimeout(err):
		s.cool(reg, queryTimeoutErr(reg), asked)
	default:
		s.cool(reg, mxerr.New("M_CONNECTION_FAILED", "Application service %s could not be reached", reg.ID).WithStatus(http.StatusBadGateway), asked)
	}
}

// cool starts a service's query cooldown with the error to answer
// meanwhile, unless the service has answered another request since the
// failed query was made.
func (s *Service) cool(reg *Registration, err error, asked time.Time) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if s.answeredAt[reg.ID].After(asked) {
		return
	}
	if s.cooling == nil {
		s.cooling, s.coolUntil = map[string]error{}, map[string]time.Time{}
	}
	if s.cooling[reg.ID] == nil {
		s.log.Info("appservice not answering, queries to it fail at once for a while", "appservice", reg.ID, "cooldown", queryCooldown)
	}
	s.cooling[reg.ID], s.coolUntil[reg.ID] = err, s.now().Add(queryCooldown)
}

// answered ends a service's query cooldown: it has just taken a request.
func (s *Service) answered(reg *Registration) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	delete(s.cooling, reg.ID)
	if s.answeredAt == nil {
		s.answeredAt = map[string]time.Time{}
	}
	s.answeredAt[reg.ID] = s.now()
}

// InstanceID names a protocol instance of one service on this server, as
// clients pass it back in third_party_instance_id ("<as id>|<network id>",
// the form Synapse uses).
func InstanceID(asID, networkID string) string { return asID + "|" + networkID }

// Protocols returns the metadata of every protocol a service declared and
// answered for, keyed by protocol name.
func (s *Service) Protocols(ctx context.Context) map[string]map[string]any {
	names := map[string]bool{}
	for _, reg := range s.regs {
		for _, p := range reg.Protocols {
			names[p] = true
		}
	}
	out := map[string]map[string]any{}
	for p := range names {
		if meta := s.protocol(ctx, p); meta != nil {
			out[p] = meta
		}
	}
	return out
}

// Protocol returns one protocol's metadata, or M_NOT_FOUND.
func (s *Service) Protocol(ctx context.Context, protocol string) (map[string]any, error) {
	if meta := s.protocol(ctx, protocol); meta != nil {
		return meta, nil
	}
	return nil, mxerr.NotFound("Unknown protocol %s", protocol)
}

// protocol merges the answers of the services declaring protocol: the
// first answer's fields, with the instances of all of them, each given its
// instance_id.
func (s *Service) protocol(ctx context.Context, protocol string) map[string]any {
	var merged map[string]any
	instances := []any{}
	for _, reg := range s.regs {
		if !reg.HasProtocol(protocol) || s.cooled(reg) != nil {
			continue
		}
		asked := s.now()
		status, body, err := s.call(ctx, s.queryClient, reg, http.MethodGet, "/_matrix/app/v1/thirdparty/protocol/"+url.PathEscape(protocol), nil, nil)
		s.noteFailure(reg, err, asked)
		if err != nil || status != http.StatusOK {
			s.log.Info("appservice protocol query failed", "appservice", reg.ID, "protocol", protocol, "status", status, "err", err)
			continue
		}
		var meta map[string]any
		if json.Unmarshal(body, &meta) != nil || meta == nil {
			s.log.Info("appservice protocol answer is not an object", "appservice", reg.ID, "protocol", protocol)
			continue
		}
		if list, ok := meta["instances"].([]any); ok {
			for _, item := range list {
				inst, ok := item.(map[string]any)
				if !ok {
					continue
				}
				network, _ := inst["network_id"].(string)
				if network == "" {
					continue // without it the instance cannot be named
				}
				inst["instance_id"] = InstanceID(reg.ID, network)
				instances = append(instances, inst)
			}
		}
		if merged == nil {
			merged = meta
		}
	}
	if merged == nil {
		return nil
	}
	merged["instances"] = instances
	return merged
}

// ThirdPartyKind is what a third-party lookup looks for.
type ThirdPartyKind string

// The kinds of third-party lookups.
const (
	ThirdPartyLocation ThirdPartyKind = "location"
	ThirdPartyUser     ThirdPartyKind = "user"
)

// LookupByProtocol forwards a location or user search in one protocol to
// the services providing it and concatenates their answers. Unknown
// protocols and empty results are M_NOT_FOUND, as the spec says.
func (s *Service) LookupByProtocol(ctx context.Context, kind ThirdPartyKind, protocol string, fields url.Values) ([]any, error) {
	var regs []*Registration
	for _, reg := range s.regs {
		if reg.HasProtocol(protocol) {
			regs = append(regs, reg)
		}
	}
	if len(regs) == 0 {
		return nil, mxerr.NotFound("Unknown protocol %s", protocol)
	}
	out := s.lookup(ctx, regs, "/_matrix/app/v1/thirdparty/"+string(kind)+"/"+url.PathEscape(protocol), fields, protocol)
	if len(out) == 0 {
		return nil, mxerr.NotFound("No %s found", kind)
	}
	return out, nil
}

// LookupReverse finds the third-party locations of a Matrix room alias
// (kind location, key "alias") or the third-party users of a Matrix user
// (kind user, key "userid"), asking every service that declares protocols.
func (s *Service) LookupReverse(ctx context.Context, kind ThirdPartyKind, value string) ([]any, error) {
	var regs []*Registration
	for _, reg := range s.regs {
		if len(reg.Protocols) > 0 {
			regs = append(regs, reg)
		}
	}
	key := "alias"
	if kind == ThirdPartyUser {
		key = "userid"
	}
	out := s.lookup(ctx, regs, "/_matrix/app/v1/thirdparty/"+string(kind), url.Values{key: {value}}, "")
	if len(out) == 0 {
		return nil, mxerr.NotFound("No third-party %s found", kind)
	}
	return out, nil
}

// lookup queries services and keeps the well-formed results: objects that
// carry a protocol (the requested one, if any) the service declared.
func (s *Service) lookup(ctx context.Context, regs []*Registration, path string, query url.Values, protocol string) []any {
	out := []any{}
	for _, reg := range regs {
		if s.cooled(reg) != nil {
			continue // known to be down: do not make the client wait
		}
		asked := s.now()
		status, body, err := s.call(ctx, s.queryClient, reg, http.MethodGet, path, query, nil)
		s.noteFailure(reg, err, asked)
		if err != nil || status != http.StatusOK {
			if !errors.Is(err, errNoURL) {
				s.log.Info("appservice third-party query failed", "appservice", reg.ID, "path", path, "status", status, "err", err)
			}
			continue
		}
		var list []map[string]any
		if json.Unmarshal(body, &list) != nil {
			s.log.Info("appservice third-party answer is not a list", "appservice", reg.ID, "path", path)
			continue
		}
		for _, item := range list {
			p, _ := item["protocol"].(string)
			if !reg.HasProtocol(p) || (protocol != "" && p != protocol) {
				continue
			}
			out = append(out, item)
		}
	}
	return out
}

// splitInstanceID reads a third_party_instance_id.
func splitInstanceID(s string) (asID, networkID string, ok bool) {
	asID, networkID, ok = strings.Cut(s, "|")
	return asID, networkID, ok && asID != "" && networkID != ""
}

// SetRoomVisibility publishes a room in (or removes it from) the directory
// of one of the calling service's networks.
func (s *Service) SetRoomVisibility(ctx context.Context, asID, networkID, roomID, visibility string) error {
	if s.ByID(asID) == nil {
		return mxerr.Forbidden("Only application services may use this endpoint")
	}
	if visibility != "public" && visibility != "private" {
		return mxerr.InvalidParam("visibility must be public or private")
	}
	if networkID == "" || strings.Contains(networkID, "|") {
		return mxerr.InvalidParam("Invalid network ID")
	}
	if !strings.HasPrefix(roomID, "!") {
		return mxerr.InvalidParam("Invalid room ID")
	}
	if _, err := s.db.GetRoom(ctx, roomID); errors.Is(err, storage.ErrNotFound) {
		return mxerr.NotFound("Room not found")
	} else if err != nil {
		return fmt.Errorf("get room: %w", err)
	}
	if err := s.db.SetAppServiceRoom(ctx, asID, networkID, roomID, visibility == "public"); err != nil {
		return fmt.Errorf("set appservice room visibility: %w", err)
	}
	return nil
}

// NetworkRooms resolves a /publicRooms network choice to room IDs: the
// rooms of one instance, or of every service network when all is set.
// An instance that is not "<as id>|<network>" of a known service lists
// nothing.
func (s *Service) NetworkRooms(ctx context.Context, instanceID string, all bool) ([]string, error) {
	if all {
		return s.db.AppServiceRooms(ctx, "", "")
	}
	asID, network, ok := splitInstanceID(instanceID)
	if !ok || s.ByID(asID) == nil {
		return nil, nil
	}
	ids, err := s.db.AppServiceRooms(ctx, asID, network)
	sort.Strings(ids)
	return ids, err
}
