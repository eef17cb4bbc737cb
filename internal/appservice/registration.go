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
	"regexp/syntax"
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
// as_tokens must be unique across them, as the spec requires. Every
// problem of every file is reported (joined), so one run of `axon
// appservice check` or one failed start shows all that needs fixing.
func LoadRegistrations(files []string, serverName string) ([]*Registration, error) {
	var out []*Registration
	var errs []error
	ids, tokens := map[string]string{}, map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("appservice: %w", err))
			continue
		}
		reg, err := ParseRegistration(f, data, serverName)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if other, dup := ids[reg.ID]; dup {
			errs = append(errs, fmt.Errorf("appservice: %s: id: %q is also the id of %s", f, reg.ID, other))
		}
		if other, dup := tokens[reg.ASToken]; dup {
			errs = append(errs, fmt.Errorf("appservice: %s: as_token: the same token is used by %s", f, other))
		}
		ids[reg.ID], tokens[reg.ASToken] = f, f
		out = append(out, reg)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// ParseRegistration validates one registration file's contents. Errors
// name the file and the field; every invalid field is reported (joined),
// not only the first. Keys it does not know (unstable MSC flags that
// bridges write) are ignored.
func ParseRegistration(file string, data []byte, serverName string) (*Registration, error) {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("appservice: %s: %s: %s", file, field, fmt.Sprintf(format, args...)))
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("appservice: %s: not valid YAML: %w", file, err)
	}
	if doc == nil {
		return nil, fmt.Errorf("appservice: %s: empty registration", file)
	}
	reg := &Registration{File: file, RateLimited: true, server: serverName}
	str := func(key string, required bool) string {
		v, ok := doc[key]
		if !ok || v == nil {
			if required {
				bad(key, "is required")
			}
			return ""
		}
		s, ok := v.(string)
		if !ok {
			bad(key, "must be a string")
			return ""
		}
		if required && s == "" {
			bad(key, "must not be empty")
		}
		return s
	}
	boolean := func(key string, def bool) bool {
		v, ok := doc[key]
		if !ok || v == nil {
			return def
		}
		b, ok := v.(bool)
		if !ok {
			bad(key, "must be true or false")
			return def
		}
		return b
	}
	reg.ID = str("id", true)
	if v, ok := doc["url"]; !ok {
		bad("url", "is required (null when the service takes no traffic)")
	} else if v != nil {
		if s, isStr := v.(string); !isStr {
			bad("url", "must be a string or null")
		} else if u, perr := url.Parse(s); perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			bad("url", "must be an absolute http:// or https:// URL without query (got %q)", s)
		} else {
			reg.URL = strings.TrimSuffix(s, "/")
		}
	}
	reg.ASToken = str("as_token", true)
	reg.HSToken = str("hs_token", true)
	if reg.ASToken != "" && reg.ASToken == reg.HSToken {
		bad("hs_token", "must differ from as_token")
	}
	if reg.SenderLocalpart = str("sender_localpart", true); reg.SenderLocalpart != "" && !validLocalpart(reg.SenderLocalpart) {
		bad("sender_localpart", "must be a user ID localpart of a-z, 0-9 and ._=-/+ (got %q)", reg.SenderLocalpart)
	}
	reg.Sender = "@" + reg.SenderLocalpart + ":" + serverName
	reg.RateLimited = boolean("rate_limited", true)
	// Bridges built on mautrix write the MSC2409 names; they mean the same.
	for _, key := range []string{"receive_ephemeral", "de.sorunome.msc2409.push_ephemeral", "push_ephemeral"} {
		b := boolean(key, false)
		reg.ReceiveEphemeral = reg.ReceiveEphemeral || b
		if key == "de.sorunome.msc2409.push_ephemeral" {
			reg.MSC2409Names = b
		}
	}
	reg.MSC3202 = boolean("org.matrix.msc3202", false)
	if v, ok := doc["protocols"]; ok && v != nil {
		if list, isList := v.([]any); !isList {
			bad("protocols", "must be a list of strings")
		} else {
			for i, p := range list {
				s, isStr := p.(string)
				if !isStr || s == "" || strings.Contains(s, "/") {
					bad(fmt.Sprintf("protocols[%d]", i), "must be a protocol name without '/'")
					continue
				}
				reg.Protocols = append(reg.Protocols, s)
			}
		}
	}
	reg.parseNamespaces(doc["namespaces"], bad)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	reg.tokenHash = sha256.Sum256([]byte(reg.ASToken))
	return reg, nil
}

// parseNamespaces reads the namespaces mapping, reporting each problem
// through bad.
func (reg *Registration) parseNamespaces(nsDoc any, bad func(field, format string, args ...any)) {
	if nsDoc == nil {
		bad("namespaces", "is required")
		return
	}
	nsMap, ok := nsDoc.(map[string]any)
	if !ok {
		bad("namespaces", "must be a mapping with users, aliases and rooms")
		return
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
			bad("namespaces."+kind.key, "must be a list of {exclusive, regex}")
			continue
		}
		for i, item := range list {
			field := fmt.Sprintf("namespaces.%s[%d]", kind.key, i)
			m, isMap := item.(map[string]any)
			if !isMap {
				bad(field, "must be a mapping with exclusive and regex")
				continue
			}
			ex, isBool := m["exclusive"].(bool)
			if !isBool {
				bad(field+".exclusive", "must be true or false")
			}
			src, isStr := m["regex"].(string)
			if !isStr || src == "" {
				bad(field+".regex", "must be a non-empty string")
				continue
			}
			// The pattern is checked on its own first: the error then
			// quotes what the operator wrote, and a pattern such as
			// "a)|(b" cannot escape the anchoring group it is put in.
			if _, err := regexp.Compile(src); err != nil {
				bad(field+".regex", "invalid regular expression %q: %s", src, regexpProblem(err))
				continue
			}
			re, err := regexp.Compile("^(?:" + src + ")")
			if err != nil {
				bad(field+".regex", "invalid regular expression %q: %s", src, regexpProblem(err))
				continue
			}
			if isBool {
				*kind.dst = append(*kind.dst, Namespace{Exclusive: ex, Regex: src, re: re})
			}
		}
	}
}

// regexpProblem is the reason of a regexp error without the "error
// parsing regexp:" prefix.
func regexpProblem(err error) string {
	var se *syntax.Error
	if errors.As(err, &se) {
		return string(se.Code) + ": `" + se.Expr + "`"
	}
	return err.Error()
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
