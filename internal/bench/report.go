package bench

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// checks turns the results into the printed rows, each figure with its
// target where it has one.
func checks(r *Results) []Check {
	var out []Check
	info := func(sc, fig string, v float64, unit string) {
		out = append(out, Check{Scenario: sc, Figure: fig, Value: v, Unit: unit})
	}
	atLeast := func(sc, fig string, v float64, unit string, target float64) {
		out = append(out, Check{Scenario: sc, Figure: fig, Value: v, Unit: unit, HasTarget: true,
			Target: ">= " + format(target, unit), Pass: v >= target})
	}
	atMost := func(sc, fig string, v float64, unit string, target float64) {
		out = append(out, Check{Scenario: sc, Figure: fig, Value: v, Unit: unit, HasTarget: true,
			Target: "<= " + format(target, unit), Pass: v <= target})
	}
	exactly := func(sc, fig string, v, target float64) {
		out = append(out, Check{Scenario: sc, Figure: fig, Value: v, HasTarget: true,
			Target: "= " + format(target, ""), Pass: v == target})
	}

	if s := r.SendSequential; s != nil {
		const sc = ScenarioSendSequential
		atLeast(sc, "messages/s", s.MessagesPerSecond, "/s", TargetSequentialPerSecond)
		info(sc, "send p50", ms(s.Latency.P50), "ms")
		atMost(sc, "send p99", ms(s.Latency.P99), "ms", ms(TargetSequentialP99))
		info(sc, "send max", ms(s.Latency.Max), "ms")
	}
	if s := r.SendConcurrent; s != nil {
		const sc = ScenarioSendConcurrent
		atLeast(sc, "messages/s", s.MessagesPerSecond, "/s", TargetConcurrentPerSecond)
		info(sc, "send p50", ms(s.Latency.P50), "ms")
		info(sc, "send p99", ms(s.Latency.P99), "ms")
	}
	if f := r.SyncFanout; f != nil {
		const sc = ScenarioSyncFanout
		info(sc, "delivery p50", ms(f.Delivery.P50), "ms")
		atMost(sc, "delivery p99", ms(f.Delivery.P99), "ms", ms(TargetFanoutP99))
		atMost(sc, "delivery max", ms(f.Delivery.Max), "ms", ms(TargetFanoutMax))
		// The backlog check: every client has every message within 1 s of
		// the last send's answer.
		c := Check{Scenario: sc, Figure: "last delivery after last send", Value: ms(f.DrainAfterLastSend),
			Unit: "ms", HasTarget: true, Target: "<= " + format(ms(TargetFanoutBacklog), "ms") + ", none missing",
			Pass: f.NoBacklog}
		out = append(out, c)
		exactly(sc, "missing deliveries", float64(f.Missing), 0)
		exactly(sc, "duplicate deliveries", float64(f.Duplicates), 0)
		exactly(sc, "failed /sync requests", float64(f.SyncErrors), 0)
		info(sc, "send p99", ms(f.Send.P99), "ms")
		info(sc, "/sync answers per client", float64(f.Polls)/float64(f.Clients), "")
	}
	if s := r.InitialSync; s != nil {
		const sc = ScenarioInitialSync
		atMost(sc, "median", ms(s.Median), "ms", ms(TargetInitialSync))
		fastest, slowest := s.Runs[0], s.Runs[0]
		for _, d := range s.Runs {
			fastest, slowest = min(fastest, d), max(slowest, d)
		}
		info(sc, fmt.Sprintf("fastest of %d", len(s.Runs)), ms(fastest), "ms")
		info(sc, fmt.Sprintf("slowest of %d", len(s.Runs)), ms(slowest), "ms")
		exactly(sc, "rooms in answer", float64(s.RoomsReturned), float64(s.Rooms))
		info(sc, "answer size", float64(s.ResponseBytes)/1024, "KiB")
	}
	if j := r.Joins; j != nil {
		const sc = ScenarioJoins
		atLeast(sc, "joins/s", j.JoinsPerSecond, "/s", TargetJoinsPerSecond)
		info(sc, "join p50", ms(j.Latency.P50), "ms")
		info(sc, "join p99", ms(j.Latency.P99), "ms")
		if j.JoinedMembers >= 0 {
			exactly(sc, "joined members", float64(j.JoinedMembers), float64(j.Users+1))
		}
	}
	if m := r.Memory; m != nil {
		const sc = "memory"
		atMost(sc, "RSS idle", mib(m.IdleRSS), "MiB", mib(TargetIdleRSS))
		if m.FinalRSS > 0 {
			atMost(sc, "RSS after all", mib(m.FinalRSS), "MiB", mib(TargetFinalRSS))
			info(sc, "peak RSS", mib(m.PeakRSS), "MiB")
		}
	}
	return out
}

func format(v float64, unit string) string {
	switch unit {
	case "ms":
		return fmt.Sprintf("%.2f ms", v)
	case "/s":
		return fmt.Sprintf("%.0f /s", v)
	case "MiB", "KiB":
		return fmt.Sprintf("%.1f %s", v, unit)
	case "":
		if v == float64(int64(v)) {
			return fmt.Sprintf("%d", int64(v))
		}
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%g %s", v, unit)
}

func printTable(w io.Writer, r *Results) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tFIGURE\tVALUE\tTARGET\tRESULT")
	for _, c := range r.Checks {
		verdict, target := "", ""
		if c.HasTarget {
			target, verdict = c.Target, "FAIL"
			if c.Pass {
				verdict = "PASS"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Scenario, c.Figure, format(c.Value, c.Unit), target, verdict)
	}
	tw.Flush()
	if r.Memory == nil {
		fmt.Fprintln(w, "memory: not measured (no server pid)")
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "ERROR: %s\n", e)
	}
	switch {
	case len(r.Errors) > 0:
		fmt.Fprintln(w, "benchmark incomplete: see errors above")
	case r.Passed():
		fmt.Fprintln(w, "all targets met")
	default:
		fmt.Fprintln(w, "some targets missed")
	}
}
