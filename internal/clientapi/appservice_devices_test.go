package clientapi_test

import (
	"net/http"
	"testing"
)

// TestAppServiceDeleteDevicesWithoutUIA: since spec v1.17 an application
// service deletes its users' devices with POST /delete_devices without
// user-interactive auth (DELETE /devices/{deviceId} is covered in
// appservice_test.go); a user still needs it.
func TestAppServiceDeleteDevicesWithoutUIA(t *testing.T) {
	f := newFakeAS(t)
	r, _ := startWithBridge(t, f)
	alice := r.CreateUser("alice")
	const ghost = "@_bridge_dee:axon.test"
	status, body := asCall(t, r, http.MethodPost, v3+"/register", "", map[string]any{
		"type": "m.login.application_service", "username": "_bridge_dee", "inhibit_login": true})
	if status != 200 {
		t.Fatalf("register: %d %v", status, body)
	}
	for _, dev := range []string{"DEV1", "DEV2", "KEEP"} {
		if status, body := asCall(t, r, http.MethodPut, v3+"/devices/"+dev, ghost, map[string]any{}); status != 200 {
			t.Fatalf("create %s: %d %v", dev, status, body)
		}
	}
	status, body = asCall(t, r, http.MethodPost, v3+"/delete_devices", ghost, map[string]any{"devices": []string{"DEV1", "DEV2"}})
	if status != 200 {
		t.Fatalf("service delete_devices: %d %v", status, body)
	}
	status, body = asCall(t, r, http.MethodGet, v3+"/devices", ghost, nil)
	var left []string
	for _, d := range body["devices"].([]any) {
		left = append(left, d.(map[string]any)["device_id"].(string))
	}
	if status != 200 || len(left) != 1 || left[0] != "KEEP" {
		t.Fatalf("devices after delete_devices: %d %v", status, left)
	}
	// A user's own request still asks for a password.
	status, body = apiCall(t, r, alice, v3, http.MethodPost, "/delete_devices", map[string]any{"devices": []string{alice.DeviceID.String()}})
	if status != http.StatusUnauthorized || body["flows"] == nil {
		t.Fatalf("user delete_devices without auth: %d %v", status, body)
	}
}
