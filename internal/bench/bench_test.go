package bench

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {0, time.Millisecond}} {
		if got := percentile(s, tc.p); got != tc.want {
			t.Errorf("percentile(1..100 ms, %v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	// With few samples p99 is the largest one, never an interpolation.
	l := summarize([]time.Duration{3, 1, 2})
	if l.P50 != 2 || l.P99 != 3 || l.Max != 3 || l.Min != 1 || l.N != 3 || l.Mean != 2 {
		t.Errorf("summarize(3,1,2) = %+v", l)
	}
	if got := median([]time.Duration{4, 1, 3, 2}); got != 2 {
		t.Errorf("median(4,1,3,2) = %v, want 2 (lower middle)", got)
	}
	if got := summarize(nil); got != (Latency{}) {
		t.Errorf("summarize(nil) = %+v", got)
	}
}

func TestSelectScenarios(t *testing.T) {
	got, err := selectScenarios([]string{"joins", "send-sequential"})
	if err != nil || strings.Join(got, ",") != "send-sequential,joins" {
		t.Errorf("selectScenarios = %v, %v; want run order send-sequential,joins", got, err)
	}
	if got, _ := selectScenarios([]string{"all"}); len(got) != len(AllScenarios) {
		t.Errorf("all = %v", got)
	}
	if got, _ := selectScenarios([]string{"initial-sync,joins"}); len(got) != 2 {
		t.Errorf("comma list = %v", got)
	}
	if _, err := selectScenarios([]string{"nope"}); err == nil {
		t.Error("unknown scenario accepted")
	}
}

func TestChecksVerdicts(t *testing.T) {
	r := &Results{
		SendSequential: &SendResult{MessagesPerSecond: 999, Latency: Latency{P99: 5 * time.Millisecond}},
		Memory:         &MemoryResult{IdleRSS: 10 << 20, FinalRSS: 200 << 20},
	}
	r.Checks = checks(r)
	verdict := map[string]bool{}
	for _, c := range r.Checks {
		if c.HasTarget {
			verdict[c.Scenario+"/"+c.Figure] = c.Pass
		}
	}
	want := map[string]bool{
		"send-sequential/messages/s": false,
		"send-sequential/send p99":   true,
		"memory/RSS idle":            true,
		"memory/RSS after all":       false,
	}
	for k, v := range want {
		if got, ok := verdict[k]; !ok || got != v {
			t.Errorf("%s: pass=%v (present %v), want %v", k, got, ok, v)
		}
	}
	if r.Passed() {
		t.Error("Passed() with missed targets")
	}
	var buf bytes.Buffer
	printTable(&buf, r)
	if !strings.Contains(buf.String(), "FAIL") || !strings.Contains(buf.String(), "some targets missed") {
		t.Errorf("table:\n%s", buf.String())
	}
}

// buildAxon builds cmd/axon into a temporary directory. AXON_BENCH_BINARY
// names a ready binary to use instead. (The full-scale run is `axon bench`.)
func buildAxon(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("AXON_BENCH_BINARY"); bin != "" {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "axon")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/axon-matrix/axon/cmd/axon")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cmd/axon does not build: %v\n%s", err, out)
	}
	return bin
}

// TestRunSmall runs every scenario at a small scale against a server that
// Run starts itself, and checks that the figures are complete and sane
// (not that the targets are met: a loaded CI machine may miss them).
func TestRunSmall(t *testing.T) {
	bin := buildAxon(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out, serverOut bytes.Buffer
	opts := Options{
		Binary:                     bin,
		ServerOutput:               &serverOut,
		SequentialUsers:            3,
		SequentialMessages:         30,
		ConcurrentUsers:            4,
		ConcurrentMessagesPerUser:  5,
		SyncClients:                5,
		SyncMessages:               5,
		SyncInterval:               20 * time.Millisecond,
		SyncSettle:                 200 * time.Millisecond,
		SyncGrace:                  5 * time.Second,
		InitialSyncRooms:           3,
		InitialSyncMessagesPerRoom: 3,
		InitialSyncRuns:            3,
		JoinUsers:                  10,
		JoinConcurrency:            3,
	}
	res, err := Run(ctx, opts, &out)
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatalf("Run: %v\nserver output:\n%s", err, serverOut.String())
	}
	if !res.StartedServer || res.PID == 0 || !strings.HasPrefix(res.URL, "http://127.0.0.1:") {
		t.Errorf("server: started %v pid %d url %q", res.StartedServer, res.PID, res.URL)
	}

	checkSend := func(name string, s *SendResult, want int) {
		t.Helper()
		if s == nil {
			t.Errorf("%s: no result", name)
			return
		}
		if s.Messages != want || s.Latency.N != want || s.MessagesPerSecond <= 0 || s.Latency.P50 <= 0 ||
			s.Latency.P99 < s.Latency.P50 || s.Latency.Max < s.Latency.P99 {
			t.Errorf("%s: implausible %+v", name, s)
		}
	}
	checkSend("send-sequential", res.SendSequential, 30)
	checkSend("send-concurrent", res.SendConcurrent, 20)

	if f := res.SyncFanout; f == nil {
		t.Error("sync-fanout: no result")
	} else {
		if f.Expected != 25 || f.Delivered != 25 || f.Missing != 0 || f.Delivery.N != 25 {
			t.Errorf("sync-fanout: expected %d delivered %d missing %d samples %d, want 25/25/0/25",
				f.Expected, f.Delivered, f.Missing, f.Delivery.N)
		}
		if f.Delivery.P50 <= 0 || f.Delivery.Max < f.Delivery.P99 {
			t.Errorf("sync-fanout: implausible delivery latency %+v", f.Delivery)
		}
		if f.Duplicates != 0 || f.SyncErrors != 0 {
			t.Errorf("sync-fanout: %d duplicates, %d sync errors %v", f.Duplicates, f.SyncErrors, f.SyncErrorSamples)
		}
	}
	if s := res.InitialSync; s == nil {
		t.Error("initial-sync: no result")
	} else if len(s.Runs) != 3 || s.Median <= 0 || s.RoomsReturned != 3 {
		t.Errorf("initial-sync: %+v, want 3 runs and 3 rooms", s)
	}
	if j := res.Joins; j == nil {
		t.Error("joins: no result")
	} else if j.Users != 10 || j.JoinsPerSecond <= 0 || j.Latency.N != 10 || j.JoinedMembers != 11 {
		t.Errorf("joins: %+v, want 10 joins and 11 members", j)
	}
	if m := res.Memory; m == nil || m.IdleRSS == 0 || m.FinalRSS == 0 || m.PeakRSS < m.FinalRSS {
		t.Errorf("memory: %+v", m)
	}
	if !strings.Contains(out.String(), "RESULT") || len(res.Checks) == 0 {
		t.Error("no results table printed")
	}
	if len(res.Errors) != 0 {
		t.Errorf("errors: %v", res.Errors)
	}
}

// TestRunReportsStartFailure: a binary that is not a server is an
// operational error, not a hang.
func TestRunReportsStartFailure(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := Run(ctx, Options{Binary: "/bin/false", StartTimeout: 10 * time.Second}, nil)
	if err == nil || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("Run with /bin/false: err = %v, want a server-exited error", err)
	}
}
