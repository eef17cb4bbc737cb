package main

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/storage"
)

// useCLIDataDir points the commands the test runs in-process at the data
// directory dir, on server cli.test, and creates its database there as a
// first `axon serve` would (the commands refuse a directory without one).
func useCLIDataDir(t *testing.T, dir string) {
	t.Setenv("AXON_DATA_DIR", dir)
	t.Setenv("AXON_SERVER_NAME", "cli.test")
	openCLIDB(t, dir).Close()
}

// openCLIDB opens the database of the data directory dir, for a test to
// seed it before running a command or to check what the command did.
func openCLIDB(t *testing.T, dir string) *storage.DB {
	t.Helper()
	db, err := storage.Open(context.Background(), filepath.Join(dir, config.DatabaseFileName))
	if err != nil {
		t.Fatal(err)
	}
	return db
}
