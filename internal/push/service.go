package push

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/netguard"
	"github.com/axon-matrix/axon/internal/rooms"
	"github.com/axon-matrix/axon/internal/storage"
)

// Service owns pushers and delivers pushes to their gateways.
//
// Delivery is a durable pipeline that never runs on the send path: a room
// event or a receipt only wakes the worker. The worker reads the events and
// receipts streams from its stored cursors, evaluates the push rules of the
// room's members that have pushers (nobody else: members without pushers
// cost nothing here, their counts are computed at /sync time), and writes
// one queue row per pusher for each notifying event, moving the cursors in
// the same transaction. Rows are deleted once the gateway accepted them and
// retried with exponential back-off otherwise, so a restart or a gateway
// outage loses nothing.
//
// The worker is woken by every event, so a wake must be cheap when it
// concerns nobody with a pusher: with no pusher at all the streams are not
// read (the cursors just move to the streams' ends); otherwise only events
// of rooms where someone has a pusher (or invites of such a user) are parsed
// and evaluated; the queue is not queried while it is known to be empty;
// and the rounds asked for by deliveries ending (one per pusher: hundreds
// for a message to a big room) are coalesced. Events are read at once;
// a burst of them is read by one query anyway, as a round reads all
// that arrived while the previous one ran.
type Service struct {
	db    *storage.DB
	rooms *rooms.Service
	eval  *Evaluator
	cfg   config.PushSettings
	// outbound is what gateway connections may reach.
	outbound *netguard.Policy
	log      *slog.Logger
	now      func() time.Time

	// UnreadTotal is the badge count of a user (sync.Service.UnreadTotal).
	UnreadTotal func(ctx context.Context, user string) (int, error)
	// GiveUpAfter is how long a failing push is retried.
	GiveUpAfter time.Duration

	client *http.Client
	wake   chan struct{}
	// finished is signalled by delivery goroutines as they end.
	finished chan struct{}
	done     chan struct{}

	mu      sync.Mutex
	pushers map[string][]storage.Pusher // by user; only users with pushers
	// lastUnread is the unread count last delivered to each pusher, so a
	// badge update goes out only when a receipt lowered it.
	lastUnread map[string]int
	// cursors are the worker's stream positions (only the worker touches
	// them); dirty means they moved since they were last saved.
	cursors map[string]int64
	dirty   bool
	saved   time.Time
	// baseBackoff is the first retry delay, doubled per failed attempt up
	// to maxBackoff.
	baseBackoff, maxBackoff time.Duration
	// inflight holds the pushers whose jobs a goroutine is sending; wg
	// counts those goroutines.
	inflight map[string]*flight
	wg       sync.WaitGroup
	// delivered remembers recently delivered job IDs, so a job read again
	// before its deletion is visible is not sent twice.
	delivered map[int64]bool
	// queueEmpty is set (by the worker only) when the queue was found
	// empty with nothing in flight; only the worker's own enqueues refill
	// it, so until then deliver need not ask the database.
	queueEmpty bool
	// stats counts the worker's reading (under mu).
	stats Stats
}

// Stats are counters of the delivery worker's reading, for tests and
// diagnostics: how much each wake costs.
type Stats struct {
	// EventsRead counts event rows read from the events stream.
	EventsRead int64
	// EventsEvaluated counts events evaluated against push rules (those
	// of rooms where someone has a pusher).
	EventsEvaluated int64
	// EventsCursor is the events stream position the worker has reached.
	EventsCursor int64
}

// Stats returns the worker's counters.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// SetBackoff changes the retry delays (tests use short ones).
func (s *Service) SetBackoff(base, maxDelay time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.baseBackoff, s.maxBackoff = base, maxDelay
}

