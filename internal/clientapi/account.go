package clientapi

// Handlers of the spec's "Client Authentication" (login, logout,
// registration, account management), "Device management" and "Profiles"
// modules, plus Synapse's shared-secret registration admin endpoint. The
// logic is in internal/account.

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/axon-matrix/axon/internal/account"
	"github.com/axon-matrix/axon/internal/appservice"
	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/storage"
)

// writeAccountError writes err, answering an incomplete user-interactive
// authentication with its 401 body.
func writeAccountError(w http.ResponseWriter, r *http.Request, err error) {
	var ar *account.AuthRequired
	if errors.As(err, &ar) {
		httpapi.WriteJSON(w, http.StatusUnauthorized, ar.Body())
		return
	}
	httpapi.WriteError(w, r, err)
}

func (a *API) loginFlows(w http.ResponseWriter, r *http.Request) {
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{
		"flows": []map[string]any{{"type": account.LoginTypePassword}, {"type": account.LoginTypeToken, "get_login_token": true},
			{"type": appservice.LoginType}},
	})
}

func (a *API) login(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Type                     string              `json:"type"`
		Identifier               *account.Identifier `json:"identifier"`
		User                     string              `json:"user"`
		Medium                   string              `json:"medium"`
		Address                  string              `json:"address"`
		Password                 *string             `json:"password"`
		Token                    string              `json:"token"`
		DeviceID                 string              `json:"device_id"`
		InitialDeviceDisplayName string              `json:"initial_device_display_name"`
		RefreshToken             bool                `json:"refresh_token"`
	}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if body.Type == "" {
		httpapi.WriteError(w, r, mxerr.MissingParam("Missing login type"))
		return
	}
	if body.Type == appservice.LoginType {
		a.loginAppService(w, r, body.Identifier, appservice.LoginRequest{Token: httpapi.AccessToken(r), User: body.User,
			DeviceID: body.DeviceID, DeviceDisplayName: body.InitialDeviceDisplayName, RefreshToken: body.RefreshToken})
		return
	}
	s, err := a.Accounts.Login(r.Context(), account.LoginRequest{
		Type: body.Type, Identifier: body.Identifier, User: body.User, Medium: body.Medium, Address: body.Address,
		Password: body.Password, Token: body.Token, DeviceID: body.DeviceID, DeviceDisplayName: body.InitialDeviceDisplayName,
		RefreshToken: body.RefreshToken,
	})
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	resp := a.sessionJSON(s)
	if base := a.clientBaseURL(); base != "" {
		resp["well_known"] = map[string]any{"m.homeserver": map[string]string{"base_url": base}}
	}
	httpapi.WriteJSON(w, http.StatusOK, resp)
}

func (a *API) clientBaseURL() string {
	base := a.Cfg.WellKnownClient
	if base == "" {
		base = a.Cfg.PublicBaseURL
	}
	return strings.TrimSuffix(base, "/")
}

func (a *API) sessionJSON(s *account.Session) map[string]any {
	out := map[string]any{
		"user_id":      s.UserID,
		"access_token": s.AccessToken,
		"device_id":    s.DeviceID,
		"home_server":  a.Cfg.ServerName,
	}
	addRefreshJSON(out, s)
	return out
}

// addRefreshJSON adds the refresh token and access token lifetime of a
// session that has them; without them clients assume a non-expiring token.
func addRefreshJSON(out map[string]any, s *account.Session) {
	if s.RefreshToken != "" {
		out["refresh_token"] = s.RefreshToken
	}
	if s.ExpiresIn > 0 {
		out["expires_in_ms"] = s.ExpiresIn.Milliseconds()
	}
}

func (a *API) refresh(w http.ResponseWriter, r *http.Request) {
	var body struct {
		RefreshToken *string `json:"refresh_token"`
	}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if body.RefreshToken == nil {
		httpapi.WriteError(w, r, mxerr.MissingParam("Missing refresh_token"))
		return
	}
	s, err := a.Accounts.Refresh(r.Context(), *body.RefreshToken)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	out := map[string]any{"access_token": s.AccessToken}
	addRefreshJSON(out, s)
	httpapi.WriteJSON(w, http.StatusOK, out)
}

func (a *API) logout(w http.ResponseWriter, r *http.Request) {
	c := httpapi.CallerOf(r)
	if err := a.Accounts.Logout(r.Context(), c.UserID, c.DeviceID); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}

