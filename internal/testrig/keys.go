package testrig

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto/canonicaljson"
)

// UploadDeviceKeys uploads device keys for c's device, signed by a fresh
// ed25519 key as the server requires (a device-list change for its user),
// failing the test on anything but 200.
func (r *Rig) UploadDeviceKeys(t testing.TB, c *mautrix.Client) {
	t.Helper()
	b64 := base64.RawStdEncoding
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dev := c.DeviceID.String()
	keys := map[string]any{
		"user_id": c.UserID.String(), "device_id": dev,
		"algorithms": []string{"m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"},
		"keys":       map[string]string{"ed25519:" + dev: b64.EncodeToString(pub), "curve25519:" + dev: b64.EncodeToString(make([]byte, 32))},
	}
	raw, err := json.Marshal(keys)
	if err != nil {
		t.Fatal(err)
	}
	canon, err := canonicaljson.CanonicalJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	keys["signatures"] = map[string]any{c.UserID.String(): map[string]string{"ed25519:" + dev: b64.EncodeToString(ed25519.Sign(priv, canon))}}
	if status, body := r.JSON(t, "POST", "/_matrix/client/v3/keys/upload", c.AccessToken, map[string]any{"device_keys": keys}); status != 200 {
		t.Fatalf("keys upload: %d %v", status, body)
	}
}
