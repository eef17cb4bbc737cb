// Package bench is the load benchmark behind `axon bench`. It drives a real
// server process over HTTP on loopback, as plain Matrix clients would, and
// measures the figures the server is held to: message throughput and send
// latency, /sync fan-out latency with hundreds of long-polling clients,
// initial /sync time, join throughput and the server's memory.
//
// Run either starts its own server (a fresh data directory, rate limits off,
// open registration) or measures one already running at Options.URL. Missed
// targets are results, not errors: Run returns an error only when the
// benchmark itself could not be carried out (a request failed, the server
// died, ...), and still returns every figure it measured.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Scenario names, in the order Run runs them.
const (
	ScenarioSendSequential = "send-sequential"
	ScenarioSendConcurrent = "send-concurrent"
	ScenarioSyncFanout     = "sync-fanout"
	ScenarioInitialSync    = "initial-sync"
	ScenarioJoins          = "joins"
)

// AllScenarios lists every scenario in the order Run runs them.
var AllScenarios = []string{
	ScenarioSendSequential, ScenarioSendConcurrent, ScenarioSyncFanout, ScenarioInitialSync, ScenarioJoins,
}

// Targets from the performance issue (SQLite, rate limits off, 2 cores).
const (
	TargetSequentialPerSecond = 1000.0
	TargetSequentialP99       = 10 * time.Millisecond
	TargetConcurrentPerSecond = 1500.0
	TargetFanoutP99           = 100 * time.Millisecond
	TargetFanoutMax           = time.Second
	TargetFanoutBacklog       = time.Second // all delivered this long after the last send returned
	TargetInitialSync         = 100 * time.Millisecond
	TargetJoinsPerSecond      = 300.0
	TargetIdleRSS             = 30 << 20
	TargetFinalRSS            = 120 << 20
)

// Options configures Run. Zero values of the scale knobs mean the full-scale
// default given in each field's comment.
type Options struct {
	// URL of a running server. If empty, Run starts Binary with `serve`.
	URL string
	// Binary is the axon executable to start when URL is empty
	// (default: os.Executable()).
	Binary string
	// PID of the server at URL, for the memory figures. Ignored when Run
	// starts the server itself.
	PID int
	// Scenarios to run by name (see AllScenarios); empty or "all" runs all.
	Scenarios []string
	// ServerOutput receives the started server's stdout and stderr
	// (they are also kept in a log file whose tail is quoted in errors).
	ServerOutput io.Writer
	// StartTimeout bounds the wait for the started server to answer
	// /_matrix/client/versions (default 60 s).
	StartTimeout time.Duration

	SequentialUsers    int // send-sequential: users taking turns (20)
	SequentialMessages int // send-sequential: messages in total (1000)

	ConcurrentUsers           int // send-concurrent: users, one goroutine each (50)
	ConcurrentMessagesPerUser int // send-concurrent: messages per user (20)

	SyncClients       int           // sync-fanout: long-polling clients (200)
	SyncMessages      int           // sync-fanout: messages sent (50)
	SyncInterval      time.Duration // sync-fanout: time between sends (100 ms)
	SyncTimelineLimit int           // sync-fanout: timeline limit of the clients' filter (50)
	SyncSettle        time.Duration // sync-fanout: pause once all clients poll, before the first send (1 s)
	SyncGrace         time.Duration // sync-fanout: wait for late deliveries after the last send (10 s)

	InitialSyncRooms           int // initial-sync: rooms the user is in (100)
	InitialSyncMessagesPerRoom int // initial-sync: messages in each room (20)
	InitialSyncRuns            int // initial-sync: timed runs, the median is reported (7)

	JoinUsers       int // joins: users joining the room (300)
	JoinConcurrency int // joins: joins in flight at once (10)

	// RegisterConcurrency is the number of registrations in flight during
	// set-up (2). Password hashing is CPU- and memory-bound: more only
	// inflates the server's memory without speeding set-up up.
	RegisterConcurrency int
	// SetupConcurrency is the number of other set-up requests (joins,
	// room creation, filler messages) in flight at once (8).
	SetupConcurrency int
}

func (o Options) withDefaults() Options {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur(&o.StartTimeout, 60*time.Second)
	def(&o.SequentialUsers, 20)
	def(&o.SequentialMessages, 1000)
	def(&o.ConcurrentUsers, 50)
	def(&o.ConcurrentMessagesPerUser, 20)
	def(&o.SyncClients, 200)
	def(&o.SyncMessages, 50)
	defDur(&o.SyncInterval, 100*time.Millisecond)
	def(&o.SyncTimelineLimit, 50)
	defDur(&o.SyncSettle, time.Second)
	defDur(&o.SyncGrace, 10*time.Second)
	def(&o.InitialSyncRooms, 100)
	def(&o.InitialSyncMessagesPerRoom, 20)
	def(&o.InitialSyncRuns, 7)
	def(&o.JoinUsers, 300)
	def(&o.JoinConcurrency, 10)
	def(&o.RegisterConcurrency, 2)
	def(&o.SetupConcurrency, 8)
	return o
}