func (a *API) logoutAll(w http.ResponseWriter, r *http.Request) {
	if err := a.Accounts.LogoutAll(r.Context(), httpapi.CallerOf(r).UserID); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}

func (a *API) whoami(w http.ResponseWriter, r *http.Request) {
	c := httpapi.CallerOf(r)
	out := map[string]any{"user_id": c.UserID, "is_guest": c.IsGuest}
	if c.DeviceID != "" {
		// An application service acting without device_id has no device.
		out["device_id"] = c.DeviceID
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

func (a *API) register(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Type                     string            `json:"type"`
		Username                 string            `json:"username"`
		Password                 string            `json:"password"`
		DeviceID                 string            `json:"device_id"`
		InitialDeviceDisplayName string            `json:"initial_device_display_name"`
		InhibitLogin             bool              `json:"inhibit_login"`
		Auth                     *account.AuthDict `json:"auth"`
		RefreshToken             bool              `json:"refresh_token"`
		GuestAccessToken         string            `json:"guest_access_token"`
	}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if body.Type == appservice.LoginType || (body.Auth != nil && body.Auth.Type == appservice.LoginType) {
		a.registerAppService(w, r, appservice.RegisterRequest{Token: httpapi.AccessToken(r), Username: body.Username,
			DeviceID: body.DeviceID, DeviceDisplayName: body.InitialDeviceDisplayName, InhibitLogin: body.InhibitLogin,
			RefreshToken: body.RefreshToken})
		return
	}
	reg, err := a.Accounts.Register(r.Context(), account.RegisterRequest{
		Kind: r.URL.Query().Get("kind"), Username: body.Username, Password: body.Password,
		DeviceID: body.DeviceID, DeviceDisplayName: body.InitialDeviceDisplayName,
		InhibitLogin: body.InhibitLogin, Auth: body.Auth, RefreshToken: body.RefreshToken, GuestAccessToken: body.GuestAccessToken,
	})
	if err != nil {
		writeAccountError(w, r, err)
		return
	}
	if reg.Session == nil {
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"user_id": reg.UserID, "home_server": a.Cfg.ServerName})
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, a.sessionJSON(reg.Session))
}

func (a *API) registerAvailable(w http.ResponseWriter, r *http.Request) {
	username := r.URL.Query().Get("username")
	if username == "" {
		httpapi.WriteError(w, r, mxerr.MissingParam("Missing username"))
		return
	}
	if err := a.Accounts.UsernameAvailable(r.Context(), username); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]bool{"available": true})
}

func (a *API) registrationTokenValidity(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !q.Has("token") {
		httpapi.WriteError(w, r, mxerr.MissingParam("Missing token"))
		return
	}
	valid, err := a.Accounts.RegistrationTokenValid(r.Context(), q.Get("token"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]bool{"valid": valid})
}

func (a *API) sharedSecretNonce(w http.ResponseWriter, r *http.Request) {
	nonce, err := a.Accounts.SharedSecretNonce()
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"nonce": nonce})
}

func (a *API) sharedSecretRegister(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Nonce       *string `json:"nonce"`
		Username    *string `json:"username"`
		Password    *string `json:"password"`
		Mac         *string `json:"mac"`
		Admin       bool    `json:"admin"`
		UserType    string  `json:"user_type"`
		DisplayName string  `json:"displayname"`
		DeviceID    string  `json:"device_id"`
	}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	s, err := a.Accounts.SharedSecretRegister(r.Context(), account.SharedSecretRequest{
		Nonce: body.Nonce, Username: body.Username, Password: body.Password, Mac: body.Mac,
		Admin: body.Admin, UserType: body.UserType, DisplayName: body.DisplayName, DeviceID: body.DeviceID,
	})
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, a.sessionJSON(s))
}

func (a *API) changePassword(w http.ResponseWriter, r *http.Request) {
	var body struct {
		NewPassword   *string           `json:"new_password"`
		LogoutDevices *bool             `json:"logout_devices"`
		Auth          *account.AuthDict `json:"auth"`
	}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	c := httpapi.CallerOf(r)
	err := a.Accounts.ChangePassword(r.Context(), account.ChangePasswordRequest{
		UserID: c.UserID, DeviceID: c.DeviceID,
		NewPassword: body.NewPassword, LogoutDevices: body.LogoutDevices, Auth: body.Auth,
	})
	if err != nil {
		writeAccountError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}

func (a *API) deactivateAccount(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Auth *account.AuthDict `json:"auth"`
		// id_server and erase have nothing to act on (the server binds no
		// 3PIDs and keeps no erasure state), but are decoded so that a
		// wrongly typed one is refused before user-interactive auth.
		IDServer string `json:"id_server"`
		Erase    bool   `json:"erase"`
	}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	err := a.Accounts.Deactivate(r.Context(), a.Rooms, account.DeactivateRequest{UserID: httpapi.CallerOf(r).UserID, Auth: body.Auth})
	if err != nil {
		writeAccountError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"id_server_unbind_result": "success"})
}

