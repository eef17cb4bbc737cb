package clientapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/axon-matrix/axon/internal/clientapi"
	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/storage"
	"github.com/axon-matrix/axon/internal/testrig"
	"github.com/axon-matrix/axon/internal/threepid"
)

// TestSweep throws bad requests at every route of the client API, walked
// from the route table itself (API.Mounts) so new routes are swept without
// edits here:
//   - missing and bogus tokens (401), guests on routes not for guests (403);
//   - query parameters of the wrong type or outside their enum, taken from
//     the spec's OpenAPI (400 M_INVALID_PARAM);
//   - oversized, malformed and non-object bodies (413, M_NOT_JSON,
//     M_BAD_JSON), and wrongly typed fields of the spec's request schemas
//     (400 M_BAD_JSON or M_INVALID_PARAM);
//   - unknown, malformed, oversized and binary IDs in the path (400, 403 or
//     404), admin routes asked about unknown and remote users, and another
//     user's requests on alice's rooms, events and data (403 or 404);
//   - wrongly typed content of every state event the spec defines;
//   - methods a path does not have (405 M_UNRECOGNIZED).
//
// No answer may be a 5xx, every error is a JSON object with errcode and
// error served as application/json, and when the sweep is done alice's
// rooms, timeline, account data, devices and profile are what they were.
// Last, null and empty values of every field must not fail the server.
func TestSweep(t *testing.T) {
	// A small body limit keeps the oversized requests cheap.
	r := testrig.Start(t, func(c *config.Config) {
		c.MaxRequestBytes = sweepBodyLimit
		c.Media.MaxUploadBytes = sweepBodyLimit
		c.GuestAccess = true
	})
	alice := r.CreateUser("alice")
	fx := newSweepFixtures(t, r, alice.AccessToken, alice.UserID.String(), alice.DeviceID.String())
	// bob shares nothing with alice: his requests on her room, events and
	// data are forbidden actions. carol is whom bob tries to invite.
	fx.bob = r.CreateUser("bob").AccessToken
	r.CreateUser("carol")
	// An admin, for the admin routes' answers about unknown users.
	if err := r.Server.DB.CreateUser(context.Background(), storage.User{UserID: r.UserID("root").String(), Localpart: "root",
		IsAdmin: true, CreatedTS: time.Now().UnixMilli()}); err != nil {
		t.Fatal(err)
	}
	fx.admin = r.CreateUserDevice("root", "DEV_root", false).AccessToken
	status, b := r.Do("POST", "/_matrix/client/v3/register?kind=guest", "", strings.NewReader("{}"))
	var guest struct {
		Token string `json:"access_token"`
	}
	if json.Unmarshal(b, &guest); status != 200 || guest.Token == "" {
		t.Fatalf("guest registration: %d %s", status, b)
	}
	fx.guest = guest.Token
	fx.spec = loadSpec(t)

	var routes []sweepRoute
	for _, m := range (&clientapi.API{}).Mounts() {
		for _, rt := range m.Routes {
			routes = append(routes, sweepRoute{rt, m.Prefixes, rt.Method + " " + m.Prefixes[0] + rt.Path})
		}
	}
	if len(routes) < 150 {
		t.Fatalf("only %d routes in the table", len(routes))
	}

	before := fx.snapshot()
	for _, rt := range routes {
		fx.sweepTokens(rt)
		fx.sweepQuery(rt)
		fx.sweepBodies(rt)
		fx.sweepIDs(rt)
		fx.sweepAdmin(rt)
		fx.sweepOtherUser(rt)
	}
	fx.sweepStateEvents()
	fx.sweepMethods(routes)
	after := fx.snapshot()
	if !bytes.Equal(before, after) {
		t.Errorf("the sweep changed the user's state:\nbefore %s\nafter  %s", before, after)
	}
	fx.sweepEmptyValues(routes)
	t.Logf("%d routes, %d requests", len(routes), fx.requests)
}

// sweepRoute is a route with the prefixes it is mounted under.
type sweepRoute struct {
	httpapi.Route
	prefixes []string
	name     string // method and path under the first prefix
}

// path is the route's path under its first prefix with the fixtures'
// parameters, some overridden.
func (fx *sweepFixtures) path(rt sweepRoute, override map[string]string) string {
	return rt.prefixes[0] + fx.fill(rt.Path, override)
}

// sweepTokens checks missing, bogus and guest tokens; every prefix is its
// own mount, so tokens are checked under each.
func (fx *sweepFixtures) sweepTokens(rt sweepRoute) {
	for _, prefix := range rt.prefixes {
		path := prefix + fx.fill(rt.Path, nil)
		switch rt.Auth {
		case httpapi.RequireAuth:
			fx.expect(rt.name+" without token", rt.Method, path, "", "{}", 401, "M_MISSING_TOKEN")
			fx.expect(rt.name+" with bogus token", rt.Method, path, "bogus_token", "{}", 401, "M_UNKNOWN_TOKEN")
		case httpapi.OptionalAuth:
			fx.expect(rt.name+" with bogus token", rt.Method, path, "bogus_token", "{}", 401, "M_UNKNOWN_TOKEN")
		}
	}
	if rt.Auth != httpapi.NoAuth && !rt.Guest {
		fx.expect(rt.name+" as a guest", rt.Method, fx.path(rt, nil), fx.guest, "{}", 403, "M_GUEST_ACCESS_FORBIDDEN")
	}
}

// withQuery puts name=value first in path's query: servers read the first
// of repeated parameters.
func withQuery(path, name, value string) string {
	if strings.Contains(path, "?") {
		return strings.Replace(path, "?", "?"+name+"="+value+"&", 1)
	}
	return path + "?" + name + "=" + value
}