// New creates the service. Call Start to run delivery.
//
// Gateways may be reached on the addresses outbound allows (nil: public
// ones only); push.allow_private_addresses lifts the restriction, for a
// gateway on the server's own machine or network.
func New(db *storage.DB, rs *rooms.Service, eval *Evaluator, cfg config.PushSettings, outbound *netguard.Policy, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	if outbound == nil {
		outbound = netguard.Public()
	}
	if cfg.AllowPrivateAddresses {
		outbound = netguard.Unrestricted()
	}
	s := &Service{
		db: db, rooms: rs, eval: eval, cfg: cfg, outbound: outbound, log: log, now: time.Now,
		baseBackoff: time.Second, maxBackoff: time.Hour, GiveUpAfter: 24 * time.Hour,
		wake: make(chan struct{}, 1), finished: make(chan struct{}, 1), delivered: map[int64]bool{}, inflight: map[string]*flight{}, cursors: map[string]int64{}, pushers: map[string][]storage.Pusher{}, lastUnread: map[string]int{},
	}
	s.SetRootCAs(nil)
	// New events may notify; a receipt may lower a badge.
	db.Feed().Subscribe(func(c storage.Change) {
		if c.Kind == storage.KindEvent || c.Kind == storage.KindReceipt {
			s.Kick()
		}
	})
	return s
}

// SetRootCAs sets the certificate authorities gateways are verified with
// (nil: the system's, which honour SSL_CERT_FILE).
func (s *Service) SetRootCAs(pool *x509.CertPool) {
	// The policy runs after name resolution, on every connection, so a
	// gateway name that resolves (or later re-resolves) inside the network
	// is refused too.
	dialer := s.outbound.Dialer(10 * time.Second)
	s.client = &http.Client{
		Timeout: 15 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil, // a proxy would defeat the address check
			DialContext:         dialer.DialContext,
			TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     90 * time.Second,
		},
		// A gateway redirecting elsewhere is not followed: the URL was
		// validated, its redirect target was not.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Kick wakes the worker (new events or receipts to look at).
func (s *Service) Kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Start runs the delivery worker until ctx ends; Wait waits for it.
func (s *Service) Start(ctx context.Context) error {
	if err := s.initCursors(ctx); err != nil {
		return err
	}
	s.reloadAll(ctx)
	s.done = make(chan struct{})
	go s.run(ctx)
	return nil
}

// Wait returns once a started worker has stopped.
func (s *Service) Wait() {
	if s.done != nil {
		<-s.done
	}
}

// The stream cursors of the worker.
const (
	cursorEvents   = "events"
	cursorReceipts = "receipts"
)

// initCursors loads the stream cursors; a fresh database starts at the
// current positions: history from before push existed is not pushed.
func (s *Service) initCursors(ctx context.Context) error {
	set := map[string]int64{}
	for name, stream := range map[string]storage.Stream{cursorEvents: storage.StreamEvents, cursorReceipts: storage.StreamReceipts} {
		pos, ok, err := s.db.PushCursor(ctx, name)
		if err != nil {
			return fmt.Errorf("push cursor: %w", err)
		}
		if !ok {
			pos = s.db.StreamPosition(stream)
			set[name] = pos
		}
		s.cursors[name] = pos
	}
	s.saved = time.Now()
	if len(set) == 0 {
		return nil
	}
	return s.db.EnqueuePushes(ctx, nil, set)
}

// saveCursors persists cursors that moved without producing jobs (moves
// that produce jobs are saved with them). Losing such a move in a crash
// only means reading those events again, which produces no jobs again
// (pushers registered since skip events older than themselves).
func (s *Service) saveCursors(ctx context.Context, force bool) {
	if !s.dirty || (!force && time.Since(s.saved) < cursorSaveInterval) {
		return
	}
	if err := s.db.EnqueuePushes(ctx, nil, map[string]int64{cursorEvents: s.cursors[cursorEvents], cursorReceipts: s.cursors[cursorReceipts]}); err != nil {
		s.log.Error("push: save cursors", "err", err)
		return
	}
	s.dirty, s.saved = false, time.Now()
}

// cursorSaveInterval bounds how often job-less cursor moves are written:
// a busy room must not cost a write per message for push bookkeeping.
const cursorSaveInterval = 10 * time.Second

func (s *Service) reloadAll(ctx context.Context) {
	users, err := s.db.PusherUsers(ctx)
	if err != nil {
		s.log.Error("load pushers", "err", err)
		return
	}
	m := map[string][]storage.Pusher{}
	for _, u := range users {
		ps, err := s.db.Pushers(ctx, u)
		if err != nil {
			s.log.Error("load pushers", "user", u, "err", err)
			continue
		}
		m[u] = ps
	}
	s.mu.Lock()
	s.pushers = m
	s.mu.Unlock()
}

func (s *Service) reloadUser(ctx context.Context, user string) {
	ps, err := s.db.Pushers(ctx, user)
	if err != nil {
		s.log.Error("load pushers", "user", user, "err", err)
		return
	}
	s.mu.Lock()
	if len(ps) == 0 {
		delete(s.pushers, user)
	} else {
		s.pushers[user] = ps
	}
	s.mu.Unlock()
}

func (s *Service) pushersOf(user string) []storage.Pusher {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pushers[user]
}

func (s *Service) hasPushers() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pushers) > 0
}

