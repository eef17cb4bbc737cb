package clientapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/testrig"
)

// TestMessagesRelationFilter checks MSC3874's org.matrix.msc3874.rel_types
// and not_rel_types in /messages filters and in a stored sync filter.
func TestMessagesRelationFilter(t *testing.T) {
	ctx := context.Background()
	r := testrig.Start(t)
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	room, _ := sharedRoom(t, alice, bob)
	from := initialSync(t, alice)
	send := func(content map[string]any) id.EventID {
		t.Helper()
		resp, err := alice.SendMessageEvent(ctx, room, event.EventMessage, content)
		if err != nil {
			t.Fatal(err)
		}
		return resp.EventID
	}
	root := send(map[string]any{"msgtype": "m.text", "body": "root"})
	thread := send(map[string]any{"msgtype": "m.text", "body": "in thread",
		"m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": root}})
	ref := send(map[string]any{"msgtype": "m.text", "body": "reference",
		"m.relates_to": map[string]any{"rel_type": "m.reference", "event_id": root}})
	// A malformed m.relates_to counts as no relation.
	odd := send(map[string]any{"msgtype": "m.text", "body": "odd", "m.relates_to": "m.thread"})

	messages := func(f string) []string {
		t.Helper()
		status, body := apiCall(t, r, alice, v3, http.MethodGet, "/rooms/"+esc(room.String())+"/messages?dir=f&from="+
			url.QueryEscape(from)+"&filter="+url.QueryEscape(f), nil)
		if status != http.StatusOK {
			t.Fatalf("messages with %s: %d %v", f, status, body)
		}
		return chunkIDs(body)
	}
	ids := func(evs ...id.EventID) []string {
		var out []string
		for _, e := range evs {
			out = append(out, e.String())
		}
		return out
	}
	for _, c := range []struct {
		filter string
		want   []string
	}{
		{`{"org.matrix.msc3874.rel_types":["m.thread"]}`, ids(thread)},
		{`{"org.matrix.msc3874.rel_types":["m.reference"]}`, ids(ref)},
		{`{"org.matrix.msc3874.rel_types":["m.thread","m.reference"]}`, ids(thread, ref)},
		{`{"org.matrix.msc3874.rel_types":[]}`, nil},
		{`{"org.matrix.msc3874.not_rel_types":["m.thread"]}`, ids(root, ref, odd)},
		{`{"org.matrix.msc3874.not_rel_types":["m.reference"]}`, ids(root, thread, odd)},
		{`{"org.matrix.msc3874.not_rel_types":["m.thread","m.reference"]}`, ids(root, odd)},
		{`{"org.matrix.msc3874.rel_types":["m.thread","m.reference"],"org.matrix.msc3874.not_rel_types":["m.reference"]}`, ids(thread)},
		{`{"org.matrix.msc3874.rel_types":["m.thread"],"types":["m.room.message"]}`, ids(thread)},
		{`{}`, ids(root, thread, ref, odd)},
	} {
		if got := messages(c.filter); !slices.Equal(got, c.want) {
			t.Errorf("filter %s: got %v, want %v", c.filter, got, c.want)
		}
	}

	// A sync filter's timeline applies the fields too.
	status, body := apiCall(t, r, alice, v3, http.MethodGet, "/sync?since="+url.QueryEscape(from)+"&filter="+
		url.QueryEscape(`{"room":{"timeline":{"org.matrix.msc3874.not_rel_types":["m.thread"]}}}`), nil)
	if status != http.StatusOK {
		t.Fatalf("sync: %d %v", status, body)
	}
	tl := body["rooms"].(map[string]any)["join"].(map[string]any)[room.String()].(map[string]any)["timeline"].(map[string]any)
	if got := fieldOf(tl["events"], "event_id"); !slices.Equal(got, ids(root, ref, odd)) {
		t.Errorf("sync timeline: got %v", got)
	}

	// The fields are lists of strings; anything else is refused.
	for _, bad := range []string{`{"org.matrix.msc3874.rel_types":"m.thread"}`, `{"org.matrix.msc3874.not_rel_types":[1]}`} {
		status, body := apiCall(t, r, alice, v3, http.MethodGet, "/rooms/"+esc(room.String())+"/messages?dir=b&filter="+url.QueryEscape(bad), nil)
		wantAPIError(t, status, body, http.StatusBadRequest, "M_BAD_JSON", fmt.Sprint("filter ", bad))
	}
}
