package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/axon-matrix/axon/internal/account"
	"github.com/axon-matrix/axon/internal/config"
)

const tokenUsage = `Usage:
  axon token create [--uses N] [--expires DURATION]
  axon token list
  axon token revoke TOKEN

Registration tokens let people register when registration is "token".
--uses limits how many accounts a token creates (default: unlimited);
--expires makes it expire after DURATION, e.g. 90m, 48h or 7d (default:
never). create prints the token alone on standard output.
Every command accepts --config FILE (as for axon serve).
`

func tokenCommand(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, tokenUsage)
		return 2
	}
	switch args[0] {
	case "create":
		return tokenCreate(args[1:])
	case "list":
		return tokenList(args[1:])
	case "revoke":
		return tokenRevoke(args[1:])
	case "help", "-h", "--help":
		fmt.Print(tokenUsage)
		return 0
	}
	fmt.Fprintf(os.Stderr, "axon token: unknown command %q\n\n%s", args[0], tokenUsage)
	return 2
}

// parseLongDuration is time.ParseDuration plus a "d" (24h) unit, since
// token lifetimes are naturally counted in days.
func parseLongDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("invalid duration %q (use e.g. 90m, 48h or 7d)", s)
	}
	return d, nil
}

func tokenCreate(args []string) int {
	fs, cfgPath := newFlags("token create", tokenUsage)
	uses := fs.Int64("uses", 0, "number of registrations allowed (0: unlimited)")
	expires := fs.String("expires", "", "lifetime, e.g. 7d (default: never expires)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 0 || *uses < 0 {
		fmt.Fprint(os.Stderr, "axon token create: bad arguments\n\n"+tokenUsage)
		return 2
	}
	var validFor time.Duration
	if *expires != "" {
		if validFor, err = parseLongDuration(*expires); err != nil {
			fmt.Fprintln(os.Stderr, "axon token create:", err)
			return 2
		}
	}
	cfg, db, err := openForCLI(*cfgPath)
	if err != nil {
		return cliError("token create", err)
	}
	defer db.Close()
	acc := account.New(db, cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	t, err := acc.NewRegistrationToken(context.Background(), *uses, validFor)
	if err != nil {
		return cliError("token create", err)
	}
	fmt.Println(t.Token)
	// The token is made either way (registration may be switched to token
	// next), but whoever hands it out now would see it refused.
	if cfg.Registration != config.RegistrationToken {
		fmt.Fprintf(os.Stderr, "axon token create: warning: registration is %q, so this token does not work yet: "+
			"set registration: token (or AXON_REGISTRATION=token) and restart the server\n", cfg.Registration)
	}
	return 0
}

func tokenList(args []string) int {
	fs, cfgPath := newFlags("token list", tokenUsage)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 0 {
		fmt.Fprint(os.Stderr, "axon token list: takes no arguments\n\n"+tokenUsage)
		return 2
	}
	acc, closeDB, err := cliAccounts(*cfgPath)
	if err != nil {
		return cliError("token list", err)
	}
	defer closeDB()
	tokens, err := acc.RegistrationTokens(context.Background())
	if err != nil {
		return cliError("token list", err)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOKEN\tSTATE\tUSED\tEXPIRES\tCREATED")
	for _, t := range tokens {
		used := strconv.FormatInt(t.Completed, 10) + "/unlimited"
		if t.UsesAllowed != nil {
			used = fmt.Sprintf("%d/%d", t.Completed, *t.UsesAllowed)
		}
		exp := "never"
		if t.ExpiryTS != nil {
			exp = formatTS(*t.ExpiryTS)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Token, acc.TokenState(t), used, exp, formatTS(t.CreatedTS))
	}
	tw.Flush()
	return 0
}

func formatTS(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04 UTC") }

func tokenRevoke(args []string) int {
	fs, cfgPath := newFlags("token revoke", tokenUsage)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprint(os.Stderr, "axon token revoke: want exactly one TOKEN\n\n"+tokenUsage)
		return 2
	}
	acc, closeDB, err := cliAccounts(*cfgPath)
	if err != nil {
		return cliError("token revoke", err)
	}
	defer closeDB()
	if err := acc.RevokeRegistrationToken(context.Background(), pos[0]); err != nil {
		return cliError("token revoke", err)
	}
	fmt.Printf("Revoked %s\n", pos[0])
	return 0
}
