package clientapi_test

import (
	"context"
	"fmt"
	"testing"

	"maunium.net/go/mautrix"

	"github.com/axon-matrix/axon/internal/testrig"
)

// BenchmarkAppServiceTransactions sends messages into a room with a
// service's user and waits until the service has them all: the cost of
// a bridge on the send path, and how many messages a transaction carries.
// Compare with -bench 'AppServiceTransactions/none'.
func BenchmarkAppServiceTransactions(b *testing.B) {
	for _, withAS := range []bool{false, true} {
		name := "none"
		if withAS {
			name = "bridge"
		}
		b.Run(name, func(b *testing.B) {
			f := newFakeAS(b)
			var regs []string
			if withAS {
				regs = []string{bridgeRegistration(f.srv.URL)}
			}
			r, _ := startWithRegistrations(b, regs...)
			ctx := context.Background()
			alice := r.CreateUser("alice")
			room := testrig.CreateRoom(b, alice, &mautrix.ReqCreateRoom{Preset: "public_chat"})
			if withAS {
				asCall(b, r, "POST", "/_matrix/client/v3/register", "", map[string]any{"type": "m.login.application_service", "username": "_bridge_ann", "inhibit_login": true})
				asCall(b, r, "POST", "/_matrix/client/v3/join/"+esc(room.String()), "@_bridge_ann:axon.test", map[string]any{})
			}
			b.ResetTimer()
			for i := range b.N {
				if _, err := alice.SendText(ctx, room, fmt.Sprint("m", i)); err != nil {
					b.Fatal(err)
				}
			}
			if withAS {
				f.waitFor("all messages", func() bool { return len(f.deliveredBodies()) >= b.N })
				f.mu.Lock()
				b.ReportMetric(float64(b.N)/float64(len(f.delivered)), "msgs/txn")
				f.mu.Unlock()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