// sweepQuery reads the route with real IDs (no bad input, but no failure
// either), then with query parameters of the wrong type or outside their
// enum.
func (fx *sweepFixtures) sweepQuery(rt sweepRoute) {
	path := fx.path(rt, nil)
	if rt.Method == http.MethodGet {
		fx.answer(rt.name, rt.Method, path, fx.token, "")
	}
	if queryChecksOff[rt.Path] {
		return
	}
	for _, q := range fx.spec.query(rt.Method, rt.prefixes[0]+rt.Path) {
		wrong := map[string]string{"string": "notinenum", "token": "notatoken"}[q.typ]
		if wrong == "" {
			wrong = "notanumber"
		}
		if q.typ == "integer" || q.typ == "number" {
			// Out of range, negative or fractional: refused or clamped,
			// never a failure.
			for _, v := range []string{"99999999999999999999", "-1", "1.5"} {
				fx.answer(rt.name+" with "+q.name+"="+v, rt.Method, withQuery(path, q.name, v), fx.token, "")
			}
		}
		codes := []string{"M_INVALID_PARAM"}
		if q.name == "filter" {
			codes = append(codes, "M_BAD_JSON") // neither a filter ID nor JSON
		}
		if q.othersRequired {
			// Another parameter is required, which the server may name
			// first.
			codes = append(codes, "M_MISSING_PARAM")
		}
		fx.expect(rt.name+" with "+q.name+"="+wrong, rt.Method, withQuery(path, q.name, wrong), fx.token, "", 400, codes...)
	}
}

// sweepBodies sends oversized bodies, bodies that are not JSON or not an
// object, and objects with one wrongly typed field of the route's schema.
func (fx *sweepFixtures) sweepBodies(rt sweepRoute) {
	path := fx.path(rt, nil)
	if rt.MaxBodyBytes == httpapi.NoBodyLimit {
		// Uploads limit their bodies themselves.
		p := fx.path(rt, map[string]string{"mediaId": fx.ids["createdMediaId"]})
		fx.expect(rt.name+" with an oversized body", rt.Method, p, fx.token, strings.Repeat("x", sweepBodyLimit+1), 413, "M_TOO_LARGE")
	}
	body, ok := fx.spec.bodyOf(rt.Method, rt.prefixes[0]+rt.Path)
	if !ok {
		return
	}
	limit := int64(sweepBodyLimit)
	if rt.MaxBodyBytes > 0 {
		limit = rt.MaxBodyBytes
	}
	big := `{"x":"` + strings.Repeat("x", int(limit)) + `"}`
	fx.expect(rt.name+" with an oversized body", rt.Method, path, fx.token, big, 413, "M_TOO_LARGE")
	for _, b := range []string{"{", `{"a":1}x`, `{"a":1}{}`, `{"a":"` + "\xff" + `"}`} {
		fx.expect(rt.name+" with body "+b, rt.Method, path, fx.token, b, 400, "M_NOT_JSON")
	}
	for _, b := range []string{`[]`, `"x"`, `3`, `null`} {
		fx.expect(rt.name+" with body "+b, rt.Method, path, fx.token, b, 400, "M_BAD_JSON")
	}
	for _, p := range body.props {
		wrong := wrongValue(p.typ)
		if wrong == "" {
			continue
		}
		b := p.body(wrong)
		codes := []string{"M_BAD_JSON", "M_INVALID_PARAM"}
		if body.missesRequired(p.name) {
			// The body lacks a required field too, which the server may
			// name first.
			codes = append(codes, "M_MISSING_PARAM")
		}
		fx.expect(rt.name+" with body "+b, rt.Method, path, fx.token, b, 400, codes...)
	}
}

// sweepIDs puts unknown and malformed IDs into the path, one parameter at
// a time, with a body that would otherwise succeed.
func (fx *sweepFixtures) sweepIDs(rt sweepRoute) {
	for _, param := range pathParams(rt.Path) {
		for _, bad := range idVariants(param, fx.server) {
			p := fx.path(rt, map[string]string{param: bad})
			name := fmt.Sprintf("%s with %s=%q", rt.name, param, bad)
			// Some routes take any well-formed room; a GET's event type
			// only selects what to read (none such: an empty answer).
			if (strings.HasPrefix(bad, "!unknown:") && unknownRoomAccepted[rt.Path]) || (param == "eventType" && rt.Method == http.MethodGet) {
				fx.answer(name, rt.Method, p, fx.token, fx.validBody(rt.Method, rt.Path))
				continue
			}
			// What cannot be an ID at all is a bad parameter on every
			// route, before anything is looked up.
			if idParams[param] && !wellFormedID(bad) {
				fx.expect(name, rt.Method, p, fx.token, fx.validBody(rt.Method, rt.Path), 400, "M_INVALID_PARAM")
				continue
			}
			fx.refused(name, rt.Method, p, fx.token, fx.validBody(rt.Method, rt.Path))
		}
	}
}

// sweepAdmin asks the admin routes, as an admin, about unknown users (404
// M_NOT_FOUND), remote ones (400 M_INVALID_PARAM where the spec says so)
// and malformed IDs (400 M_INVALID_PARAM).
func (fx *sweepFixtures) sweepAdmin(rt sweepRoute) {
	if !strings.HasPrefix(rt.Path, "/admin/") {
		return
	}
	op, _ := fx.spec.lookup(rt.Method, rt.prefixes[0]+rt.Path)
	for _, bad := range append(idVariants("userId", fx.server), "@someone:remote.example") {
		name := fmt.Sprintf("%s as admin with userId=%q", rt.name, bad)
		status, code, ok := fx.answer(name, rt.Method, fx.path(rt, map[string]string{"userId": bad}), fx.admin, fx.validBody(rt.Method, rt.Path))
		if !ok {
			continue
		}
		notFound := status == 404 && code == "M_NOT_FOUND"
		invalid := status == 400 && code == "M_INVALID_PARAM"
		if (bad == "@unknown:"+fx.server && !notFound) || (bad == "@someone:remote.example" && op.statuses[400] && !invalid) ||
			(bad != "@someone:remote.example" && !wellFormedID(bad) && !invalid) || (!notFound && !invalid) {
			fx.t.Errorf("%s: got %d %s", name, status, code)
		}
	}
}

