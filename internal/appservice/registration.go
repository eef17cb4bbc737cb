// Package appservice is the Application Service API: registrations loaded
// from the operator's files, identity assertion with as_tokens, namespace
// reservations, the durable transaction queues that push events to each
// service, pings, third-party protocol lookups and the services' room
// directories.
package appservice

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Namespace is one entry of a registration's users, aliases or rooms list.
type Namespace struct {
	Exclusive bool
	Regex     string
	re        *regexp.Regexp
}

// Match reports whether s is in the namespace. Like Synapse, the regex is
// anchored at the start only: registrations written for Synapse
// ("@_irc_.*", or a bare prefix) mean the same here.
func (n Namespace) Match(s string) bool { return n.re.MatchString(s) }

// Registration is one application service, as its registration file
// describes it.
type Registration struct {
	File            string
	ID              string
	URL             string // "" when the file says null: no traffic is sent
	ASToken         string
	HSToken         string
	SenderLocalpart string
	Users           []Namespace
	Aliases         []Namespace
	Rooms           []Namespace
	RateLimited     bool
	Protocols       []string
	// ReceiveEphemeral asks for receipts (and other ephemeral data) in
	// transactions (spec 1.13, MSC2409).
	ReceiveEphemeral bool
	// MSC2409Names is set when the file uses MSC2409's unstable switch
	// (de.sorunome.msc2409.push_ephemeral): the ephemeral data and
	// to-device messages then also travel under MSC2409's unstable names,
	// the only ones that bridges built on matrix-bot-sdk or
	// matrix-appservice-bridge read.
	MSC2409Names bool
	// MSC3202 asks for device list changes and one-time key counts in
	// transactions (org.matrix.msc3202), for end-to-bridge encryption.
	MSC3202 bool

	// Sender is the full user ID of SenderLocalpart.
	Sender string
	// tokenHash is the SHA-256 of ASToken: incoming tokens are hashed and
	// compared in constant time, so neither contents nor length leak.
	tokenHash [32]byte
	server    string
}

// LoadRegistrations reads and validates registration files. IDs and
// as_tokens must be unique across them, as the spec requires.
func LoadRegistrations(files []string, serverName string) ([]*Registration, error) {
	var out []*Registration
	ids, tokens := map[string]string{}, map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("appservice: %w", err)
		}
		reg, err := ParseRegistration(f, data, serverName)
		if err != nil {
			return nil, err
		}
		if other, dup := ids[reg.ID]; dup {
			return nil, fmt.Errorf("appservice: %s: id: %q is also the id of %s", f, reg.ID, other)
		}
		if other, dup := tokens[reg.ASToken]; dup {
			return nil, fmt.Errorf("appservice: %s: as_token: the same token is used by %s", f, other)
		}
		ids[reg.ID], tokens[reg.ASToken] = f, f
		out = append(out, reg)
	}
	return out, nil
}

