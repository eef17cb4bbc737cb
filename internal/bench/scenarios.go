package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// registerUsers registers n fresh users named <prefix>_<tag><i>.
func (r *runner) registerUsers(ctx context.Context, tag string, n int) ([]*user, error) {
	start := time.Now()
	users := make([]*user, n)
	err := parallel(ctx, n, r.opts.RegisterConcurrency, func(ctx context.Context, i int) error {
		u, err := r.c.register(ctx, fmt.Sprintf("%s_%s%d", r.prefix, tag, i))
		users[i] = u
		return err
	})
	if err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
	r.logf("registered %d users in %v (%.0f/s)", n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
	return users, nil
}

// joinAll makes every user join roomID, SetupConcurrency at a time.
func (r *runner) joinAll(ctx context.Context, roomID string, users []*user) error {
	return parallel(ctx, len(users), r.opts.SetupConcurrency, func(ctx context.Context, i int) error {
		return r.c.join(ctx, users[i], roomID)
	})
}

// roomOf registers n users; the first creates a public room and the others
// join it.
func (r *runner) roomOf(ctx context.Context, tag string, n int) ([]*user, string, error) {
	users, err := r.registerUsers(ctx, tag, n)
	if err != nil {
		return nil, "", err
	}
	roomID, err := r.c.createRoom(ctx, users[0])
	if err != nil {
		return nil, "", err
	}
	if err := r.joinAll(ctx, roomID, users[1:]); err != nil {
		return nil, "", err
	}
	return users, roomID, nil
}

func sendResult(users, messages int, elapsed time.Duration, lat []time.Duration) *SendResult {
	return &SendResult{
		Users:             users,
		Messages:          messages,
		Elapsed:           elapsed,
		MessagesPerSecond: float64(messages) / elapsed.Seconds(),
		Latency:           summarize(lat),
	}
}

// sendSequential: users take turns sending into one room, one send at a
// time, so throughput is the inverse of the send latency.
func (r *runner) sendSequential(ctx context.Context) (*SendResult, error) {
	n, m := r.opts.SequentialUsers, r.opts.SequentialMessages
	users, roomID, err := r.roomOf(ctx, "seq", n)
	if err != nil {
		return nil, err
	}
	lat := make([]time.Duration, m)
	start := time.Now()
	for i := range m {
		t0 := time.Now()
		_, err := r.c.send(ctx, users[i%n], roomID, fmt.Sprintf("sequential message %d", i))
		lat[i] = time.Since(t0)
		if err != nil {
			return nil, fmt.Errorf("message %d of %d: %w", i+1, m, err)
		}
	}
	return sendResult(n, m, time.Since(start), lat), nil
}

// sendConcurrent: every user sends its messages from its own goroutine, all
// into one room at once.
func (r *runner) sendConcurrent(ctx context.Context) (*SendResult, error) {
	n, per := r.opts.ConcurrentUsers, r.opts.ConcurrentMessagesPerUser
	users, roomID, err := r.roomOf(ctx, "conc", n)
	if err != nil {
		return nil, err
	}
	lat := make([]time.Duration, n*per)
	start := time.Now()
	err = parallel(ctx, n, n, func(ctx context.Context, u int) error {
		for j := range per {
			t0 := time.Now()
			_, err := r.c.send(ctx, users[u], roomID, fmt.Sprintf("concurrent message %d/%d", u, j))
			lat[u*per+j] = time.Since(t0)
			if err != nil {
				return fmt.Errorf("message %d of user %d: %w", j+1, u, err)
			}
		}
		return nil
	})
	elapsed := time.Since(start)
	if err != nil {
		return nil, err
	}
	return sendResult(n, n*per, elapsed, lat), nil
}

// initialSync: one user in many rooms with messages in each; times full
// initial /sync requests (no since, no filter).
func (r *runner) initialSync(ctx context.Context) (*InitialSyncResult, error) {
	o := r.opts
	users, err := r.registerUsers(ctx, "init", 1)
	if err != nil {
		return nil, err
	}
	u := users[0]
	setup := time.Now()
	err = parallel(ctx, o.InitialSyncRooms, o.SetupConcurrency, func(ctx context.Context, i int) error {
		roomID, err := r.c.createRoom(ctx, u)
		if err != nil {
			return err
		}
		for j := range o.InitialSyncMessagesPerRoom {
			if _, err := r.c.send(ctx, u, roomID, fmt.Sprintf("room %d message %d", i, j)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.logf("created %d rooms with %d messages each in %v", o.InitialSyncRooms, o.InitialSyncMessagesPerRoom,
		time.Since(setup).Round(time.Millisecond))

	res := &InitialSyncResult{Rooms: o.InitialSyncRooms, MessagesPerRoom: o.InitialSyncMessagesPerRoom}
	for range o.InitialSyncRuns {
		t0 := time.Now()
		data, err := r.c.raw(ctx, http.MethodGet, syncPath("", "", 0), u.Token, nil)
		d := time.Since(t0)
		if err != nil {
			return nil, err
		}
		var sr syncResponse
		if err := json.Unmarshal(data, &sr); err != nil {
			return nil, fmt.Errorf("decoding the initial /sync answer: %w", err)
		}
		res.Runs = append(res.Runs, d)
		res.RoomsReturned, res.ResponseBytes = len(sr.Rooms.Join), len(data)
	}
	res.Median = median(res.Runs)
	r.logf("initial sync: %d rooms, %d bytes", res.RoomsReturned, res.ResponseBytes)
	return res, nil
}

// joins: many users join one public room, JoinConcurrency at a time.
func (r *runner) joins(ctx context.Context) (*JoinResult, error) {
	o := r.opts
	users, err := r.registerUsers(ctx, "join", o.JoinUsers+1)
	if err != nil {
		return nil, err
	}
	creator, joiners := users[0], users[1:]
	roomID, err := r.c.createRoom(ctx, creator)
	if err != nil {
		return nil, err
	}
	lat := make([]time.Duration, len(joiners))
	start := time.Now()
	err = parallel(ctx, len(joiners), o.JoinConcurrency, func(ctx context.Context, i int) error {
		t0 := time.Now()
		err := r.c.join(ctx, joiners[i], roomID)
		lat[i] = time.Since(t0)
		return err
	})
	elapsed := time.Since(start)
	if err != nil {
		return nil, err
	}
	res := &JoinResult{
		Users:          len(joiners),
		Concurrency:    o.JoinConcurrency,
		Elapsed:        elapsed,
		JoinsPerSecond: float64(len(joiners)) / elapsed.Seconds(),
		Latency:        summarize(lat),
		JoinedMembers:  -1,
	}
	var members struct {
		Joined map[string]json.RawMessage `json:"joined"`
	}
	err = r.c.do(ctx, http.MethodGet, "/_matrix/client/v3/rooms/"+url.PathEscape(roomID)+"/joined_members",
		creator.Token, nil, &members)
	if err != nil {
		r.logf("could not check the members: %v", err)
	} else {
		res.JoinedMembers = len(members.Joined)
		if res.JoinedMembers != len(users) {
			r.logf("the room has %d joined members, want %d", res.JoinedMembers, len(users))
		}
	}
	return res, nil
}

// fanout is the state shared by the long-polling clients of sync-fanout.
type fanout struct {
	c      *client
	roomID string
	filter string
	setup  chan struct{} // bounds concurrent initial syncs

	delivered, duplicates, polls, limited, syncErrors atomic.Int64
	measuring                                         atomic.Bool // set at the first send

	mu           sync.Mutex
	errorSamples []string
}

// fanoutClient is one long-polling client. arrivals is written only by its
// own goroutine and read once that goroutine has ended.
type fanoutClient struct {
	u        *user
	arrivals map[string]time.Time // event ID → arrival of the /sync answer carrying it
}

func (f *fanout) noteError(err error) {
	f.syncErrors.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.errorSamples) < 5 {
		f.errorSamples = append(f.errorSamples, err.Error())
	}
}

// run makes an initial sync, reports on ready, then long-polls until ctx
// ends, recording when each m.room.message of the room first arrives.
func (f *fanout) run(ctx context.Context, fc *fanoutClient, ready chan<- error) {
	since, err := f.initial(ctx, fc.u)
	ready <- err
	if err != nil {
		return
	}
	for ctx.Err() == nil {
		data, err := f.c.raw(ctx, http.MethodGet, syncPath(since, f.filter, 30*time.Second), fc.u.Token, nil)
		arrived := time.Now()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			f.noteError(err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		var sr syncResponse
		if err := json.Unmarshal(data, &sr); err != nil {
			f.noteError(fmt.Errorf("decoding a /sync answer: %w", err))
			continue
		}
		if jr, ok := sr.Rooms.Join[f.roomID]; ok {
			for _, ev := range jr.Timeline.Events {
				if ev.Type != "m.room.message" {
					continue
				}
				if _, seen := fc.arrivals[ev.EventID]; seen {
					f.duplicates.Add(1)
					continue
				}
				fc.arrivals[ev.EventID] = arrived
				f.delivered.Add(1)
			}
			if jr.Timeline.Limited && f.measuring.Load() {
				f.limited.Add(1)
			}
		}
		if f.measuring.Load() {
			f.polls.Add(1)
		}
		if sr.NextBatch != "" {
			since = sr.NextBatch
		}
	}
}

func (f *fanout) initial(ctx context.Context, u *user) (string, error) {
	select {
	case f.setup <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-f.setup }()
	var sr syncResponse
	if err := f.c.do(ctx, http.MethodGet, syncPath("", f.filter, 0), u.Token, nil, &sr); err != nil {
		return "", fmt.Errorf("initial sync of %s: %w", u.ID, err)
	}
	if sr.NextBatch == "" {
		return "", fmt.Errorf("initial sync of %s: no next_batch", u.ID)
	}
	return sr.NextBatch, nil
}

// syncFanout: many clients long-poll /sync in one room while one user sends
// messages at a fixed interval; measures when each client sees each message.
func (r *runner) syncFanout(ctx context.Context) (*FanoutResult, error) {
	o := r.opts
	users, roomID, err := r.roomOf(ctx, "fan", o.SyncClients+1)
	if err != nil {
		return nil, err
	}
	sender := users[0]
	f := &fanout{
		c:      r.c,
		roomID: roomID,
		filter: fmt.Sprintf(`{"room":{"timeline":{"limit":%d},"state":{"lazy_load_members":true}}}`, o.SyncTimelineLimit),
		setup:  make(chan struct{}, o.SetupConcurrency),
	}

	pollCtx, stopPolling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	stop := func() {
		stopPolling()
		wg.Wait()
	}
	defer stop()
	clients := make([]*fanoutClient, o.SyncClients)
	ready := make(chan error, len(clients))
	for i, u := range users[1:] {
		fc := &fanoutClient{u: u, arrivals: make(map[string]time.Time, o.SyncMessages)}
		clients[i] = fc
		wg.Go(func() { f.run(pollCtx, fc, ready) })
	}
	for range clients {
		if err := <-ready; err != nil {
			return nil, err
		}
	}
	r.logf("%d clients polling; sending %d messages %v apart", len(clients), o.SyncMessages, o.SyncInterval)
	select {
	case <-time.After(o.SyncSettle):
	case <-ctx.Done():
		return nil, ctx.Err()
	}

	m := o.SyncMessages
	issued := make([]time.Time, m)
	sendLat := make([]time.Duration, m)
	eventIDs := make([]string, m)
	f.measuring.Store(true)
	start := time.Now()
	for i := range m {
		if d := time.Until(start.Add(time.Duration(i) * o.SyncInterval)); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		issued[i] = time.Now()
		id, err := r.c.send(ctx, sender, roomID, fmt.Sprintf("fan-out message %d", i))
		sendLat[i] = time.Since(issued[i])
		if err != nil {
			return nil, fmt.Errorf("message %d of %d: %w", i+1, m, err)
		}
		eventIDs[i] = id
	}
	lastReturned := issued[m-1].Add(sendLat[m-1])
	expected := int64(len(clients) * m)
	for f.delivered.Load() < expected && time.Since(lastReturned) < o.SyncGrace && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	stop()

	res := &FanoutResult{
		Clients:          len(clients),
		Messages:         m,
		Interval:         o.SyncInterval,
		Send:             summarize(sendLat),
		Expected:         int(expected),
		Duplicates:       int(f.duplicates.Load()),
		Polls:            int(f.polls.Load()),
		LimitedTimelines: int(f.limited.Load()),
		SyncErrors:       int(f.syncErrors.Load()),
		SyncErrorSamples: f.errorSamples,
	}
	backlogDeadline := lastReturned.Add(TargetFanoutBacklog)
	var lastArrival time.Time
	lat := make([]time.Duration, 0, expected)
	for _, fc := range clients {
		for i, id := range eventIDs {
			at, ok := fc.arrivals[id]
			if !ok {
				res.Missing++
				continue
			}
			res.Delivered++
			lat = append(lat, at.Sub(issued[i]))
			if at.After(backlogDeadline) {
				res.LateAfterLastSend++
			}
			if at.After(lastArrival) {
				lastArrival = at
			}
		}
	}
	res.Delivery = summarize(lat)
	if !lastArrival.IsZero() {
		res.DrainAfterLastSend = lastArrival.Sub(lastReturned)
	}
	res.NoBacklog = res.Missing == 0 && res.LateAfterLastSend == 0
	if res.SyncErrors > 0 {
		r.logf("%d /sync requests failed, e.g. %s", res.SyncErrors, res.SyncErrorSamples[0])
	}
	return res, nil
}