// sweepOtherUser sends bob's requests on alice's room, events and data:
// forbidden, or not found for those who may not know they exist.
func (fx *sweepFixtures) sweepOtherUser(rt sweepRoute) {
	if rt.Auth == httpapi.NoAuth || otherUserAccepted[rt.Method+" "+rt.Path] || !namesAliceData(rt.Path) {
		return
	}
	fx.forbidden(rt.name+" as bob", rt.Method, fx.path(rt, nil), fx.bob, fx.validBody(rt.Method, rt.Path))
}

// sweepStateEvents sends state events whose content fields have the wrong
// type, for every state event the spec's event schemas define, and one as
// createRoom's initial_state.
func (fx *sweepFixtures) sweepStateEvents() {
	rm := url.PathEscape(fx.ids["roomId"])
	for _, ev := range loadStateSchemas(fx.t) {
		key := ""
		switch ev.typ {
		case "m.room.member":
			key = fx.ids["userId"]
		case "m.space.child", "m.space.parent", "m.room.third_party_invite":
			key = "!other:" + fx.server
		}
		for _, p := range ev.props {
			wrong := wrongValue(p.typ)
			if wrong == "" || (ev.typ == "m.room.topic" && p.name == "m.topic") {
				// m.topic was an array before spec v1.15, and clients
				// built then still send it so: the server takes both.
				continue
			}
			b := p.body(wrong)
			path := "/_matrix/client/v3/rooms/" + rm + "/state/" + ev.typ + "/" + url.PathEscape(key)
			name := "PUT state " + ev.typ + " with content " + b
			status, code, ok := fx.answer(name, http.MethodPut, path, fx.token, b)
			// The authorisation rules check membership themselves and
			// refuse with M_FORBIDDEN; every other content is checked
			// before them.
			if ok && !(status == 400 && code == "M_BAD_JSON") && !(status == 403 && code == "M_FORBIDDEN" && authChecked[ev.typ]) {
				fx.t.Errorf("%s: got %d %s, want 400 M_BAD_JSON", name, status, code)
			}
		}
	}
	// Refused before any room is made.
	fx.expect("POST createRoom with a wrongly typed initial_state", http.MethodPost, "/_matrix/client/v3/createRoom", fx.token,
		`{"initial_state":[{"type":"m.room.topic","state_key":"","content":{"topic":5}}]}`, 400, "M_BAD_JSON")
}

// authChecked are the state events whose content the authorisation rules
// type-check, refusing bad content with 403 M_FORBIDDEN.
var authChecked = map[string]bool{"m.room.member": true, "m.room.create": true}

// sweepMethods uses, on every path, a method it does not have: 405
// M_UNRECOGNIZED.
func (fx *sweepFixtures) sweepMethods(routes []sweepRoute) {
	methods := map[string]map[string]bool{}
	var patterns []string
	for _, rt := range routes {
		p := rt.prefixes[0] + rt.Path
		if methods[p] == nil {
			methods[p] = map[string]bool{}
			patterns = append(patterns, p)
		}
		methods[p][rt.Method] = true
	}
	for _, p := range patterns {
		for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete} {
			if !methods[p][method] {
				fx.expect(method+" "+p+" (not a method of the path)", method, fx.fill(p, nil), fx.token, "", 405, "M_UNRECOGNIZED")
				break
			}
		}
	}
}

// sweepEmptyValues sends null, empty and zero values of every schema
// field, and strings that are not quite text, which the schemas allow to
// be absent but not so: the server may
// accept some (and change things, which is why this comes after the
// snapshot), but never fails on them. Leaving goes last, since it would
// turn the rest into requests of a non-member.
func (fx *sweepFixtures) sweepEmptyValues(routes []sweepRoute) {
	routes = slices.Clone(routes)
	sort.SliceStable(routes, func(i, j int) bool {
		return !strings.HasSuffix(routes[i].Path, "/leave") && strings.HasSuffix(routes[j].Path, "/leave")
	})
	// Event content is free-form, so the schemas name no fields there.
	rm := url.PathEscape(fx.ids["roomId"])
	for _, v := range []string{"\"\xff\xfe\"", `"\ud800"`, `"a\u0000b"`, "1e400", "-0", "12345678901234567890"} {
		b := `{"msgtype":"m.text","body":` + v + `}`
		fx.answer("PUT send with content "+b, http.MethodPut, "/_matrix/client/v3/rooms/"+rm+"/send/m.room.message/"+fmt.Sprint("odd", fx.txn), fx.token, b)
		fx.txn++
	}
	for _, rt := range routes {
		body, ok := fx.spec.bodyOf(rt.Method, rt.prefixes[0]+rt.Path)
		if !ok {
			continue
		}
		var nulls []string
		for _, p := range body.props {
			if p.sub == "" {
				nulls = append(nulls, fmt.Sprintf(`%q: null`, p.name))
			}
			values := []string{"null", "{}", "[]", `""`, "0"}
			if p.typ == "string" {
				// Not UTF-8, a lone surrogate, a NUL.
				values = append(values, "\"\xff\xfe\"", `"\ud800"`, `"a\u0000b"`)
			}
			for _, v := range values {
				b := p.body(v)
				fx.answer(rt.name+" with body "+b, rt.Method, fx.path(rt, nil), fx.token, b)
			}
		}
		if len(nulls) > 1 {
			b := "{" + strings.Join(nulls, ", ") + "}"
			fx.answer(rt.name+" with body "+b, rt.Method, fx.path(rt, nil), fx.token, b)
		}
	}
}

// sweepFixtures are the users, IDs and spec the sweep works with.
type sweepFixtures struct {
	t      *testing.T
	r      *testrig.Rig
	spec   specOps
	token  string // alice's
	bob    string
	guest  string
	admin  string
	server string
	ids    map[string]string
	txn    int
	// requests counts what the sweep sent.
	requests int
}

