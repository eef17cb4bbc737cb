package clientapi_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/testrig"
)

// TestPreviewRefusesEmbeddedPrivateAddresses asks a real server for
// previews of a page on loopback spelled as IPv6 addresses that embed it
// (NAT64, 6to4, Teredo, IPv4-compatible) and of the cloud metadata address
// behind NAT64: all are refused with M_FORBIDDEN before any connection,
// even where the plain loopback address is on the operator's allow-list.
func TestPreviewRefusesEmbeddedPrivateAddresses(t *testing.T) {
	var hits atomic.Int32
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, `<html><head><meta property="og:title" content="internal page"></head></html>`)
	}))
	defer page.Close()
	_, port, _ := net.SplitHostPort(page.Listener.Addr().String())

	embedded := []string{
		"[64:ff9b::7f00:1]",                      // NAT64 of 127.0.0.1
		"[64:ff9b::a9fe:a9fe]",                   // NAT64 of 169.254.169.254
		"[64:ff9b:1::7f00:1]",                    // local-use NAT64
		"[2002:7f00:1::1]",                       // 6to4 of 127.0.0.1
		"[2001:0:4136:e378:8000:63bf:80ff:fffe]", // Teredo, client 127.0.0.1
		"[::127.0.0.1]",                          // IPv4-compatible
		"[fd00::1]",                              // unique-local
		"100.64.0.1",                             // carrier-grade NAT
		"198.18.0.1",                             // benchmarking
		"0.0.0.0",
	}
	preview := func(r *testrig.Rig, tok, host string) mediaResp {
		target := "http://" + net.JoinHostPort(trimBrackets(host), port) + "/"
		return mediaDo(t, r, http.MethodGet, "/_matrix/client/v1/media/preview_url?url="+url.QueryEscape(target), tok, "", nil)
	}

	for _, allowLoopback := range []bool{false, true} {
		r := testrig.Start(t, func(c *config.Config) {
			c.Media.URLPreviews = true
			if allowLoopback {
				c.Outbound.AllowedNetworks = []string{"127.0.0.1"}
			}
		})
		tok := r.CreateUser("alice").AccessToken
		for _, host := range embedded {
			if res := preview(r, tok, host); res.status != http.StatusForbidden || res.errcode() != "M_FORBIDDEN" {
				t.Errorf("allow-list %v: preview of %s: %d %s, want 403 M_FORBIDDEN", allowLoopback, host, res.status, res.body)
			}
		}
		// ::ffff:127.0.0.1 is not an embedding but 127.0.0.1 itself: it
		// follows the allow-list like the plain address.
		for _, lo := range []string{"127.0.0.1", "[::ffff:127.0.0.1]"} {
			res := preview(r, tok, lo)
			if !allowLoopback && (res.status != http.StatusForbidden || res.errcode() != "M_FORBIDDEN") {
				t.Errorf("preview of %s: %d %s, want 403 M_FORBIDDEN", lo, res.status, res.body)
			}
			if allowLoopback && (res.status != http.StatusOK || !strings.Contains(string(res.body), "internal page")) {
				t.Errorf("preview of allowed %s: %d %s", lo, res.status, res.body)
			}
		}
		r.Stop()
	}
	if n := hits.Load(); n != 2 {
		t.Errorf("the page was fetched %d times, want twice (only through the allowed address)", n)
	}
}

func trimBrackets(h string) string {
	if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
		return h[1 : len(h)-1]
	}
	return h
}
