package appservice

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const validReg = `id: irc
url: "http://127.0.0.1:9999/"
as_token: as1
hs_token: hs1
sender_localpart: _irc_bot
de.sorunome.msc2409.push_ephemeral: true
io.element.msc4190: true
org.matrix.msc3202: true
protocols: [irc]
namespaces:
  users:
    - exclusive: true
      regex: "@_irc_.*"
    - exclusive: false
      regex: "@ircfan"
  aliases:
    - exclusive: true
      regex: "#_irc_.*:example\\.org"
  rooms: []
`

func TestParseRegistration(t *testing.T) {
	r, err := ParseRegistration("irc.yaml", []byte(validReg), "example.org")
	if err != nil {
		t.Fatal(err)
	}
	if r.URL != "http://127.0.0.1:9999" || r.Sender != "@_irc_bot:example.org" || !r.RateLimited || !r.ReceiveEphemeral || !r.MSC3202 || !r.HasProtocol("irc") {
		t.Fatalf("parsed: %+v", r)
	}
	for _, c := range []struct {
		user              string
		in, exclusiveUser bool
	}{
		{"@_irc_bob:example.org", true, true},
		{"@_irc_bot:example.org", true, true},
		{"@ircfan:example.org", true, false},
		{"@_irc_bob:elsewhere.org", false, false}, // only local users
		{"@bob_irc_:example.org", false, false},   // anchored at the start
	} {
		if got := r.InUserNamespace(c.user); got != c.in {
			t.Errorf("InUserNamespace(%s) = %v", c.user, got)
		}
		if got := r.ExclusiveUser(c.user); got != c.exclusiveUser {
			t.Errorf("ExclusiveUser(%s) = %v", c.user, got)
		}
	}
	if !r.ExclusiveAlias("#_irc_chan:example.org") || r.ExclusiveAlias("#chan:example.org") {
		t.Error("alias namespace")
	}
}

func TestParseRegistrationErrors(t *testing.T) {
	for _, c := range []struct {
		name, edit, want string
	}{
		{"no id", "id: irc\n", "irc.yaml: id: is required"},
		{"url type", `url: "http://127.0.0.1:9999/"` + "\n", ""},
		{"bad url", `url: "http://127.0.0.1:9999/"`, "url: must be an absolute"},
		{"no as_token", "as_token: as1\n", "as_token: is required"},
		{"same tokens", "hs_token: hs1", "hs_token: must differ"},
		{"sender", "sender_localpart: _irc_bot", "sender_localpart: must be"},
		{"regex", `regex: "@_irc_.*"`, "namespaces.users[0].regex: invalid regular expression"},
		{"exclusive", "exclusive: false", "namespaces.users[1].exclusive: must be true or false"},
		{"rate_limited", "protocols: [irc]", "rate_limited: must be true or false"},
		{"namespaces", "namespaces:", "namespaces: must be a mapping"},
	} {
		t.Run(c.name, func(t *testing.T) {
			doc := validReg
			switch c.name {
			case "no id", "no as_token":
				doc = strings.Replace(doc, c.edit, "", 1)
			case "url type":
				doc = strings.Replace(doc, c.edit, "", 1)
				c.want = "url: is required"
			case "bad url":
				doc = strings.Replace(doc, c.edit, `url: "ftp://x"`, 1)
			case "same tokens":
				doc = strings.Replace(doc, c.edit, "hs_token: as1", 1)
			case "sender":
				doc = strings.Replace(doc, c.edit, "sender_localpart: IRC Bot", 1)
			case "regex":
				doc = strings.Replace(doc, c.edit, `regex: "@_irc_(.*"`, 1)
			case "exclusive":
				doc = strings.Replace(doc, c.edit, `exclusive: "no"`, 1)
			case "rate_limited":
				doc = strings.Replace(doc, c.edit, c.edit+"\nrate_limited: maybe", 1)
			case "namespaces":
				doc = doc[:strings.Index(doc, c.edit)] + "namespaces: [users]\n"
			}
			_, err := ParseRegistration("irc.yaml", []byte(doc), "example.org")
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "irc.yaml") {
				t.Fatalf("got %v, want an error naming irc.yaml and %q", err, c.want)
			}
		})
	}
}

func TestLoadRegistrationsUnique(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("a.yaml", validReg)
	b := write("b.yaml", strings.Replace(validReg, "as_token: as1", "as_token: as2", 1))
	c := write("c.yaml", strings.Replace(validReg, "id: irc", "id: irc2", 1))
	if _, err := LoadRegistrations([]string{a, b}, "example.org"); err == nil || !strings.Contains(err.Error(), "b.yaml: id:") {
		t.Fatalf("duplicate id: %v", err)
	}
	if _, err := LoadRegistrations([]string{a, c}, "example.org"); err == nil || !strings.Contains(err.Error(), "c.yaml: as_token:") {
		t.Fatalf("duplicate as_token: %v", err)
	}
	if _, err := LoadRegistrations([]string{filepath.Join(dir, "missing.yaml")}, "example.org"); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("missing file: %v", err)
	}
	regs, err := LoadRegistrations([]string{a}, "example.org")
	if err != nil || len(regs) != 1 {
		t.Fatalf("load: %v", err)
	}
	s := &Service{regs: regs}
	if s.ByToken("as1") != regs[0] || s.ByToken("as") != nil || s.ByToken("") != nil || s.ByToken("hs1") != nil {
		t.Fatal("ByToken")
	}
}
