package server_test

import (
	"context"
	"testing"

	"maunium.net/go/mautrix"

	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/testrig"
)

// TestDatabaseSynchronousSetting starts real servers with each value of
// database_synchronous and asks the open database what SQLite applies.
func TestDatabaseSynchronousSetting(t *testing.T) {
	for setting, want := range map[string]int{"": 1, "normal": 1, "full": 2} {
		r := testrig.Start(t, func(c *config.Config) {
			if setting != "" {
				c.DatabaseSynchronous = setting
			}
		})
		var got int
		if err := r.Server.DB.Reader().QueryRowContext(context.Background(), `PRAGMA synchronous`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("database_synchronous %q: PRAGMA synchronous = %d, want %d", setting, got, want)
		}
		// The server works with it.
		alice := r.CreateUser("alice")
		room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{})
		testrig.SendText(t, alice, room, "durable")
		r.Stop()
	}
}