func (s *Service) run(ctx context.Context) {
	defer close(s.done)
	defer s.wg.Wait() // in-flight deliveries end with ctx
	// The database is closed only after the worker stopped: save the
	// cursors on the way out.
	defer s.saveCursors(context.WithoutCancel(ctx), true)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var lastRound time.Time
	for {
		lastRound = time.Now()
		if err := s.scan(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("push: reading streams", "err", err)
		}
		s.saveCursors(ctx, false)
		wait := s.deliver(ctx)
		if ctx.Err() != nil {
			return
		}
		if s.dirty && wait > cursorSaveInterval {
			wait = cursorSaveInterval
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-s.finished:
			// A delivery goroutine ended (there may be more queued for
			// its pusher). With many pushers they end in a stream, each
			// asking for a round of queue queries: let them gather, unless
			// new events arrive meanwhile (they are read at once, so a
			// push's latency is not delayed).
			if pause := finishCoalesce - time.Since(lastRound); pause > 0 {
				select {
				case <-ctx.Done():
					return
				case <-s.wake:
				case <-time.After(pause):
				}
			}
		case <-timer.C:
		}
	}
}

// finishCoalesce is the least time between two rounds started by ending
// deliveries.
const finishCoalesce = 10 * time.Millisecond

// scanBatch bounds the events read per transaction.
const scanBatch = 500

// scan turns new events and receipts into queue rows.
func (s *Service) scan(ctx context.Context) error {
	if !s.hasPushers() {
		// Nobody can be pushed to: nothing in the streams can make a
		// job, so they are skipped unread. A pusher registered next gets
		// the events after it, as when these were read and dropped.
		for name, stream := range map[string]storage.Stream{cursorEvents: storage.StreamEvents, cursorReceipts: storage.StreamReceipts} {
			if upto := s.db.StreamPosition(stream); upto > s.cursors[name] {
				s.cursors[name] = upto
				s.dirty = true
			}
		}
		s.mu.Lock()
		s.stats.EventsCursor = s.cursors[cursorEvents]
		s.mu.Unlock()
		return nil
	}
	for {
		evCur := s.cursors[cursorEvents]
		upto := s.db.StreamPosition(storage.StreamEvents)
		if evCur >= upto {
			break
		}
		rows, err := s.db.EventsAfter(ctx, evCur, upto, scanBatch)
		if err != nil {
			return err
		}
		last := upto
		if len(rows) == scanBatch {
			last = rows[len(rows)-1].StreamPos
		}
		var jobs []storage.PushJob
		relevant, members := s.concerning(ctx, rows)
		evs, err := s.rooms.Wrap(ctx, relevant)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			jobs = append(jobs, s.eventJobs(ctx, ev, members[ev.RoomID])...)
		}
		if len(jobs) > 0 {
			if err := s.enqueue(ctx, jobs, map[string]int64{cursorEvents: last}); err != nil {
				return err
			}
		} else {
			s.dirty = true
		}
		s.cursors[cursorEvents] = last
		s.mu.Lock()
		s.stats.EventsRead += int64(len(rows))
		s.stats.EventsEvaluated += int64(len(evs))
		s.stats.EventsCursor = last
		s.mu.Unlock()
		if last == upto {
			break
		}
	}
	rCur := s.cursors[cursorReceipts]
	rUpto := s.db.StreamPosition(storage.StreamReceipts)
	if rCur >= rUpto {
		return nil
	}
	receipts, err := s.db.ReceiptsAfter(ctx, rCur, rUpto)
	if err != nil {
		return err
	}
	var jobs []storage.PushJob
	seen := map[string]bool{}
	for _, r := range receipts {
		if (r.Type != "m.read" && r.Type != "m.read.private") || seen[r.UserID] {
			continue
		}
		seen[r.UserID] = true
		for _, p := range s.pushersOf(r.UserID) {
			jobs = append(jobs, storage.PushJob{UserID: p.UserID, AppID: p.AppID, PushKey: p.PushKey, Tweaks: "{}", CreatedTS: s.now().UnixMilli()})
		}
	}
	if len(jobs) > 0 {
		if err := s.enqueue(ctx, jobs, map[string]int64{cursorReceipts: rUpto}); err != nil {
			return err
		}
	} else {
		s.dirty = true
	}
	s.cursors[cursorReceipts] = rUpto
	return nil
}