func deviceJSON(d storage.Device) map[string]any {
	out := map[string]any{"device_id": d.DeviceID}
	if d.DisplayName != "" {
		out["display_name"] = d.DisplayName
	}
	if d.LastSeenIP != "" {
		out["last_seen_ip"] = d.LastSeenIP
	}
	if d.LastSeenTS != 0 {
		out["last_seen_ts"] = d.LastSeenTS
	}
	return out
}

func (a *API) getDevices(w http.ResponseWriter, r *http.Request) {
	ds, err := a.Accounts.Devices(r.Context(), httpapi.CallerOf(r).UserID)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	out := make([]map[string]any, 0, len(ds))
	for _, d := range ds {
		out = append(out, deviceJSON(d))
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"devices": out})
}

func (a *API) getDevice(w http.ResponseWriter, r *http.Request) {
	d, err := a.Accounts.Device(r.Context(), httpapi.CallerOf(r).UserID, r.PathValue("deviceId"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, deviceJSON(*d))
}

func (a *API) putDevice(w http.ResponseWriter, r *http.Request) {
	var body struct {
		DisplayName *string `json:"display_name"`
	}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	c := httpapi.CallerOf(r)
	var err error
	if c.AppService != "" {
		err = a.Accounts.AppServicePutDevice(r.Context(), c.UserID, r.PathValue("deviceId"), body.DisplayName)
	} else {
		err = a.Accounts.RenameDevice(r.Context(), c.UserID, r.PathValue("deviceId"), body.DisplayName)
	}
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}

func (a *API) deleteDevice(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Auth *account.AuthDict `json:"auth"`
	}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if err := a.deleteDevicesOf(r, []string{r.PathValue("deviceId")}, body.Auth); err != nil {
		writeAccountError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}

// deleteDevicesOf deletes the caller's devices, after user-interactive
// auth unless the caller is an application service.
func (a *API) deleteDevicesOf(r *http.Request, ids []string, auth *account.AuthDict) error {
	c := httpapi.CallerOf(r)
	if c.AppService != "" {
		return a.Accounts.AppServiceDeleteDevices(r.Context(), c.UserID, ids)
	}
	return a.Accounts.DeleteDevices(r.Context(), c.UserID, ids, auth)
}

func (a *API) deleteDevices(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Devices *[]string         `json:"devices"`
		Auth    *account.AuthDict `json:"auth"`
	}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if body.Devices == nil {
		httpapi.WriteError(w, r, mxerr.MissingParam("Missing devices"))
		return
	}
	if err := a.deleteDevicesOf(r, *body.Devices, body.Auth); err != nil {
		writeAccountError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}

func (a *API) getProfile(w http.ResponseWriter, r *http.Request) {
	p, err := a.Accounts.GetProfile(r.Context(), r.PathValue("userId"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, p.Fields())
}

func (a *API) getProfileField(w http.ResponseWriter, r *http.Request) {
	key := profileKey(r)
	v, err := a.Accounts.GetProfileField(r.Context(), r.PathValue("userId"), key)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]json.RawMessage{key: v})
}

// profileKey is the profile field a request names: the {keyName} segment,
// or displayname on the literal displayname routes that guests may use.
func profileKey(r *http.Request) string {
	if k := r.PathValue("keyName"); k != "" {
		return k
	}
	return "displayname"
}

func (a *API) putProfileField(w http.ResponseWriter, r *http.Request) {
	key := profileKey(r)
	var body map[string]json.RawMessage
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	raw, ok := body[key]
	if !ok {
		httpapi.WriteError(w, r, mxerr.MissingParam("Missing %s", key))
		return
	}
	err := a.Accounts.SetProfileField(r.Context(), a.Rooms, httpapi.CallerOf(r).UserID, r.PathValue("userId"), key, raw)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}

func (a *API) deleteProfileField(w http.ResponseWriter, r *http.Request) {
	err := a.Accounts.SetProfileField(r.Context(), a.Rooms, httpapi.CallerOf(r).UserID, r.PathValue("userId"), profileKey(r), nil)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}
