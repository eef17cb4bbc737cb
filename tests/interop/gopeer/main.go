//go:build goolm

// Command gopeer is the mautrix-go side of the mixed-crypto interop test: a
// Matrix client with mautrix-go's pure-Go Olm (build tag goolm) that logs in,
// joins the rooms it is invited to and answers every encrypted text message
// with an encrypted "echo: <body>". It reports on stdout, one line each:
// "READY <device>", "GOT <body>", "UTD <error>". It exits when its stdin
// closes.
//
//	go run -tags goolm ./tests/interop/gopeer <base URL> <localpart> <password>
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: gopeer <base URL> <localpart> <password>")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	// The test holds stdin open; when it ends (even killed), so does the peer.
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	if err := run(ctx, os.Args[1], os.Args[2], os.Args[3]); err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "gopeer:", err)
		os.Exit(1)
	}
}

var outMu sync.Mutex

func report(format string, args ...any) {
	outMu.Lock()
	defer outMu.Unlock()
	fmt.Printf(format+"\n", args...)
}

func run(ctx context.Context, baseURL, localpart, password string) error {
	cli, err := mautrix.NewClient(baseURL, "", "")
	if err != nil {
		return err
	}
	if _, err := cli.Login(ctx, &mautrix.ReqLogin{
		Type:             mautrix.AuthTypePassword,
		Identifier:       mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: localpart},
		Password:         password,
		StoreCredentials: true,
	}); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	state := mautrix.NewMemoryStateStore()
	cli.StateStore = state
	log := zerolog.Nop()
	mach := crypto.NewOlmMachine(cli, &log, crypto.NewMemoryStore(nil), state.(crypto.StateStore))
	if err := mach.Load(ctx); err != nil {
		return fmt.Errorf("load olm machine: %w", err)
	}
	if err := mach.ShareKeys(ctx, -1); err != nil {
		return fmt.Errorf("upload keys: %w", err)
	}
	started := time.Now().UnixMilli()
	syncer := cli.Syncer.(*mautrix.DefaultSyncer)
	syncer.OnSync(mach.ProcessSyncResponse)
	syncer.OnEvent(cli.StateStoreSyncHandler)
	syncer.OnEventType(event.StateMember, func(ctx context.Context, evt *event.Event) {
		mach.HandleMemberEvent(ctx, evt)
		if evt.GetStateKey() == cli.UserID.String() && evt.Content.AsMember().Membership == event.MembershipInvite {
			go func() {
				if _, err := cli.JoinRoomByID(ctx, evt.RoomID); err != nil {
					report("ERROR join %s: %v", evt.RoomID, err)
				}
			}()
		}
	})
	var sendMu sync.Mutex // one room key share at a time
	syncer.OnEventType(event.EventEncrypted, func(ctx context.Context, evt *event.Event) {
		if evt.Sender == cli.UserID || evt.Timestamp < started {
			return
		}
		dec, err := mach.DecryptMegolmEvent(ctx, evt)
		if err != nil {
			content := evt.Content.AsEncrypted()
			if mach.WaitForSession(ctx, evt.RoomID, content.SenderKey, content.SessionID, 10*time.Second) {
				dec, err = mach.DecryptMegolmEvent(ctx, evt)
			}
		}
		if err != nil {
			report("UTD %v", err)
			return
		}
		body := dec.Content.AsMessage().Body
		report("GOT %s", strings.ReplaceAll(body, "\n", " "))
		go func() {
			sendMu.Lock()
			defer sendMu.Unlock()
			if err := sendEncrypted(ctx, cli, mach, evt.RoomID, "echo: "+body); err != nil {
				report("ERROR send: %v", err)
			}
		}()
	})
	report("READY %s", cli.DeviceID)
	return cli.SyncWithContext(ctx)
}

func sendEncrypted(ctx context.Context, cli *mautrix.Client, mach *crypto.OlmMachine, roomID id.RoomID, text string) error {
	members, err := cli.JoinedMembers(ctx, roomID)
	if err != nil {
		return err
	}
	users := make([]id.UserID, 0, len(members.Joined))
	for u := range members.Joined {
		users = append(users, u)
	}
	if _, err := mach.FetchKeys(ctx, users, true); err != nil {
		return err
	}
	if err := mach.ShareGroupSession(ctx, roomID, users); err != nil {
		return err
	}
	enc, err := mach.EncryptMegolmEvent(ctx, roomID, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: text})
	if err != nil {
		return err
	}
	_, err = cli.SendMessageEvent(ctx, roomID, event.EventEncrypted, enc)
	return err
}
