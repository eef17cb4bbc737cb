// Package clientapi holds the client-server API handlers, one file per spec
// module. Handlers decode and validate, call one service method and encode
// the result; the logic lives in the services.
package clientapi

import (
	"github.com/axon-matrix/axon/internal/accountdata"
	"github.com/axon-matrix/axon/internal/directory"
	"github.com/axon-matrix/axon/internal/presence"
	"github.com/axon-matrix/axon/internal/receipts"
	"github.com/axon-matrix/axon/internal/reports"
	"log/slog"

	"github.com/axon-matrix/axon/internal/account"
	"github.com/axon-matrix/axon/internal/appservice"
	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/keys"
	"github.com/axon-matrix/axon/internal/media"
	"github.com/axon-matrix/axon/internal/notices"
	"github.com/axon-matrix/axon/internal/push"
	"github.com/axon-matrix/axon/internal/rooms"
	"github.com/axon-matrix/axon/internal/search"
	"github.com/axon-matrix/axon/internal/slidingsync"
	"github.com/axon-matrix/axon/internal/spaces"
	"github.com/axon-matrix/axon/internal/sync"
	"github.com/axon-matrix/axon/internal/threadsubs"
	"github.com/axon-matrix/axon/internal/threepid"
)

// API is the set of services the handlers use.
type API struct {
	Cfg      *config.Config
	Rooms    *rooms.Service
	Accounts *account.Service
	Sync     *sync.Service
	Keys     *keys.Service
	Media    *media.Service
	Log      *slog.Logger

	// Push holds pushers and delivery; PushRules the users' push rules.
	Push      *push.Service
	PushRules *push.Rules

	// SlidingSync answers simplified sliding sync (MSC4186).
	SlidingSync *slidingsync.Service

	// AppServices are the registered application services.
	AppServices *appservice.Service

	// The smaller services, each built once by the server.
	AccountData *accountdata.Service
	Directory   *directory.Service
	Presence    *presence.Service
	Receipts    *receipts.Service
	Reports     *reports.Service
	Notices     *notices.Service
	Search      *search.Service
	Spaces      *spaces.Service
	// ThreadSubs is nil unless experimental.msc4306_thread_subscriptions is on.
	ThreadSubs *threadsubs.Service

	// Threepids holds users' email addresses and their validation.
	Threepids *threepid.Service
}