func newSweepFixtures(t *testing.T, r *testrig.Rig, token, userID, deviceID string) *sweepFixtures {
	fx := &sweepFixtures{t: t, r: r, token: token, server: r.Server.Cfg.ServerName}
	must := func(method, path, body string) map[string]any {
		t.Helper()
		status, b := r.Do(method, path, token, strings.NewReader(body))
		if status != 200 {
			t.Fatalf("fixture %s %s: %d %s", method, path, status, b)
		}
		var out map[string]any
		json.Unmarshal(b, &out)
		return out
	}
	u := url.PathEscape(userID)
	room := must("POST", "/_matrix/client/v3/createRoom", `{"preset":"private_chat","name":"sweep","room_alias_name":"sweep"}`)["room_id"].(string)
	rm := url.PathEscape(room)
	event := must("PUT", "/_matrix/client/v3/rooms/"+rm+"/send/m.room.message/fixture", `{"msgtype":"m.text","body":"hi"}`)["event_id"].(string)
	filter := must("POST", "/_matrix/client/v3/user/"+u+"/filter", `{"room":{"timeline":{"limit":5}}}`)["filter_id"].(string)
	version := must("POST", "/_matrix/client/v3/room_keys/version", `{"algorithm":"m.megolm_backup.v1.curve25519-aes-sha2","auth_data":{"public_key":"abc"}}`)["version"].(string)
	must("PUT", "/_matrix/client/v3/user/"+u+"/rooms/"+rm+"/tags/u.sweep", `{"order":0.5}`)
	must("PUT", "/_matrix/client/v3/user/"+u+"/account_data/m.sweep", `{"a":1}`)
	must("PUT", "/_matrix/client/v3/user/"+u+"/rooms/"+rm+"/account_data/m.sweep", `{"b":2}`)
	must("PUT", "/_matrix/client/v3/profile/"+u+"/displayname", `{"displayname":"Alice"}`)
	mxc := must("POST", "/_matrix/media/v3/upload?filename=f.txt", "hello")["content_uri"].(string)
	// created is reserved for an upload that never comes.
	created := must("POST", "/_matrix/media/v1/create", "")["content_uri"].(string)
	fx.ids = map[string]string{
		"roomId": room, "roomIdOrAlias": room, "eventId": event, "userId": userID,
		"deviceId": deviceID, "filterId": filter, "version": version,
		"roomAlias": "#sweep:" + fx.server, "serverName": fx.server, "mediaId": mxc[strings.LastIndex(mxc, "/")+1:],
		"eventType": "m.room.name", "stateKey": "", "keyName": "avatar_url",
		"type": "m.sweep", "tag": "u.sweep", "kind": "override", "ruleId": ".m.rule.master",
		"receiptType": "m.read", "sessionId": "sweepsession", "fileName": "f.txt",
		"idpId": "sweep", "protocol": "sweep", "networkId": "sweep", "appserviceId": "sweep",
		"relType": "m.thread", "createdMediaId": created[strings.LastIndex(created, "/")+1:],
	}
	return fx
}

var paramRE = regexp.MustCompile(`\{([A-Za-z]+)(\.\.\.)?\}`)

func pathParams(pattern string) []string {
	var out []string
	for _, m := range paramRE.FindAllStringSubmatch(pattern, -1) {
		out = append(out, m[1])
	}
	return out
}

// fixtureQuery are the required query parameters of routes, so that the
// sweep reaches what it tests rather than M_MISSING_PARAM.
var fixtureQuery = map[string]string{
	"/rooms/{roomId}/timestamp_to_event":      "ts=0&dir=b",
	"/media/thumbnail/{serverName}/{mediaId}": "width=32&height=32",
	"/thumbnail/{serverName}/{mediaId}":       "width=32&height=32",
}

// fill turns a mux pattern into a request path: parameters from override,
// else the fixtures; transaction IDs are fresh each time.
func (fx *sweepFixtures) fill(pattern string, override map[string]string) string {
	query := fixtureQuery[pattern]
	if strings.HasPrefix(pattern, "/room_keys/keys") {
		query = "version=" + url.QueryEscape(fx.ids["version"])
	}
	pattern = strings.ReplaceAll(pattern, "{$}", "")
	path := paramRE.ReplaceAllStringFunc(pattern, func(m string) string {
		name := paramRE.FindStringSubmatch(m)[1]
		if v, ok := override[name]; ok {
			return url.PathEscape(v)
		}
		if name == "txnId" {
			fx.txn++
			return fmt.Sprintf("sweep%d", fx.txn)
		}
		v, ok := fx.ids[name]
		if !ok {
			fx.t.Fatalf("no fixture for path parameter {%s} in %s: add one to the sweep", name, pattern)
		}
		return url.PathEscape(v)
	})
	if query != "" {
		path += "?" + query
	}
	return path
}

// idVariants are the unknown and malformed values of a path parameter that
// names something (nil for parameters that do not).
func idVariants(param, server string) []string {
	v := idVariantsOf(param, server)
	if v != nil {
		// Oversized, control characters, and not UTF-8.
		v = append(v, string(v[0][0])+strings.Repeat("x", 300)+":"+server, string(v[0][0])+"a\x00b:"+server, string(v[0][0])+"\xff\xfe:"+server)
	}
	return v
}

// idParams are the path parameters whose malformed values (the variants
// that wellFormedID refuses) must be 400 M_INVALID_PARAM, not a lookup
// that finds nothing.
var idParams = map[string]bool{"roomId": true, "roomIdOrAlias": true, "eventId": true, "userId": true}

// wellFormedID tells idVariants' unknown IDs from its malformed ones.
func wellFormedID(v string) bool { return strings.Contains(v, "unknown") }

