package clientapi_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"net"
	"net/http"
	"sync"
	"testing"

	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/testrig"
)

// TestSharedSecretNonceFloodKeepsAdminNonce: unauthenticated GETs of
// shared-secret nonces from many addresses (100 loopback addresses here,
// as many IPv6 addresses are to anyone) cannot fill the nonce store and
// evict the nonce an administrator is about to use: the endpoint has the
// registration rate limit.
func TestSharedSecretNonceFloodKeepsAdminNonce(t *testing.T) {
	const secret = "the shared secret"
	r := testrig.Start(t, func(c *config.Config) {
		c.RegistrationSharedSecret = secret
		c.RateLimits = true
	})
	status, body := r.JSON(t, "GET", "/_synapse/admin/v1/register", "", nil)
	if status != 200 {
		t.Fatalf("nonce: %d %v", status, body)
	}
	nonce := body["nonce"].(string)

	var mu sync.Mutex
	issued, refused := 0, 0
	var wg sync.WaitGroup
	addrs := make(chan int, 100)
	for a := 2; a < 102; a++ {
		addrs <- a
	}
	close(addrs)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range addrs {
				d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(a))}}
				c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
				for range 100 {
					resp, err := c.Get(r.URL + "/_synapse/admin/v1/register")
					if err != nil {
						t.Error(err)
						return
					}
					resp.Body.Close()
					mu.Lock()
					if resp.StatusCode == 200 {
						issued++
					} else {
						refused++
					}
					mu.Unlock()
					if resp.StatusCode == http.StatusTooManyRequests {
						break // refused from now on
					}
				}
				c.CloseIdleConnections()
			}
		}()
	}
	wg.Wait()
	t.Logf("flood from 100 addresses: %d nonces issued, %d refused", issued, refused)

	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(nonce + "\x00admin2\x00admin2-password\x00admin"))
	status, body = r.JSON(t, "POST", "/_synapse/admin/v1/register", "", map[string]any{
		"nonce": nonce, "username": "admin2", "password": "admin2-password", "mac": hex.EncodeToString(mac.Sum(nil)), "admin": true,
	})
	if status != 200 {
		t.Fatalf("the admin's nonce after the flood: %d %v", status, body)
	}
}