// enqueue stores jobs and cursor moves; the queue is no longer empty.
func (s *Service) enqueue(ctx context.Context, jobs []storage.PushJob, cursors map[string]int64) error {
	if err := s.db.EnqueuePushes(ctx, jobs, cursors); err != nil {
		return err
	}
	s.queueEmpty = false
	return nil
}

// concerning keeps the rows that can make a push: events of rooms where a
// joined member has a pusher, and membership events whose subject has one
// (an invite notifies its target). It returns them with the joined members
// of their rooms, read once per room for the whole batch, so that an event
// nobody with a pusher can see is neither parsed nor evaluated.
func (s *Service) concerning(ctx context.Context, rows []*storage.Event) ([]*storage.Event, map[string][]string) {
	members := map[string][]string{}
	withPusher := map[string]bool{}
	var out []*storage.Event
	for _, row := range rows {
		if row.RedactedBy != "" {
			continue // eventJobs would drop it
		}
		if _, ok := members[row.RoomID]; !ok {
			byM, err := s.rooms.MembersByMembership(ctx, row.RoomID)
			if err != nil {
				s.log.Error("push: room members", "room", row.RoomID, "err", err)
				byM = nil
			}
			joined := byM["join"]
			if joined == nil {
				joined = []string{}
			}
			members[row.RoomID] = joined
			withPusher[row.RoomID] = s.anyHasPushers(joined)
		}
		if withPusher[row.RoomID] ||
			(row.Type == "m.room.member" && row.StateKey != nil && s.anyHasPushers([]string{*row.StateKey})) {
			out = append(out, row)
		}
	}
	return out, members
}

// anyHasPushers reports whether one of the users has a pusher.
func (s *Service) anyHasPushers(users []string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range users {
		if len(s.pushers[u]) > 0 {
			return true
		}
	}
	return false
}

// eventJobs evaluates an event for the room's local members with pushers
// (joined, the room's joined members when the batch was read).
func (s *Service) eventJobs(ctx context.Context, ev *rooms.Event, joined []string) []storage.PushJob {
	if ev.RedactedBy != "" {
		return nil
	}
	targets := joined
	if ev.Type == "m.room.member" && ev.StateKey != nil && *ev.StateKey != ev.Sender {
		// The subject of a membership event (an invite above all) is a
		// recipient even when not joined.
		var c struct {
			Membership string `json:"membership"`
		}
		_ = json.Unmarshal(ev.PDU.Content, &c)
		if c.Membership == "invite" {
			// A full slice expression: joined is shared by the batch.
			targets = append(targets[:len(targets):len(targets)], *ev.StateKey)
		}
	}
	var jobs []storage.PushJob
	for _, u := range targets {
		ps := s.pushersOf(u)
		if len(ps) == 0 || u == ev.Sender {
			continue
		}
		o, err := s.eval.Evaluate(ctx, ev, u)
		if err != nil {
			s.log.Error("push: evaluate", "user", u, "event", ev.EventID, "err", err)
			continue
		}
		if !o.Notify {
			continue
		}
		tweaks, _ := json.Marshal(o.Tweaks)
		for _, p := range ps {
			// A pusher registered after the event does not get it.
			if ev.OriginTS < p.CreatedTS-5000 {
				continue
			}
			jobs = append(jobs, storage.PushJob{UserID: u, AppID: p.AppID, PushKey: p.PushKey, EventID: ev.EventID,
				RoomID: ev.RoomID, Tweaks: string(tweaks), CreatedTS: s.now().UnixMilli()})
		}
	}
	return jobs
}

