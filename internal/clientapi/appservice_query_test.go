package clientapi_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// asPost makes a request to the server with the service's token, as the
// fake service does while it answers a query; it returns the status.
func asPost(serverURL, path, body string) int {
	req, _ := http.NewRequest("POST", serverURL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+asToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestAppServiceQueriesOnDemand checks the paths besides /invite that ask
// a service about an unknown user or alias of its namespace: profile
// lookups, createRoom's invite list and joins by alias.
func TestAppServiceQueriesOnDemand(t *testing.T) {
	f := newFakeAS(t)
	r, _ := startWithBridge(t, f)
	alice := r.CreateUser("alice")
	f.mu.Lock()
	f.onUserQuery = func(userID string) bool {
		if !strings.HasPrefix(userID, "@_bridge_real") {
			return false
		}
		localpart := strings.TrimPrefix(strings.Split(userID, ":")[0], "@")
		return asPost(r.URL, "/_matrix/client/v3/register", `{"type":"m.login.application_service","username":"`+localpart+`","inhibit_login":true}`) == 200
	}
	f.onRoomQuery = func(alias string) bool {
		return alias == "#_bridge_portal:axon.test" &&
			asPost(r.URL, "/_matrix/client/v3/createRoom", `{"preset":"public_chat","room_alias_name":"_bridge_portal"}`) == 200
	}
	f.mu.Unlock()

	status, body := apiCall(t, r, alice, v3, "GET", "/profile/"+esc("@_bridge_real1:axon.test"), nil)
	if status != 200 {
		t.Fatalf("profile of a user the service creates: %d %v", status, body)
	}
	status, body = apiCall(t, r, alice, v3, "GET", "/profile/"+esc("@_bridge_ghost:axon.test")+"/displayname", nil)
	wantAPIError(t, status, body, 404, "M_NOT_FOUND")
	status, body = apiCall(t, r, alice, v3, "GET", "/profile/"+esc("@nobody:axon.test"), nil)
	wantAPIError(t, status, body, 404, "M_NOT_FOUND")

	status, body = apiCall(t, r, alice, v3, "POST", "/createRoom", map[string]any{"invite": []string{"@_bridge_real2:axon.test"}})
	if status != 200 {
		t.Fatalf("createRoom inviting a user the service creates: %d %v", status, body)
	}
	room := body["room_id"].(string)
	status, body = apiCall(t, r, alice, v3, "GET", "/rooms/"+esc(room)+"/state/m.room.member/"+esc("@_bridge_real2:axon.test"), nil)
	if status != 200 || body["membership"] != "invite" {
		t.Fatalf("invitee's membership: %d %v", status, body)
	}

	status, body = apiCall(t, r, alice, v3, "POST", "/join/"+esc("#_bridge_portal:axon.test"), map[string]any{})
	if status != 200 || body["room_id"] == nil {
		t.Fatalf("join by an alias the service creates: %d %v", status, body)
	}
	status, body = apiCall(t, r, alice, v3, "POST", "/join/"+esc("#_bridge_closed:axon.test"), map[string]any{})
	wantAPIError(t, status, body, 404, "M_NOT_FOUND")
	status, body = apiCall(t, r, alice, v3, "POST", "/join/"+esc("#elsewhere:axon.test"), map[string]any{})
	wantAPIError(t, status, body, 404, "M_NOT_FOUND")

	f.mu.Lock()
	defer f.mu.Unlock()
	if got := strings.Join(f.userQueries, ","); got != "@_bridge_real1:axon.test,@_bridge_ghost:axon.test,@_bridge_real2:axon.test" {
		t.Errorf("user queries: %s (only unknown users in the namespace, once each)", got)
	}
	if got := strings.Join(f.queries, ","); got != "#_bridge_portal:axon.test,#_bridge_closed:axon.test" {
		t.Errorf("alias queries: %s", got)
	}
}

// TestAppServiceQueryFailures checks a service that does not answer a
// query properly gives the client an error saying so (not a 404), within
// the query timeout, and is not asked again by every request meanwhile.
func TestAppServiceQueryFailures(t *testing.T) {
	f := newFakeAS(t)
	dead := strings.NewReplacer("id: bridge", "id: dead", asToken, "dead-as-token", hsToken, "dead-hs-token",
		"_bridge_", "_dead_", "protocols: [gitter]\n", "").Replace(bridgeRegistration("http://127.0.0.1:1"))
	r, _ := startWithBridge(t, f, dead)
	const timeout = time.Second
	r.Server.AppServices.SetQueryTimeout(timeout)
	alice := r.CreateUser("alice")
	status, body := apiCall(t, r, alice, v3, "POST", "/createRoom", map[string]any{"preset": "public_chat"})
	if status != 200 {
		t.Fatalf("createRoom: %d %v", status, body)
	}
	room := body["room_id"].(string)
	queries := func() int {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.userQueries) + len(f.queries)
	}

	// Concurrent lookups of the same user share one query.
	f.mu.Lock()
	f.queryDelay = 300 * time.Millisecond
	f.mu.Unlock()
	var wg sync.WaitGroup
	statuses := make([]int, 4)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", r.URL+"/_matrix/client/v3/profile/"+esc("@_bridge_same:axon.test"), nil)
			req.Header.Set("Authorization", "Bearer "+alice.AccessToken)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				statuses[i] = resp.StatusCode
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	if n := queries(); n != 1 || statuses[0] != 404 || statuses[1] != 404 || statuses[2] != 404 || statuses[3] != 404 {
		t.Fatalf("concurrent lookups: %d queries, statuses %v (want 1 query, 404s)", n, statuses)
	}
	// Lookups of many distinct users: the service is asked about all of
	// them, but never about more than 8 at once.
	statuses = make([]int, 12)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", r.URL+"/_matrix/client/v3/profile/"+esc(fmt.Sprintf("@_bridge_many%d:axon.test", i)), nil)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				statuses[i] = resp.StatusCode
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	f.mu.Lock()
	maxInflight := f.maxInflight
	f.mu.Unlock()
	if n := queries(); n != 13 || maxInflight > 8 || maxInflight < 2 || slices.ContainsFunc(statuses, func(s int) bool { return s != 404 }) {
		t.Fatalf("many lookups: %d queries, at most %d at once, statuses %v (want 13, 2 to 8, 404s)", n, maxInflight, statuses)
	}

	// An error answer is a gateway error, not "no such user"; no cooldown.
	f.mu.Lock()
	f.queryDelay, f.queryStatus = 0, 500
	f.mu.Unlock()
	status, body = apiCall(t, r, alice, v3, "POST", "/rooms/"+esc(room)+"/invite", map[string]any{"user_id": "@_bridge_a:axon.test"})
	wantAPIError(t, status, body, 502, "M_BAD_STATUS")
	status, body = apiCall(t, r, alice, v3, "GET", "/directory/room/"+esc("#_bridge_a:axon.test"), nil)
	wantAPIError(t, status, body, 502, "M_BAD_STATUS")
	if n := queries(); n != 15 {
		t.Fatalf("queries after error answers: %d, want 15", n)
	}

	// An unreachable service.
	status, body = apiCall(t, r, alice, v3, "POST", "/rooms/"+esc(room)+"/invite", map[string]any{"user_id": "@_dead_a:axon.test"})
	wantAPIError(t, status, body, 502, "M_CONNECTION_FAILED")

	// A service that does not answer in time: 408, after the timeout.
	f.mu.Lock()
	f.queryDelay, f.queryStatus = time.Minute, 0
	f.mu.Unlock()
	start := time.Now()
	status, body = apiCall(t, r, alice, v3, "GET", "/directory/room/"+esc("#_bridge_slow:axon.test"), nil)
	took := time.Since(start)
	wantAPIError(t, status, body, 408, "M_CONNECTION_TIMEOUT")
	if took < timeout*9/10 || took > 3*timeout {
		t.Errorf("timed-out alias query took %v, want about %v", took, timeout)
	}
	// Meanwhile it is not asked again: requests fail at once, and a
	// createRoom whose invitee it would be asked about creates nothing.
	before := queries()
	start = time.Now()
	status, body = apiCall(t, r, alice, v3, "GET", "/profile/"+esc("@_bridge_b:axon.test"), nil)
	wantAPIError(t, status, body, 408, "M_CONNECTION_TIMEOUT")
	status, body = apiCall(t, r, alice, v3, "POST", "/createRoom", map[string]any{"invite": []string{"@_bridge_c:axon.test"}})
	wantAPIError(t, status, body, 408, "M_CONNECTION_TIMEOUT")
	// Third-party lookups leave the service out rather than wait for it.
	status, body = apiCall(t, r, alice, v3, "GET", "/thirdparty/protocols", nil)
	if status != 200 || body["gitter"] != nil {
		t.Errorf("protocols during the cooldown: %d %v (the service is left out)", status, body)
	}
	status, body = apiCall(t, r, alice, v3, "GET", "/thirdparty/location/gitter?room=x", nil)
	wantAPIError(t, status, body, 404, "M_NOT_FOUND")
	if took := time.Since(start); took > timeout/2 {
		t.Errorf("requests during the cooldown took %v", took)
	}
	if n := queries(); n != before {
		t.Errorf("service asked %d more times during the cooldown", n-before)
	}
	status, body = apiCall(t, r, alice, v3, "GET", "/joined_rooms", nil)
	if rooms, _ := body["joined_rooms"].([]any); status != 200 || len(rooms) != 1 {
		t.Errorf("joined rooms after the failed createRoom: %d %v", status, body)
	}

	// A transaction the service takes shows it is back: it is asked again.
	f.mu.Lock()
	f.queryDelay = 0
	f.mu.Unlock()
	if status, body := asCall(t, r, "POST", "/_matrix/client/v3/join/"+esc(room), "", map[string]any{}); status != 200 {
		t.Fatalf("service joins: %d %v", status, body)
	}
	f.waitFor("a transaction", func() bool { return len(f.delivered) > 0 })
	// The server learns of the acceptance a moment after the service
	// recorded it; lookups refused meanwhile do not ask the service.
	for deadline := time.Now().Add(5 * time.Second); ; {
		status, body = apiCall(t, r, alice, v3, "GET", "/profile/"+esc("@_bridge_d:axon.test"), nil)
		if status != 408 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	wantAPIError(t, status, body, 404, "M_NOT_FOUND")
	if n := queries(); n != before+1 {
		t.Errorf("service not asked after its recovery (%d queries, want %d)", n, before+1)
	}
}
