package main

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/axon-matrix/axon/internal/bench"
)

// TestBenchHelp: --help describes every scenario and exits 0.
func TestBenchHelp(t *testing.T) {
	bin := buildAxon(t)
	for _, args := range [][]string{{"bench", "--help"}, {"bench", "-h"}, {"bench", "help"}} {
		out, code := runIn(t, bin, t.TempDir(), "", nil, args...)
		if code != 0 {
			t.Errorf("%q: exit %d", args, code)
		}
		for _, sc := range bench.AllScenarios {
			if !strings.Contains(out, "\n  "+sc+" ") {
				t.Errorf("%q does not describe %s:\n%s", args, sc, out)
			}
		}
	}
	if _, code := runIn(t, bin, t.TempDir(), "", nil, "bench", "--frobnicate"); code != 2 {
		t.Errorf("unknown flag: exit %d, want 2", code)
	}
}

// TestBenchExitCode: a missed target is a failure for the script or CI job
// that ran the benchmark, distinct from a benchmark that could not run.
func TestBenchExitCode(t *testing.T) {
	met := &bench.Results{Checks: []bench.Check{{Scenario: "joins", Figure: "joins/s", HasTarget: true, Pass: true}, {Figure: "info"}}}
	missed := &bench.Results{Checks: []bench.Check{{Scenario: "joins", Figure: "joins/s", HasTarget: true, Pass: false}}}
	if got := benchExit(met, nil, io.Discard); got != 0 {
		t.Errorf("all met: exit %d", got)
	}
	var msg strings.Builder
	if got := benchExit(missed, nil, &msg); got != 3 || !strings.Contains(msg.String(), "joins joins/s") {
		t.Errorf("missed: exit %d, %q", got, msg.String())
	}
	if got := benchExit(nil, errors.New("server died"), io.Discard); got != 1 {
		t.Errorf("failed: exit %d", got)
	}
}
