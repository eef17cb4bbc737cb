package clientapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/testrig"
)

func send(t *testing.T, c *mautrix.Client, room id.RoomID, content map[string]any) string {
	t.Helper()
	resp, err := c.SendMessageEvent(context.Background(), room, event.EventMessage, content)
	if err != nil {
		t.Fatal(err)
	}
	return resp.EventID.String()
}

func react(t *testing.T, c *mautrix.Client, room id.RoomID, target, key string) string {
	t.Helper()
	resp, err := c.SendMessageEvent(context.Background(), room, event.EventReaction, map[string]any{
		"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": target, "key": key},
	})
	if err != nil {
		t.Fatal(err)
	}
	return resp.EventID.String()
}

func threadReply(t *testing.T, c *mautrix.Client, room id.RoomID, root, body string) string {
	return send(t, c, room, map[string]any{"msgtype": "m.text", "body": body,
		"m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": root}})
}

func TestRelations(t *testing.T) {
	r := testrig.Start(t)
	alice, bob, eve := r.CreateUser("alice"), r.CreateUser("bob"), r.CreateUser("eve")
	room, _ := sharedRoom(t, alice, bob)
	root := send(t, alice, room, map[string]any{"msgtype": "m.text", "body": "root"})
	r1 := threadReply(t, bob, room, root, "reply 1")
	thumbs := react(t, alice, room, root, "👍")
	r2 := threadReply(t, alice, room, root, "reply 2")
	deep := react(t, bob, room, r1, "🎉") // relates to the reply, not the root
	rel := func(c *mautrix.Client, suffix string, q url.Values) (int, map[string]any) {
		t.Helper()
		path := fmt.Sprintf("/rooms/%s/relations/%s%s", url.PathEscape(room.String()), url.PathEscape(root), suffix)
		if q != nil {
			path += "?" + q.Encode()
		}
		return apiCall(t, r, c, v1, http.MethodGet, path, nil)
	}

	// Direct relations, newest first; no recursion_depth unless asked.
	status, body := rel(bob, "", nil)
	if got := chunkIDs(body); status != 200 || !slices.Equal(got, []string{r2, thumbs, r1}) {
		t.Fatalf("direct relations %d %v, want %v", status, got, []string{r2, thumbs, r1})
	}
	if _, ok := body["recursion_depth"]; ok {
		t.Fatalf("recursion_depth present without recurse: %v", body)
	}
	// Filtered by relation type, then by relation and event type.
	if _, body = rel(bob, "/m.thread", nil); !slices.Equal(chunkIDs(body), []string{r2, r1}) {
		t.Fatalf("m.thread relations %v", chunkIDs(body))
	}
	if _, body = rel(bob, "/m.annotation/m.reaction", nil); !slices.Equal(chunkIDs(body), []string{thumbs}) {
		t.Fatalf("m.annotation/m.reaction relations %v", chunkIDs(body))
	}
	// Forwards, oldest first.
	if _, body = rel(bob, "", url.Values{"dir": {"f"}}); !slices.Equal(chunkIDs(body), []string{r1, thumbs, r2}) {
		t.Fatalf("forward relations %v", chunkIDs(body))
	}
	// recurse=true also finds the reaction to a thread reply.
	status, body = rel(bob, "", url.Values{"recurse": {"true"}})
	if got := chunkIDs(body); status != 200 || !slices.Equal(got, []string{deep, r2, thumbs, r1}) {
		t.Fatalf("recursive relations %d %v", status, got)
	}
	if body["recursion_depth"] != float64(3) {
		t.Fatalf("recursion_depth %v, want 3", body["recursion_depth"])
	}
	if _, body = rel(bob, "", url.Values{"recurse": {"false"}}); body["recursion_depth"] != float64(1) || len(chunkIDs(body)) != 3 {
		t.Fatalf("recurse=false: %v", body)
	}

	// Paging two at a time walks all three, each once, with prev_batch
	// echoing the token the page started from.
	var seen []string
	from := ""
	for page := 0; ; page++ {
		q := url.Values{"limit": {"2"}}
		if from != "" {
			q.Set("from", from)
		}
		status, body = rel(bob, "", q)
		if status != 200 || page > 3 {
			t.Fatalf("page %d: %d %v", page, status, body)
		}
		if from != "" && body["prev_batch"] != from {
			t.Fatalf("prev_batch %v, want %s", body["prev_batch"], from)
		}
		seen = append(seen, chunkIDs(body)...)
		next, _ := body["next_batch"].(string)
		if next == "" {
			break
		}
		from = next
	}
	if !slices.Equal(seen, []string{r2, thumbs, r1}) {
		t.Fatalf("paged relations %v", seen)
	}

	// Errors: an outsider, an unknown event, bad parameters.
	status, body = rel(eve, "", nil)
	wantAPIError(t, status, body, http.StatusNotFound, "M_NOT_FOUND")
	status, body = apiCall(t, r, bob, v1, http.MethodGet, fmt.Sprintf("/rooms/%s/relations/%s", url.PathEscape(room.String()), url.PathEscape("$nope")), nil)
	wantAPIError(t, status, body, http.StatusNotFound, "M_NOT_FOUND")
	status, body = rel(bob, "", url.Values{"dir": {"sideways"}})
	wantAPIError(t, status, body, http.StatusBadRequest, "M_INVALID_PARAM")
	status, body = rel(bob, "", url.Values{"recurse": {"yes"}})
	wantAPIError(t, status, body, http.StatusBadRequest, "M_INVALID_PARAM")
	status, body = rel(bob, "", url.Values{"from": {"garbage"}})
	if status != http.StatusBadRequest {
		t.Fatalf("bad from token: %d %v", status, body)
	}
}