// deliverBatch bounds the jobs read per round.
const deliverBatch = 200

// deliver hands due jobs to one goroutine per pusher, which sends them in
// queue order and stops at the first failure (the rest wait for the retry).
// It does not wait for them: a gateway that hangs delays only its own
// pushes; a goroutine that finishes wakes the worker for the next round.
// It returns how long to sleep before the next due job.
func (s *Service) deliver(ctx context.Context) time.Duration {
	const idle = time.Hour
	if s.queueEmpty {
		return idle
	}
	jobs, err := s.db.DuePushes(ctx, s.now().UnixMilli(), deliverBatch)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("push: read queue", "err", err)
		}
		return 5 * time.Second
	}
	byPusher := map[string][]storage.PushJob{}
	var order []string
	for _, j := range jobs {
		k := pusherKey(j.UserID, j.AppID, j.PushKey)
		if _, ok := byPusher[k]; !ok {
			order = append(order, k)
		}
		byPusher[k] = append(byPusher[k], j)
	}
	dispatched := 0
	s.mu.Lock()
	for _, k := range order {
		list := byPusher[k]
		if f := s.inflight[k]; f != nil {
			// Its goroutine's end starts the next round; jobs queued
			// behind the ones it has make that round urgent.
			f.more = f.more || list[len(list)-1].ID > f.last
			continue
		}
		s.inflight[k] = &flight{last: list[len(list)-1].ID}
		dispatched++
		s.wg.Add(1)
		go func(k string, list []storage.PushJob) {
			defer func() {
				s.mu.Lock()
				more := s.inflight[k].more
				delete(s.inflight, k)
				s.mu.Unlock()
				s.wg.Done()
				if more {
					s.Kick() // jobs of this pusher wait: send them now
					return
				}
				select {
				case s.finished <- struct{}{}:
				default:
				}
			}()
			for _, j := range list {
				if ctx.Err() != nil || !s.deliverOne(ctx, j) {
					return
				}
			}
		}(k, list)
	}
	s.mu.Unlock()
	next, ok, err := s.db.NextPushTime(ctx)
	if err != nil {
		return idle
	}
	if !ok {
		// No row at all, in flight or not (rows are deleted only once
		// sent or given up, and a failed one stays with its retry
		// time): the queue stays empty until the next enqueue.
		s.queueEmpty = true
		return idle
	}
	wait := time.Until(time.UnixMilli(next))
	if wait <= 0 {
		if dispatched == 0 || len(jobs) < deliverBatch {
			// Every due job was seen and is in flight: the ends of
			// their goroutines start the next round.
			return idle
		}
		wait = 0
	}
	return wait
}

// flight is a pusher's delivery goroutine: the last job it was given, and
// whether later jobs of the pusher were found waiting.
type flight struct {
	last int64
	more bool
}

func pusherKey(user, appID, pushkey string) string {
	return user + "\x00" + appID + "\x00" + pushkey
}

