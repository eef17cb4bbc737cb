package clientapi

import (
	"maps"
	"net/http"
	"strings"

	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/rooms"
)

// specVersions are the spec versions whose client-server API we serve.
// v1.13 and v1.14 add room and user reports (reports.go), v1.15 the room
// summary (room_summary.go) and the OAuth 2.0 API, which is optional:
// /auth_metadata answers that it is not used. docs/spec-versions.md lists
// what v1.16 to v1.19 add, what Axon does about each change, and which do
// not apply to a server without SSO, OAuth or federation; check a new
// version the same way before listing it here.
var specVersions = []string{"r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10",
	"v1.11", "v1.12", "v1.13", "v1.14", "v1.15", "v1.16", "v1.17", "v1.18", "v1.19"}

// unstableFeatures are the flags clients check before using an MSC; each
// names something Axon does (versions_test.go exercises every one, and pins
// the flags clients look for that Axon must not claim). Some repeat a spec
// version Axon lists, because clients released before that version check
// only the flag: Element Web before 2025 refuses to set up cross-signing
// without org.matrix.e2e_cross_signing, and its room directory sends the
// room type filter only with org.matrix.msc3827.stable.
var unstableFeatures = map[string]bool{
	"org.matrix.e2e_cross_signing":  true, // cross-signing (MSC1756, spec v1.1): /keys/device_signing/upload, /keys/signatures/upload
	"org.matrix.msc3440.stable":     true, // threads: GET /v1/rooms/{roomId}/threads, m.thread aggregations
	"org.matrix.msc2285.stable":     true, // private read receipts (m.read.private)
	"org.matrix.msc3771":            true, // threaded read receipts (thread_id)
	"org.matrix.msc3773":            true, // per-thread unread counts (unread_thread_notifications)
	"org.matrix.msc3391":            true, // deleting account data: DELETE at the MSC's unstable path (matrix-js-sdk's deleteAccountData uses it only with this flag)
	"org.matrix.msc3827.stable":     true, // /publicRooms filter.room_types (spec v1.4)
	"org.matrix.msc3916.stable":     true, // authenticated media at /_matrix/client/v1/media (spec v1.11)
	"org.matrix.simplified_msc3575": true, // simplified sliding sync (MSC4186) at its unstable path
}

// threadSubscriptionsFlag is MSC4306's flag, which matrix-rust-sdk (Element
// X) checks before subscribing to threads; listed only when the server
// has them on (experimental.msc4306_thread_subscriptions).
const threadSubscriptionsFlag = "org.matrix.msc4306"

func (a *API) versions(w http.ResponseWriter, r *http.Request) {
	features := unstableFeatures
	if a.ThreadSubs != nil {
		features = maps.Clone(unstableFeatures)
		features[threadSubscriptionsFlag] = true
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{
		"versions":          specVersions,
		"unstable_features": features,
	})
}

func (a *API) wellKnown(w http.ResponseWriter, r *http.Request) {
	base := a.Cfg.WellKnownClient
	if base == "" {
		base = a.Cfg.PublicBaseURL
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{
		"m.homeserver": map[string]string{"base_url": strings.TrimSuffix(base, "/")},
	})
}

func (a *API) capabilities(w http.ResponseWriter, r *http.Request) {
	available := map[string]string{}
	for _, v := range rooms.SupportedVersions {
		available[string(v)] = "stable"
	}
	caps := map[string]any{
		"m.change_password": map[string]bool{"enabled": true},
		"m.room_versions":   map[string]any{"default": string(rooms.DefaultRoomVersion), "available": available},
		"m.set_displayname": map[string]bool{"enabled": true},
		"m.set_avatar_url":  map[string]bool{"enabled": true},
		"m.3pid_changes":    map[string]bool{"enabled": a.Threepids.EmailEnabled()},
		"m.get_login_token": map[string]bool{"enabled": true},
		// Any field may be set (spec v1.16), within the profile's 64 KiB.
		"m.profile_fields": map[string]any{"enabled": true},
		// Leaving keeps the room until /forget (spec v1.18 lets servers
		// forget on leave if they say so here; Axon does not).
		"m.forget_forced_upon_leave": map[string]bool{"enabled": false},
	}
	// Server admins may lock and suspend other accounts (PUT
	// /v1/admin/lock|suspend); the spec wants the capability left out for
	// everyone else.
	if httpapi.CallerOf(r).IsAdmin {
		caps["m.account_moderation"] = map[string]bool{"lock": true, "suspend": true}
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"capabilities": caps})
}

// policyServer answers GET /.well-known/matrix/policy_server with 404, the
// spec's "no policy server information": Axon is not a Policy Server (it
// does not sign events for rooms that name it in m.room.policy), and the
// key published here must be the one such a server for this server name
// signs with, so there is nothing an operator could correctly configure.
func (a *API) policyServer(w http.ResponseWriter, r *http.Request) {
	httpapi.WriteError(w, r, mxerr.NotFound("This server is not a policy server"))
}
