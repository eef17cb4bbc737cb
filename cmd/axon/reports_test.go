package main

import (
	"context"
	"testing"

	"github.com/axon-matrix/axon/internal/storage"
)

func TestReportsCommand(t *testing.T) {
	dir := t.TempDir()
	useCLIDataDir(t, dir)
	ctx := context.Background()
	db := openCLIDB(t, dir)
	id, err := db.AddReport(ctx, storage.Report{Kind: "user", Reporter: "@a:cli.test", UserID: "@b:cli.test", Reason: "rude", CreatedTS: 1})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		want int
		args []string
	}{
		{0, []string{"list"}},
		{0, []string{"list", "--all"}},
		{2, []string{"list", "extra"}},
		{2, []string{"resolve"}},
		{2, []string{"resolve", "x"}},
		{0, []string{"resolve", "1"}},
		{1, []string{"resolve", "1"}}, // already resolved
		{1, []string{"resolve", "99"}},
		{2, []string{"frobnicate"}},
	} {
		if got := reportsCommand(c.args); got != c.want {
			t.Fatalf("%q: exit %d, want %d", c.args, got, c.want)
		}
	}
	db = openCLIDB(t, dir)
	defer db.Close()
	open, _ := db.ListReports(ctx, false)
	all, _ := db.ListReports(ctx, true)
	if len(open) != 0 || len(all) != 1 || all[0].ID != id || all[0].ResolvedTS == 0 {
		t.Fatalf("open %+v, all %+v", open, all)
	}
}