// deliverOne sends one job; false means it failed and will be retried.
func (s *Service) deliverOne(ctx context.Context, j storage.PushJob) bool {
	var pusher *storage.Pusher
	for _, p := range s.pushersOf(j.UserID) {
		if p.AppID == j.AppID && p.PushKey == j.PushKey {
			pusher = &p
			break
		}
	}
	s.mu.Lock()
	again := s.delivered[j.ID]
	s.mu.Unlock()
	drop := func() bool {
		if err := s.db.DeletePush(ctx, j.ID); err != nil && ctx.Err() == nil {
			s.log.Error("push: delete job", "err", err)
		}
		return true
	}
	if pusher == nil || again {
		return drop() // the pusher was removed, or this was sent already
	}
	body, unread, send, err := s.payload(ctx, j, pusher)
	if err != nil {
		s.log.Error("push: build payload", "user", j.UserID, "event", j.EventID, "err", err)
		return s.retry(ctx, j, err)
	}
	if !send {
		return drop()
	}
	var data pusherData
	_ = json.Unmarshal([]byte(pusher.Data), &data)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, data.URL, bytes.NewReader(body))
	if err != nil {
		s.log.Warn("push: bad gateway URL, dropping push", "url", data.URL, "err", err)
		return drop()
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		if errors.Is(err, netguard.ErrBlocked) {
			// A gateway name that resolves into a private network: say
			// which settings allow it, since retrying will not.
			s.log.Warn("push: gateway address is not public; allow it with push.allow_private_addresses or outbound.allowed_networks",
				"url", data.URL, "user", j.UserID)
		}
		return s.retry(ctx, j, err)
	}
	defer resp.Body.Close()
	respBody, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return s.retry(ctx, j, fmt.Errorf("gateway answered %s", resp.Status))
	default:
		// The gateway refuses this push for good (the spec does not say
		// what a 4xx means); retrying would not change its mind.
		s.log.Warn("push: gateway refused push", "url", data.URL, "status", resp.Status, "user", j.UserID)
		return drop()
	}
	var r struct {
		Rejected []string `json:"rejected"`
	}
	_ = json.Unmarshal(respBody, &r)
	for _, key := range r.Rejected {
		if key != pusher.PushKey {
			continue
		}
		s.log.Info("push: gateway rejected pushkey, removing pusher", "user", j.UserID, "app_id", pusher.AppID)
		if _, err := s.db.DeletePusher(ctx, j.UserID, pusher.AppID, key); err != nil {
			s.log.Error("push: remove rejected pusher", "err", err)
		}
		s.reloadUser(ctx, j.UserID)
	}
	s.mu.Lock()
	s.lastUnread[pusherKey(j.UserID, j.AppID, j.PushKey)] = unread
	if len(s.delivered) > 10000 {
		s.delivered = map[int64]bool{}
	}
	s.delivered[j.ID] = true
	s.mu.Unlock()
	return drop()
}

// retry schedules the next attempt with exponential back-off, or gives up
// on a job that has failed for GiveUpAfter.
func (s *Service) retry(ctx context.Context, j storage.PushJob, cause error) bool {
	now := s.now()
	if now.Sub(time.UnixMilli(j.CreatedTS)) > s.GiveUpAfter {
		s.log.Warn("push: giving up", "user", j.UserID, "event", j.EventID, "attempts", j.Attempts+1, "err", cause)
		_ = s.db.DeletePush(ctx, j.ID)
		return true
	}
	s.mu.Lock()
	base, maxDelay := s.baseBackoff, s.maxBackoff
	s.mu.Unlock()
	delay := base << min(j.Attempts, 30)
	if delay > maxDelay || delay <= 0 {
		delay = maxDelay
	}
	s.log.Info("push: delivery failed, will retry", "user", j.UserID, "event", j.EventID, "in", delay, "err", cause)
	if err := s.db.RetryPush(ctx, j, j.Attempts+1, now.Add(delay).UnixMilli()); err != nil && ctx.Err() == nil {
		s.log.Error("push: record retry", "err", err)
	}
	return false
}

