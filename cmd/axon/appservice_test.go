package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/axon-matrix/axon/internal/storage"
)

func TestAppserviceCommand(t *testing.T) {
	dir := t.TempDir()
	reg := filepath.Join(dir, "bridge.yaml")
	if err := os.WriteFile(reg, []byte(`id: bridge
url: http://127.0.0.1:9
as_token: as
hs_token: hs
sender_localpart: _b_bot
receive_ephemeral: true
namespaces:
  users: [{exclusive: true, regex: "@_b_.*"}]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	useCLIDataDir(t, dir)
	t.Setenv("AXON_APP_SERVICE_CONFIG_FILES", reg)
	ctx := context.Background()
	db := openCLIDB(t, dir)
	_, err := db.AddAppServiceTxn(ctx, "bridge", []byte(`{"events":[]}`), storage.AppServiceCursors{}, 1, nil, 0)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	if code := appserviceCheck(nil, &out); code != 0 || !bytes.Contains(out.Bytes(), []byte("bridge is valid (sender @_b_bot:cli.test)")) {
		t.Fatalf("check: exit %d, %q", code, out.String())
	}
	out.Reset()
	if code := appserviceList(nil, &out); code != 0 {
		t.Fatalf("list: exit %d", code)
	}
	row := regexp.MustCompile(`(?m)^bridge +http://127\.0\.0\.1:9 +@_b_bot:cli\.test +1 users, 0 aliases, 0 rooms +ephemeral +1 +1970-01-01 00:00 UTC +1$`)
	if !row.Match(out.Bytes()) {
		t.Fatalf("list output:\n%s", out.String())
	}
	for _, c := range []struct {
		want int
		args []string
	}{
		{2, nil},
		{2, []string{"list", "extra"}},
		{2, []string{"frobnicate"}},
		{0, []string{"help"}},
	} {
		if got := appserviceCommand(c.args); got != c.want {
			t.Fatalf("%q: exit %d, want %d", c.args, got, c.want)
		}
	}

	// A broken file fails both, as it would fail the server's start.
	if err := os.WriteFile(reg, []byte("id: bridge\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code := appserviceCheck(nil, &out); code != 1 {
		t.Fatalf("check of a broken file: exit %d", code)
	}
	if code := appserviceList(nil, &out); code != 1 {
		t.Fatalf("list with a broken file: exit %d", code)
	}
}

// TestAppserviceCheckNamedFiles: `axon appservice check FILE...` checks the
// files named, before they are in the config, and prints every problem of
// each, with regular expressions quoted as written.
func TestAppserviceCheckNamedFiles(t *testing.T) {
	bin := buildAxon(t)
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.yaml"), filepath.Join(dir, "bad.yaml")
	write := func(path, body string) {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(good, "id: good\nurl: null\nas_token: a1\nhs_token: h1\nsender_localpart: good_bot\nnamespaces:\n  users: [{exclusive: true, regex: \"@good_.*\"}]\n")
	write(bad, "id: bad\nas_token: same\nhs_token: same\nsender_localpart: Bad Bot\nnamespaces:\n  users: [{exclusive: true, regex: \"@bad_(.*\"}]\n")
	env := []string{"AXON_SERVER_NAME=check.test"}
	out, code := runIn(t, bin, dir, "", env, "appservice", "check", good)
	if code != 0 || !strings.Contains(out, "good is valid (sender @good_bot:check.test)") {
		t.Fatalf("check good.yaml: exit %d\n%s", code, out)
	}
	out, code = runIn(t, bin, dir, "", env, "appservice", "check", good, bad)
	if code != 1 {
		t.Errorf("check with a bad file: exit %d", code)
	}
	for _, want := range []string{bad + ": url: is required", bad + ": hs_token: must differ", bad + ": sender_localpart:",
		bad + `: namespaces.users[0].regex: invalid regular expression "@bad_(.*": missing closing )`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "(?:") || strings.Contains(out, good+":") {
		t.Errorf("output shows the wrapped pattern or blames good.yaml:\n%s", out)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("check created files: %v", ents)
	}
}