// ParseRegistration validates one registration file's contents. Errors
// name the file and the field. Keys it does not know (unstable MSC flags
// that bridges write) are ignored.
func ParseRegistration(file string, data []byte, serverName string) (*Registration, error) {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("appservice: %s: %s: %s", file, field, fmt.Sprintf(format, args...))
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("appservice: %s: not valid YAML: %w", file, err)
	}
	if doc == nil {
		return nil, fmt.Errorf("appservice: %s: empty registration", file)
	}
	reg := &Registration{File: file, RateLimited: true, server: serverName}
	str := func(key string, required bool) (string, error) {
		v, ok := doc[key]
		if !ok || v == nil {
			if required {
				return "", bad(key, "is required")
			}
			return "", nil
		}
		s, ok := v.(string)
		if !ok {
			return "", bad(key, "must be a string")
		}
		if required && s == "" {
			return "", bad(key, "must not be empty")
		}
		return s, nil
	}
	boolean := func(key string, def bool) (bool, error) {
		v, ok := doc[key]
		if !ok || v == nil {
			return def, nil
		}
		b, ok := v.(bool)
		if !ok {
			return false, bad(key, "must be true or false")
		}
		return b, nil
	}
	var err error
	if reg.ID, err = str("id", true); err != nil {
		return nil, err
	}
	if v, ok := doc["url"]; !ok {
		return nil, bad("url", "is required (null when the service takes no traffic)")
	} else if v != nil {
		s, isStr := v.(string)
		if !isStr {
			return nil, bad("url", "must be a string or null")
		}
		u, perr := url.Parse(s)
		if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, bad("url", "must be an absolute http:// or https:// URL without query (got %q)", s)
		}
		reg.URL = strings.TrimSuffix(s, "/")
	}
	if reg.ASToken, err = str("as_token", true); err != nil {
		return nil, err
	}
	if reg.HSToken, err = str("hs_token", true); err != nil {
		return nil, err
	}
	if reg.ASToken == reg.HSToken {
		return nil, bad("hs_token", "must differ from as_token")
	}
	if reg.SenderLocalpart, err = str("sender_localpart", true); err != nil {
		return nil, err
	}
	if !validLocalpart(reg.SenderLocalpart) {
		return nil, bad("sender_localpart", "must be a user ID localpart of a-z, 0-9 and ._=-/+ (got %q)", reg.SenderLocalpart)
	}
	reg.Sender = "@" + reg.SenderLocalpart + ":" + serverName
	if reg.RateLimited, err = boolean("rate_limited", true); err != nil {
		return nil, err
	}
	// Bridges built on mautrix write the MSC2409 names; they mean the same.
	for _, key := range []string{"receive_ephemeral", "de.sorunome.msc2409.push_ephemeral", "push_ephemeral"} {
		b, err := boolean(key, false)
		if err != nil {
			return nil, err
		}
		reg.ReceiveEphemeral = reg.ReceiveEphemeral || b
		if key == "de.sorunome.msc2409.push_ephemeral" {
			reg.MSC2409Names = b
		}
	}
	if reg.MSC3202, err = boolean("org.matrix.msc3202", false); err != nil {
		return nil, err
	}
	if v, ok := doc["protocols"]; ok && v != nil {
		list, isList := v.([]any)
		if !isList {
			return nil, bad("protocols", "must be a list of strings")
		}
		for i, p := range list {
			s, isStr := p.(string)
			if !isStr || s == "" || strings.Contains(s, "/") {
				return nil, bad(fmt.Sprintf("protocols[%d]", i), "must be a protocol name without '/'")
			}
			reg.Protocols = append(reg.Protocols, s)
		}
	}
	nsDoc, ok := doc["namespaces"]
	if !ok || nsDoc == nil {
		return nil, bad("namespaces", "is required")
	}
	nsMap, ok := nsDoc.(map[string]any)
	if !ok {
		return nil, bad("namespaces", "must be a mapping with users, aliases and rooms")
	}
	for _, kind := range []struct {
		key string
		dst *[]Namespace
	}{{"users", &reg.Users}, {"aliases", &reg.Aliases}, {"rooms", &reg.Rooms}} {
		v, ok := nsMap[kind.key]
		if !ok || v == nil {
			continue
		}
		list, isList := v.([]any)
		if !isList {
			return nil, bad("namespaces."+kind.key, "must be a list of {exclusive, regex}")
		}
		for i, item := range list {
			field := fmt.Sprintf("namespaces.%s[%d]", kind.key, i)
			m, isMap := item.(map[string]any)
			if !isMap {
				return nil, bad(field, "must be a mapping with exclusive and regex")
			}
			ex, isBool := m["exclusive"].(bool)
			if !isBool {
				return nil, bad(field+".exclusive", "must be true or false")
			}
			src, isStr := m["regex"].(string)
			if !isStr || src == "" {
				return nil, bad(field+".regex", "must be a non-empty string")
			}
			re, err := regexp.Compile("^(?:" + src + ")")
			if err != nil {
				return nil, bad(field+".regex", "invalid regular expression %q: %v", src, err)
			}
			*kind.dst = append(*kind.dst, Namespace{Exclusive: ex, Regex: src, re: re})
		}
	}
	reg.tokenHash = sha256.Sum256([]byte(reg.ASToken))
	return reg, nil
}

func validLocalpart(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("._=-/+", c) >= 0) {
			return false
		}
	}
	return true
}

// isLocalUser reports whether userID is a user of this server; the users
// namespaces only ever cover local users.
func (r *Registration) isLocalUser(userID string) bool {
	_, server, ok := strings.Cut(userID, ":")
	return ok && strings.HasPrefix(userID, "@") && server == r.server
}

// InUserNamespace reports whether the service may act as userID: its
// sender, or a local user matching one of its users namespaces.
func (r *Registration) InUserNamespace(userID string) bool {
	if userID == r.Sender {
		return true
	}
	if !r.isLocalUser(userID) {
		return false
	}
	return matchAny(r.Users, userID, false)
}

// ExclusiveUser reports whether userID is reserved by this service.
func (r *Registration) ExclusiveUser(userID string) bool {
	return userID == r.Sender || (r.isLocalUser(userID) && matchAny(r.Users, userID, true))
}

// InAliasNamespace reports whether alias matches an aliases namespace.
func (r *Registration) InAliasNamespace(alias string) bool { return matchAny(r.Aliases, alias, false) }

// ExclusiveAlias reports whether alias is reserved by this service.
func (r *Registration) ExclusiveAlias(alias string) bool { return matchAny(r.Aliases, alias, true) }

// InRoomNamespace reports whether roomID matches a rooms namespace.
func (r *Registration) InRoomNamespace(roomID string) bool { return matchAny(r.Rooms, roomID, false) }

func matchAny(ns []Namespace, s string, exclusiveOnly bool) bool {
	for _, n := range ns {
		if (!exclusiveOnly || n.Exclusive) && n.Match(s) {
			return true
		}
	}
	return false
}

// HasProtocol reports whether the service declared protocol.
func (r *Registration) HasProtocol(protocol string) bool {
	for _, p := range r.Protocols {
		if p == protocol {
			return true
		}
	}
	return false
}

// errNoURL is returned for calls to a service registered with url: null.
var errNoURL = errors.New("application service has no URL")