// Notification is the push gateway request body's notification object.
type Notification struct {
	EventID           string          `json:"event_id,omitempty"`
	RoomID            string          `json:"room_id,omitempty"`
	Type              string          `json:"type,omitempty"`
	Sender            string          `json:"sender,omitempty"`
	SenderDisplayName string          `json:"sender_display_name,omitempty"`
	RoomName          string          `json:"room_name,omitempty"`
	RoomAlias         string          `json:"room_alias,omitempty"`
	UserIsTarget      bool            `json:"user_is_target,omitempty"`
	Prio              string          `json:"prio,omitempty"`
	Content           json.RawMessage `json:"content,omitempty"`
	Counts            Counts          `json:"counts"`
	Devices           []Device        `json:"devices"`
}

// Counts are the badge counts. unread is always sent, 0 included: a zero is
// what clears the badge on the other devices.
type Counts struct {
	Unread int `json:"unread"`
}

// Device is one pusher in a notification.
type Device struct {
	AppID     string          `json:"app_id"`
	PushKey   string          `json:"pushkey"`
	PushKeyTS int64           `json:"pushkey_ts"`
	Data      json.RawMessage `json:"data"`
	Tweaks    json.RawMessage `json:"tweaks"`
}

// payload builds the request body of a job; send false means there is
// nothing to say (a badge update that would not lower the badge, or an
// event that was redacted meanwhile).
func (s *Service) payload(ctx context.Context, j storage.PushJob, p *storage.Pusher) (body []byte, unread int, send bool, err error) {
	var data map[string]any
	_ = json.Unmarshal([]byte(p.Data), &data)
	format, _ := data["format"].(string)
	delete(data, "url")
	dataJSON, _ := json.Marshal(data)
	if s.UnreadTotal != nil {
		if unread, err = s.UnreadTotal(ctx, j.UserID); err != nil {
			return nil, 0, false, err
		}
	}
	tweaks := json.RawMessage(j.Tweaks)
	if j.EventID == "" {
		tweaks = json.RawMessage(`{}`)
	}
	n := Notification{
		Counts:  Counts{Unread: unread},
		Devices: []Device{{AppID: p.AppID, PushKey: p.PushKey, PushKeyTS: p.CreatedTS / 1000, Data: dataJSON, Tweaks: tweaks}},
	}
	if j.EventID == "" {
		s.mu.Lock()
		last, known := s.lastUnread[pusherKey(j.UserID, j.AppID, j.PushKey)]
		s.mu.Unlock()
		if known && unread >= last {
			return nil, unread, false, nil
		}
	} else {
		ev, err := s.rooms.Event(ctx, j.EventID)
		if err != nil {
			return nil, 0, false, nil // gone: nothing to push
		}
		if ev.RedactedBy != "" {
			return nil, 0, false, nil
		}
		var tw map[string]any
		_ = json.Unmarshal([]byte(j.Tweaks), &tw)
		hl, _ := tw["highlight"].(bool)
		_, sound := tw["sound"]
		n.Prio = "low"
		if hl || sound {
			n.Prio = "high"
		}
		n.EventID, n.RoomID = ev.EventID, ev.RoomID
		if format != "event_id_only" {
			n.Type, n.Sender = ev.Type, ev.Sender
			n.Content = json.RawMessage(ev.PDU.Content)
			n.SenderDisplayName = s.stateString(ctx, ev.RoomID, "m.room.member", ev.Sender, "displayname")
			n.RoomName = s.stateString(ctx, ev.RoomID, "m.room.name", "", "name")
			n.RoomAlias = s.stateString(ctx, ev.RoomID, "m.room.canonical_alias", "", "alias")
			n.UserIsTarget = ev.Type == "m.room.member" && ev.StateKey != nil && *ev.StateKey == j.UserID
		}
	}
	body, err = json.Marshal(map[string]any{"notification": n})
	return body, unread, err == nil, err
}

// stateString reads a string field of a current state event ("" if none).
func (s *Service) stateString(ctx context.Context, roomID, typ, stateKey, field string) string {
	ev, err := s.rooms.CurrentStateEvent(ctx, roomID, typ, stateKey)
	if err != nil || ev == nil {
		return ""
	}
	var c map[string]any
	_ = json.Unmarshal(ev.PDU.Content, &c)
	v, _ := c[field].(string)
	return v
}