func TestThreadsList(t *testing.T) {
	r := testrig.Start(t)
	alice, bob, eve := r.CreateUser("alice"), r.CreateUser("bob"), r.CreateUser("eve")
	room, _ := sharedRoom(t, alice, bob)
	var roots []string
	for i := 0; i < 3; i++ {
		roots = append(roots, send(t, alice, room, map[string]any{"msgtype": "m.text", "body": fmt.Sprintf("root %d", i)}))
	}
	threadReply(t, alice, room, roots[0], "a in 0")
	threadReply(t, alice, room, roots[2], "a in 2")
	threadReply(t, bob, room, roots[1], "b in 1")
	threadReply(t, alice, room, roots[0], "a again in 0") // thread 0 is now the newest
	threads := func(c *mautrix.Client, q url.Values) (int, map[string]any) {
		t.Helper()
		return apiCall(t, r, c, v1, http.MethodGet, fmt.Sprintf("/rooms/%s/threads?%s", url.PathEscape(room.String()), q.Encode()), nil)
	}

	// Newest activity first.
	status, body := threads(bob, url.Values{})
	if got := chunkIDs(body); status != 200 || !slices.Equal(got, []string{roots[0], roots[1], roots[2]}) {
		t.Fatalf("threads %d %v", status, got)
	}
	// Only the thread bob replied in (alice started all three).
	if _, body = threads(bob, url.Values{"include": {"participated"}}); !slices.Equal(chunkIDs(body), []string{roots[1]}) {
		t.Fatalf("participated threads %v", chunkIDs(body))
	}
	// Pages of one.
	var seen []string
	q := url.Values{"limit": {"1"}}
	for page := 0; ; page++ {
		status, body = threads(bob, q)
		if status != 200 || page > 4 {
			t.Fatalf("page %d: %d %v", page, status, body)
		}
		seen = append(seen, chunkIDs(body)...)
		next, _ := body["next_batch"].(string)
		if next == "" {
			break
		}
		q.Set("from", next)
	}
	if !slices.Equal(seen, []string{roots[0], roots[1], roots[2]}) {
		t.Fatalf("paged threads %v", seen)
	}
	status, body = threads(eve, url.Values{})
	wantAPIError(t, status, body, http.StatusForbidden, "M_FORBIDDEN")
	status, body = threads(bob, url.Values{"include": {"mine"}})
	wantAPIError(t, status, body, http.StatusBadRequest, "M_INVALID_PARAM")
}