func idVariantsOf(param, server string) []string {
	switch param {
	case "roomId":
		return []string{"!unknown:" + server, "notaroom"}
	case "roomIdOrAlias":
		return []string{"!unknown:" + server, "#unknown:" + server, "notaroom"}
	case "eventId":
		return []string{"$unknown", "notanevent"}
	case "userId":
		return []string{"@unknown:" + server, "notauser"}
	case "deviceId":
		return []string{"UNKNOWNDEVICE"}
	case "filterId":
		return []string{"999999", "notafilter"}
	case "version":
		return []string{"999999", "notaversion"}
	case "roomAlias":
		return []string{"#unknown:" + server, "notanalias"}
	case "mediaId":
		return []string{"unknownmedia"}
	case "kind":
		return []string{"nosuchkind"}
	case "ruleId":
		return []string{".m.rule.nosuchrule"}
	case "receiptType":
		return []string{"m.nosuchreceipt"}
	case "tag":
		return []string{strings.Repeat("t", 300)}
	case "eventType", "type":
		return []string{"m." + strings.Repeat("t", 300)}
	}
	return nil
}

func wrongValue(typ string) string {
	switch typ {
	case "string":
		return "12345"
	case "integer", "number", "boolean", "object", "array":
		return `"wrong"`
	}
	return ""
}