func selectScenarios(names []string) ([]string, error) {
	if len(names) == 0 {
		return AllScenarios, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		for _, n := range strings.Split(n, ",") {
			n = strings.TrimSpace(n)
			switch {
			case n == "":
			case n == "all":
				return AllScenarios, nil
			case slices.Contains(AllScenarios, n):
				want[n] = true
			default:
				return nil, fmt.Errorf("unknown scenario %q (have: %s, all)", n, strings.Join(AllScenarios, ", "))
			}
		}
	}
	var out []string
	for _, n := range AllScenarios {
		if want[n] {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return AllScenarios, nil
	}
	return out, nil
}

// Results holds every figure measured. A scenario that was not run, or that
// failed, has a nil result.
type Results struct {
	URL           string `json:"url"`
	PID           int    `json:"pid,omitempty"`
	StartedServer bool   `json:"started_server"`

	SendSequential *SendResult        `json:"send_sequential,omitempty"`
	SendConcurrent *SendResult        `json:"send_concurrent,omitempty"`
	SyncFanout     *FanoutResult      `json:"sync_fanout,omitempty"`
	InitialSync    *InitialSyncResult `json:"initial_sync,omitempty"`
	Joins          *JoinResult        `json:"joins,omitempty"`
	Memory         *MemoryResult      `json:"memory,omitempty"`

	// Checks lists each figure with its target and verdict, as printed.
	Checks []Check `json:"checks"`
	// Errors lists operational failures (also returned by Run, joined).
	Errors []string `json:"errors,omitempty"`
}

// Passed reports whether the benchmark ran without errors and every figure
// with a target met it.
func (r *Results) Passed() bool {
	if len(r.Errors) > 0 {
		return false
	}
	for _, c := range r.Checks {
		if c.HasTarget && !c.Pass {
			return false
		}
	}
	return true
}

// SendResult is the outcome of send-sequential or send-concurrent.
type SendResult struct {
	Users             int           `json:"users"`
	Messages          int           `json:"messages"`
	Elapsed           time.Duration `json:"elapsed"`
	MessagesPerSecond float64       `json:"messages_per_second"`
	Latency           Latency       `json:"latency"` // per send, request to full answer
}

// FanoutResult is the outcome of sync-fanout.
type FanoutResult struct {
	Clients  int           `json:"clients"`
	Messages int           `json:"messages"`
	Interval time.Duration `json:"interval"`
	// Delivery is, for each message and client, the time from issuing the
	// send to the arrival of the client's /sync answer carrying the event.
	Delivery Latency `json:"delivery"`
	Send     Latency `json:"send"` // latency of the sends themselves
	Expected int     `json:"expected"`
	// Delivered counts (client, event) pairs seen; Missing those never
	// seen within SyncGrace; Duplicates events a client was given twice.
	Delivered  int `json:"delivered"`
	Missing    int `json:"missing"`
	Duplicates int `json:"duplicates"`
	// LateAfterLastSend counts deliveries that arrived more than
	// TargetFanoutBacklog after the last send returned.
	LateAfterLastSend int `json:"late_after_last_send"`
	// DrainAfterLastSend is the time from the last send's answer to the
	// last delivery (negative if everything arrived before it).
	DrainAfterLastSend time.Duration `json:"drain_after_last_send"`
	NoBacklog          bool          `json:"no_backlog"`
	// Polls is the number of /sync answers the clients received while the
	// messages were sent; LimitedTimelines those with limited: true.
	Polls            int      `json:"polls"`
	LimitedTimelines int      `json:"limited_timelines"`
	SyncErrors       int      `json:"sync_errors"`
	SyncErrorSamples []string `json:"sync_error_samples,omitempty"`
}

// InitialSyncResult is the outcome of initial-sync.
type InitialSyncResult struct {
	Rooms           int             `json:"rooms"`
	MessagesPerRoom int             `json:"messages_per_room"`
	Runs            []time.Duration `json:"runs"`
	Median          time.Duration   `json:"median"`
	RoomsReturned   int             `json:"rooms_returned"` // joined rooms in the last answer
	ResponseBytes   int             `json:"response_bytes"`
}

// JoinResult is the outcome of joins.
type JoinResult struct {
	Users          int           `json:"users"`
	Concurrency    int           `json:"concurrency"`
	Elapsed        time.Duration `json:"elapsed"`
	JoinsPerSecond float64       `json:"joins_per_second"`
	Latency        Latency       `json:"latency"`
	JoinedMembers  int           `json:"joined_members"` // from /joined_members afterwards, -1 if unknown
}

// MemoryResult holds the server's memory, in bytes.
type MemoryResult struct {
	PID      int    `json:"pid"`
	IdleRSS  uint64 `json:"idle_rss"`  // VmRSS before any scenario
	FinalRSS uint64 `json:"final_rss"` // VmRSS after all scenarios
	PeakRSS  uint64 `json:"peak_rss"`  // VmHWM after all scenarios
}

// Check is one printed figure: its value, its target (if it has one) and
// whether it met it.
type Check struct {
	Scenario  string  `json:"scenario"`
	Figure    string  `json:"figure"`
	Value     float64 `json:"value"`
	Unit      string  `json:"unit"` // "ms", "/s", "MiB" or "" for counts
	Target    string  `json:"target,omitempty"`
	HasTarget bool    `json:"has_target"`
	Pass      bool    `json:"pass"`
}

// Run runs the selected scenarios, prints progress and a table of results
// to w, and returns the results. The error reports operational failures
// only; missed targets show in Results.Checks and Results.Passed.
func Run(ctx context.Context, opts Options, w io.Writer) (*Results, error) {
	opts = opts.withDefaults()
	scenarios, err := selectScenarios(opts.Scenarios)
	if err != nil {
		return nil, err
	}
	if w == nil {
		w = io.Discard
	}
	res := &Results{URL: opts.URL, PID: opts.PID}
	var srv *server
	if opts.URL == "" {
		bin := opts.Binary
		if bin == "" {
			if bin, err = os.Executable(); err != nil {
				return nil, fmt.Errorf("finding the axon binary: %w", err)
			}
		}
		fmt.Fprintf(w, "starting %s serve\n", bin)
		if srv, err = startServer(ctx, bin, opts.ServerOutput, opts.StartTimeout); err != nil {
			return nil, err
		}
		res.URL, res.PID, res.StartedServer = srv.url, srv.pid(), true
	}
	fmt.Fprintf(w, "benchmarking %s", res.URL)
	if res.PID > 0 {
		fmt.Fprintf(w, " (server pid %d)", res.PID)
	}
	fmt.Fprintln(w)

	var errs []error
	fail := func(err error) {
		errs = append(errs, err)
		res.Errors = append(res.Errors, err.Error())
		fmt.Fprintf(w, "  ERROR: %v\n", err)
	}
	if res.PID > 0 {
		rss, _, err := readMemory(res.PID)
		if err != nil {
			fail(fmt.Errorf("reading the server's memory: %w", err))
		} else {
			res.Memory = &MemoryResult{PID: res.PID, IdleRSS: rss}
			fmt.Fprintf(w, "  idle RSS %.1f MiB\n", mib(rss))
		}
	}

	r := &runner{
		opts:   opts,
		c:      newClient(res.URL),
		w:      w,
		prefix: "bench" + strconv.FormatInt(time.Now().UnixNano()%(36*36*36*36*36*36), 36),
	}
	defer r.c.close()
	for _, name := range scenarios {
		if ctx.Err() != nil {
			fail(fmt.Errorf("%s: not run: %w", name, ctx.Err()))
			continue
		}
		if srv != nil {
			if err := srv.deadErr(); err != nil {
				fail(fmt.Errorf("%s: not run: %w", name, err))
				continue
			}
		}
		fmt.Fprintf(w, "%s\n", name)
		start := time.Now()
		var err error
		switch name {
		case ScenarioSendSequential:
			res.SendSequential, err = r.sendSequential(ctx)
		case ScenarioSendConcurrent:
			res.SendConcurrent, err = r.sendConcurrent(ctx)
		case ScenarioSyncFanout:
			res.SyncFanout, err = r.syncFanout(ctx)
		case ScenarioInitialSync:
			res.InitialSync, err = r.initialSync(ctx)
		case ScenarioJoins:
			res.Joins, err = r.joins(ctx)
		}
		if err != nil {
			if srv != nil {
				if dead := srv.deadErr(); dead != nil {
					err = fmt.Errorf("%w; %w", err, dead)
				}
			}
			fail(fmt.Errorf("%s: %w", name, err))
			continue
		}
		fmt.Fprintf(w, "  done in %v\n", time.Since(start).Round(time.Millisecond))
	}

	if res.Memory != nil {
		rss, peak, err := readMemory(res.PID)
		if err != nil {
			fail(fmt.Errorf("reading the server's memory: %w", err))
			res.Memory = nil
		} else {
			res.Memory.FinalRSS, res.Memory.PeakRSS = rss, peak
		}
	}
	if srv != nil {
		if err := srv.stop(); err != nil {
			fail(err)
		}
	}
	res.Checks = checks(res)
	fmt.Fprintln(w)
	printTable(w, res)
	return res, errors.Join(errs...)
}

// runner carries what the scenarios share.
type runner struct {
	opts   Options
	c      *client
	w      io.Writer
	prefix string // makes user names unique to this run
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.w, "  "+format+"\n", args...)
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