func (fx *sweepFixtures) do(method, path, token, body string) (int, http.Header, []byte) {
	fx.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	fx.requests++
	// timeout=0 keeps long-polls (/sync, /events) from waiting.
	req, err := http.NewRequest(method, fx.r.URL+path+sep+"timeout=0", rd)
	if err != nil {
		fx.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fx.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// answer checks what every answer must be: no 5xx, a JSON object (errors
// with errcode and error), served as application/json. It returns the
// status and errcode.
func (fx *sweepFixtures) answer(name, method, path, token, body string) (int, string, bool) {
	fx.t.Helper()
	status, h, b := fx.do(method, path, token, body)
	if status >= 500 {
		fx.t.Errorf("%s: %d %s", name, status, b)
		return status, "", false
	}
	if status < 300 && (strings.Contains(path, "/download/") || strings.Contains(path, "/thumbnail/")) {
		return status, "", true
	}
	if method == http.MethodGet && strings.HasPrefix(path, threepid.ValidatePath) {
		return status, "", true // the page an emailed link opens in a browser
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		fx.t.Errorf("%s: %d with Content-Type %q: %.200s", name, status, ct, b)
		return status, "", false
	}
	if status < 400 {
		if !json.Valid(b) {
			fx.t.Errorf("%s: %d, not JSON: %.200s", name, status, b)
			return status, "", false
		}
		return status, "", true
	}
	var parsed map[string]any
	if err := json.Unmarshal(b, &parsed); err != nil {
		fx.t.Errorf("%s: %d, not a JSON object: %.200s", name, status, b)
		return status, "", false
	}
	code, _ := parsed["errcode"].(string)
	_, hasMsg := parsed["error"].(string)
	if _, uia := parsed["flows"]; status == 401 && uia {
		// A user-interactive auth challenge carries errcode only after a
		// failed stage.
		return status, code, true
	}
	if code == "" || !hasMsg {
		fx.t.Errorf("%s: %d without errcode and error: %s", name, status, b)
		return status, code, false
	}
	return status, code, true
}

func (fx *sweepFixtures) expect(name, method, path, token, body string, wantStatus int, wantCodes ...string) {
	fx.t.Helper()
	status, code, ok := fx.answer(name, method, path, token, body)
	if !ok {
		return
	}
	for _, c := range wantCodes {
		if status == wantStatus && code == c {
			return
		}
	}
	fx.t.Errorf("%s: got %d %s, want %d %v", name, status, code, wantStatus, wantCodes)
}

// validBody is a request body that would succeed with the right IDs and
// permissions, so that a refusal is about the IDs and permissions (with
// {} the server could answer M_MISSING_PARAM before looking at them).
func (fx *sweepFixtures) validBody(method, pattern string) string {
	if method != http.MethodPost && method != http.MethodPut {
		return ""
	}
	switch pattern {
	case "/rooms/{roomId}/invite", "/rooms/{roomId}/kick", "/rooms/{roomId}/ban", "/rooms/{roomId}/unban":
		return `{"user_id":"@carol:` + fx.server + `","reason":"sweep"}` // carol exists
	case "/rooms/{roomId}/send/{eventType}/{txnId}":
		return `{"msgtype":"m.text","body":"sweep"}`
	case "/rooms/{roomId}/state/{eventType}/{stateKey...}":
		return `{"name":"sweep"}`
	case "/rooms/{roomId}/read_markers":
		return fmt.Sprintf(`{"m.fully_read":%q,"m.read":%q}`, fx.ids["eventId"], fx.ids["eventId"])
	case "/rooms/{roomId}/typing/{userId}":
		return `{"typing":true,"timeout":1000}`
	case "/rooms/{roomId}/upgrade":
		return `{"new_version":"12"}`
	case "/user/{userId}/filter":
		return `{"room":{"timeline":{"limit":1}}}`
	case "/user/{userId}/account_data/{type}", "/user/{userId}/rooms/{roomId}/account_data/{type}":
		return `{"sweep":true}`
	case "/user/{userId}/rooms/{roomId}/tags/{tag}":
		return `{"order":0.1}`
	case "/presence/{userId}/status":
		return `{"presence":"online"}`
	case "/profile/{userId}/{keyName}": // keyName is avatar_url
		return `{"avatar_url":"mxc://` + fx.server + `/mallory"}`
	case "/profile/{userId}/displayname":
		return `{"displayname":"Mallory"}`
	case "/directory/list/room/{roomId}", "/directory/list/appservice/{networkId}/{roomId}":
		return `{"visibility":"public"}`
	case "/rooms/{roomId}/report/{eventId}", "/rooms/{roomId}/report", "/users/{userId}/report":
		return `{"reason":"sweep"}`
	case "/admin/lock/{userId}":
		return `{"locked":true}`
	case "/admin/suspend/{userId}":
		return `{"suspended":true}`
	case "/devices/{deviceId}":
		return `{"display_name":"sweep"}`
	}
	// Reasons and other optional fields, or bodies the sweep cannot make
	// valid without more fixtures.
	return "{}"
}

// sweepBodyLimit is the rig's request body limit.
const sweepBodyLimit = 16 << 10

// namesAliceData says whether a route's path names the room, events, user
// or data of the fixtures' user.
func namesAliceData(pattern string) bool {
	for _, p := range pathParams(pattern) {
		switch p {
		case "roomId", "roomIdOrAlias", "eventId", "userId", "filterId", "deviceId", "roomAlias":
			return true
		}
	}
	return false
}

// queryChecksOff are routes whose query parameters the sweep leaves alone,
// because the route refuses every request before reading them.
var queryChecksOff = map[string]bool{
	"/login/sso/redirect":         true, // no SSO: always M_UNRECOGNIZED
	"/login/sso/redirect/{idpId}": true,
	"/preview_url":                true, // URL previews are off by default: always M_FORBIDDEN
	"/media/preview_url":          true,
}

// otherUserAccepted are the routes that let anyone act on or read what the
// path names.
var otherUserAccepted = map[string]bool{
	"GET /profile/{userId}":             true,
	"GET /profile/{userId}/{keyName}":   true,
	"GET /profile/{userId}/displayname": true,
	"GET /presence/{userId}/status":     true, // bob may see alice's presence (no visibility rules yet)
	"POST /users/{userId}/report":       true, // anyone may report a user
	"GET /directory/room/{roomAlias}":   true, // aliases are public
	"GET /directory/list/room/{roomId}": true, // so is a room's directory visibility
	// Forgetting a room one was never in forgets nothing; the spec lists
	// no error for it.
	"POST /rooms/{roomId}/forget": true,
	// Anyone may report a room the server knows (Synapse the same).
	"POST /rooms/{roomId}/report": true,
}

// unknownRoomAccepted are the routes that take any well-formed room ID:
// the spec lets users keep account data and tags for rooms the server does
// not know (yet), and lists no 404 for them.
var unknownRoomAccepted = map[string]bool{
	"/user/{userId}/rooms/{roomId}/account_data/{type}":                                            true,
	"/_matrix/client/unstable/org.matrix.msc3391/user/{userId}/rooms/{roomId}/account_data/{type}": true,
	"/user/{userId}/rooms/{roomId}/tags":                                                           true,
	"/user/{userId}/rooms/{roomId}/tags/{tag}":                                                     true,
	// A backup holds the keys of any room: one without keys has an empty
	// sessions object.
	"/room_keys/keys/{roomId}":             true,
	"/room_keys/keys/{roomId}/{sessionId}": true,
}

// refusedCodes are the answers to a request naming something that does not
// exist or is not an ID at all.
var refusedCodes = map[int][]string{
	400: {"M_INVALID_PARAM", "M_BAD_JSON", "M_MISSING_PARAM", "M_NOT_JSON"},
	403: {"M_FORBIDDEN"},
	404: {"M_NOT_FOUND"},
}

// forbiddenCodes are the answers to a request on someone else's things.
var forbiddenCodes = map[int][]string{
	400: {"M_MISSING_PARAM", "M_BAD_JSON", "M_INVALID_PARAM"},
	403: {"M_FORBIDDEN"},
	404: {"M_NOT_FOUND"},
}

func (fx *sweepFixtures) refused(name, method, path, token, body string) {
	fx.t.Helper()
	fx.answeredAmong(name, method, path, token, body, refusedCodes, "400, 403 or 404")
}

// forbidden checks that a request on someone else's things is refused.
func (fx *sweepFixtures) forbidden(name, method, path, token, body string) {
	fx.t.Helper()
	fx.answeredAmong(name, method, path, token, body, forbiddenCodes, "403 M_FORBIDDEN or 404 M_NOT_FOUND")
}

// answeredAmong checks the request is refused with one of codes (by
// status); a user-interactive auth challenge, which comes first, passes.
func (fx *sweepFixtures) answeredAmong(name, method, path, token, body string, codes map[int][]string, want string) {
	fx.t.Helper()
	status, code, ok := fx.answer(name, method, path, token, body)
	if !ok {
		return
	}
	if status == 401 && code == "" {
		return // user-interactive auth comes first
	}
	for _, c := range codes[status] {
		if c == code {
			return
		}
	}
	fx.t.Errorf("%s: got %d %s, want %s", name, status, code, want)
}

// snapshot is the user's state that bad requests must not change.
func (fx *sweepFixtures) snapshot() []byte {
	fx.t.Helper()
	get := func(path string) any {
		status, _, b := fx.do("GET", path, fx.token, "")
		if status != 200 {
			fx.t.Fatalf("snapshot %s: %d %s", path, status, b)
		}
		var v any
		json.Unmarshal(b, &v)
		return v
	}
	u := url.PathEscape(fx.ids["userId"])
	sync := get("/_matrix/client/v3/sync").(map[string]any)
	rooms := map[string]any{}
	for kind, v := range sync["rooms"].(map[string]any) {
		for id := range v.(map[string]any) {
			rm := url.PathEscape(id)
			rooms[kind+" "+id] = map[string]any{
				"state": sortedState(get("/_matrix/client/v3/rooms/" + rm + "/state")),
				// Events sent, and redactions of those there were.
				"timeline":     sortedState(get("/_matrix/client/v3/rooms/" + rm + "/messages?dir=b&limit=100").(map[string]any)["chunk"]),
				"account_data": sync["rooms"].(map[string]any)[kind].(map[string]any)[id].(map[string]any)["account_data"],
			}
		}
	}
	devices := get("/_matrix/client/v3/devices").(map[string]any)["devices"].([]any)
	for _, d := range devices {
		// Every request updates these.
		delete(d.(map[string]any), "last_seen_ts")
		delete(d.(map[string]any), "last_seen_ip")
	}
	state := map[string]any{
		"rooms":        rooms,
		"account_data": sync["account_data"],
		"devices":      devices,
		"profile":      get("/_matrix/client/v3/profile/" + u),
		"pushrules":    get("/_matrix/client/v3/pushrules/"),
		"backup":       get("/_matrix/client/v3/room_keys/version"),
		"3pids":        get("/_matrix/client/v3/account/3pid"),
		"joined_rooms": get("/_matrix/client/v3/joined_rooms"),
	}
	b, err := json.Marshal(state)
	if err != nil {
		fx.t.Fatal(err)
	}
	return b
}

func sortedState(v any) any {
	evs, _ := v.([]any)
	for _, ev := range evs {
		delete(ev.(map[string]any), "unsigned") // ages
	}
	sort.Slice(evs, func(i, j int) bool {
		return evs[i].(map[string]any)["event_id"].(string) < evs[j].(map[string]any)["event_id"].(string)
	})
	return evs
}

// specBody is the JSON request body of one endpoint in the spec.
type specBody struct {
	props    []specProp
	required map[string]bool
}

// specProp is a property of a request body or event content, or (with
// sub) a property of its object property name, or (sub "[]") an item of
// its array property name.
type specProp struct{ name, sub, typ string }

// body is a JSON object with the property set to the JSON value v.
func (p specProp) body(v string) string {
	if p.sub == "[]" {
		return fmt.Sprintf(`{%q: [%s]}`, p.name, v)
	}
	if p.sub != "" {
		return fmt.Sprintf(`{%q: {%q: %s}}`, p.name, p.sub, v)
	}
	return fmt.Sprintf(`{%q: %s}`, p.name, v)
}

// tokenParams are the string query parameters that must be something the
// server issued (pagination tokens) or a filter.
var tokenParams = map[string]bool{"from": true, "to": true, "since": true, "at": true, "filter": true}

// queryParam is a query parameter with a type or enum to get wrong, or (typ
// "token") a pagination token or filter.
type queryParam struct {
	name, typ      string
	othersRequired bool // another parameter is required too
}

func (b specBody) missesRequired(except string) bool {
	for name := range b.required {
		if name != except {
			return true
		}
	}
	return false
}

// specOp is what the spec says one endpoint takes.
type specOp struct {
	body     *specBody // nil when the request has no JSON body
	query    []queryParam
	statuses map[int]bool // the response codes the spec lists
}

// specOps are the spec's endpoints by "METHOD /full/path/{}".
type specOps map[string]specOp

var specParamRE = regexp.MustCompile(`\{[^}]*\}`)

func specKey(method, path string) string {
	path = strings.ReplaceAll(path, "{$}", "")
	path = strings.Replace(path, "/_matrix/client/r0/", "/_matrix/client/v3/", 1)
	path = strings.Replace(path, "/_matrix/media/r0/", "/_matrix/media/v3/", 1)
	return method + " " + specParamRE.ReplaceAllString(path, "{}")
}

// lookup finds a route's endpoint, also where a literal segment of ours
// shadows a parameter of the spec's (/profile/{userId}/displayname).
func (s specOps) lookup(method, path string) (specOp, bool) {
	key := specKey(method, path)
	if op, ok := s[key]; ok {
		return op, true
	}
	want := strings.Split(key, "/")
	for k, op := range s {
		got := strings.Split(k, "/")
		if len(got) != len(want) {
			continue
		}
		match := true
		for i := range got {
			if got[i] != want[i] && got[i] != "{}" {
				match = false
				break
			}
		}
		if match {
			return op, true
		}
	}
	return specOp{}, false
}

// bodyOf says whether the route takes a JSON body and what its schema's
// properties are. Routes the spec does not have (Synapse's admin
// registration, sliding sync) take JSON objects too.
func (s specOps) bodyOf(method, path string) (specBody, bool) {
	if op, ok := s.lookup(method, path); ok && op.body != nil {
		return *op.body, true
	}
	switch path {
	case "/_synapse/admin/v1/register", "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync", "/_matrix/client/v4/sync":
		return specBody{}, method == http.MethodPost
	}
	return specBody{}, false
}

// query is the route's query parameters that have a type or enum to get
// wrong.
func (s specOps) query(method, path string) []queryParam {
	op, _ := s.lookup(method, path)
	return op.query
}

// specDir finds the Matrix spec's client-server OpenAPI: $AXON_MATRIX_SPEC
// (a matrix-spec checkout) if set, else shared/matrix-spec beside the
// repository (or its worktrees). "" when there is none: the spec is not
// part of the repository, and the checks that need it are then left out
// (and said so in the test log) while the rest of the sweep still runs.
func specDir(t *testing.T) string {
	if d := os.Getenv("AXON_MATRIX_SPEC"); d != "" {
		return filepath.Join(d, "data", "api", "client-server")
	}
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for ; dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
		d := filepath.Join(dir, "shared", "matrix-spec", "data", "api", "client-server")
		if _, err := os.Stat(d); err == nil {
			return d
		}
	}
	return ""
}

func loadSpec(t *testing.T) specOps {
	dir := specDir(t)
	if dir == "" {
		t.Log("NOTE: no Matrix spec found (set AXON_MATRIX_SPEC): wrongly typed fields and query parameters, " +
			"and the state event schemas, are not swept this run")
		return specOps{}
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("spec files: %v", err)
	}
	out := specOps{}
	bodies := 0
	for _, f := range files {
		doc := readYAML(t, f)
		base := ""
		if servers, ok := doc["servers"].([]any); ok && len(servers) > 0 {
			vars, _ := servers[0].(map[string]any)["variables"].(map[string]any)
			bp, _ := vars["basePath"].(map[string]any)
			base, _ = bp["default"].(string)
		}
		paths, _ := doc["paths"].(map[string]any)
		for p, ops := range paths {
			for method, o := range ops.(map[string]any) {
				op, _ := o.(map[string]any)
				var sop specOp
				var required []string
				params, _ := op["parameters"].([]any)
				for _, pv := range params {
					param, pf := resolve(t, f, pv)
					if param["in"] != "query" {
						continue
					}
					schema, _ := resolve(t, pf, param["schema"])
					name, _ := param["name"].(string)
					switch typ, _ := schema["type"].(string); {
					case typ == "integer" || typ == "number" || typ == "boolean",
						typ == "string" && schema["enum"] != nil:
						sop.query = append(sop.query, queryParam{name: name, typ: typ})
					}
					if typ, _ := schema["type"].(string); typ == "string" && tokenParams[name] {
						sop.query = append(sop.query, queryParam{name: name, typ: "token"})
					}
					if param["required"] == true {
						required = append(required, name)
					}
				}
				for i, q := range sop.query {
					for _, r := range required {
						if r != q.name {
							sop.query[i].othersRequired = true
						}
					}
				}
				rb, _ := op["requestBody"].(map[string]any)
				content, _ := rb["content"].(map[string]any)
				if js, ok := content["application/json"].(map[string]any); ok {
					body := &specBody{required: map[string]bool{}}
					schema, sf := resolve(t, f, js["schema"])
					collectProps(t, sf, schema, "", &body.props, body.required)
					sort.Slice(body.props, func(i, j int) bool {
						return body.props[i].name+"."+body.props[i].sub < body.props[j].name+"."+body.props[j].sub
					})
					sop.body = body
					bodies++
				}
				sop.statuses = map[int]bool{}
				resps, _ := op["responses"].(map[string]any)
				for code := range resps {
					var n int
					fmt.Sscan(code, &n)
					sop.statuses[n] = true
				}
				out[specKey(strings.ToUpper(method), base+p)] = sop
			}
		}
	}
	if bodies < 50 {
		t.Fatalf("only %d request bodies in the spec", bodies)
	}
	return out
}

// stateSchema is a state event type and its content's typed properties.
type stateSchema struct {
	typ   string
	props []specProp
}

// loadStateSchemas reads the spec's state event schemas.
func loadStateSchemas(t *testing.T) []stateSchema {
	if specDir(t) == "" {
		return nil
	}
	dir := filepath.Join(specDir(t), "..", "..", "event-schemas", "schema")
	files, err := filepath.Glob(filepath.Join(dir, "m.*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("event schemas: %v", err)
	}
	var out []stateSchema
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(raw, []byte("state_event.yaml")) {
			continue
		}
		doc := readYAML(t, f)
		props, _ := doc["properties"].(map[string]any)
		typProp, _ := props["type"].(map[string]any)
		typ, _ := typProp["enum"].([]any)
		if len(typ) != 1 {
			continue
		}
		content, cf := resolve(t, f, props["content"])
		ev := stateSchema{typ: typ[0].(string)}
		collectProps(t, cf, content, "", &ev.props, map[string]bool{})
		sort.Slice(ev.props, func(i, j int) bool {
			return ev.props[i].name+"."+ev.props[i].sub < ev.props[j].name+"."+ev.props[j].sub
		})
		out = append(out, ev)
	}
	if len(out) < 15 {
		t.Fatalf("only %d state event schemas", len(out))
	}
	return out
}

func readYAML(t *testing.T, file string) map[string]any {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return doc
}

// resolve follows a $ref (relative file plus optional #/pointer), returning
// the schema and the file later relative refs are relative to.
func resolve(t *testing.T, file string, v any) (map[string]any, string) {
	m, _ := v.(map[string]any)
	for m != nil {
		ref, ok := m["$ref"].(string)
		if !ok {
			return m, file
		}
		target, pointer, _ := strings.Cut(ref, "#")
		if target != "" {
			file = filepath.Join(filepath.Dir(file), target)
		}
		doc := readYAML(t, file)
		var cur any = doc
		for _, seg := range strings.Split(strings.Trim(pointer, "/"), "/") {
			if seg == "" {
				continue
			}
			cur = cur.(map[string]any)[seg]
		}
		m, _ = cur.(map[string]any)
	}
	return m, file
}

// schemaType is a schema's single type; objects described only by their
// properties or allOf count as objects.
func schemaType(schema map[string]any) string {
	if typ, ok := schema["type"].(string); ok {
		return typ
	}
	if schema["properties"] != nil || schema["allOf"] != nil {
		return "object"
	}
	return ""
}

// collectProps gathers the properties with a single type, and those of
// object properties one level down (parent names the property they are in).
func collectProps(t *testing.T, file string, schema map[string]any, parent string, out *[]specProp, required map[string]bool) {
	if schema == nil {
		return
	}
	if all, ok := schema["allOf"].([]any); ok {
		for _, s := range all {
			sub, sf := resolve(t, file, s)
			collectProps(t, sf, sub, parent, out, required)
		}
	}
	if parent == "" {
		req, _ := schema["required"].([]any)
		for _, name := range req {
			if n, ok := name.(string); ok {
				required[n] = true
			}
		}
	}
	if parent != "" {
		// Maps (user ID to devices, room ID to sessions, ...): one
		// made-up key with a wrongly typed value.
		if ap, ok := schema["additionalProperties"].(map[string]any); ok {
			as, _ := resolve(t, file, ap)
			if typ := schemaType(as); typ != "" {
				*out = append(*out, specProp{name: parent, sub: "@sweep:key", typ: typ})
			}
		}
	}
	props, _ := schema["properties"].(map[string]any)
	for name, p := range props {
		ps, pf := resolve(t, file, p)
		typ := schemaType(ps)
		if typ == "" {
			continue
		}
		if parent != "" {
			*out = append(*out, specProp{name: parent, sub: name, typ: typ})
			continue
		}
		*out = append(*out, specProp{name: name, typ: typ})
		if typ == "object" {
			collectProps(t, pf, ps, name, out, required)
		}
		if typ == "array" {
			if is, _ := resolve(t, pf, ps["items"]); schemaType(is) != "" {
				*out = append(*out, specProp{name: name, sub: "[]", typ: schemaType(is)})
			}
		}
	}
}
