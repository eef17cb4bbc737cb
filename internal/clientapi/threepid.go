package clientapi

// Handlers of the spec's "Adding Account Administrative Contact
// Information" (/account/3pid/...), the /requestToken endpoints of
// registration and password reset, and the pages that validation links
// open. The logic is in internal/threepid.

import (
	"html/template"
	"net/http"

	"github.com/axon-matrix/axon/internal/account"
	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/threepid"
)

// requestToken serves the six /requestToken endpoints: purpose is which
// operation the validated address may then be used for.
func (a *API) requestToken(purpose, medium string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			ClientSecret string `json:"client_secret"`
			Email        string `json:"email"`
			Country      string `json:"country"`
			PhoneNumber  string `json:"phone_number"`
			SendAttempt  *int64 `json:"send_attempt"`
			NextLink     string `json:"next_link"`
			// id_server and id_access_token are ignored: the homeserver
			// validates addresses itself.
		}
		if err := httpapi.DecodeJSON(r, &body); err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
		resp, err := a.Threepids.RequestToken(r.Context(), threepid.TokenRequest{
			Purpose: purpose, Medium: medium, ClientSecret: body.ClientSecret, Email: body.Email,
			SendAttempt: body.SendAttempt, NextLink: body.NextLink,
		})
		if err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"sid": resp.SID, "submit_url": resp.SubmitURL})
	}
}

func (a *API) threepids(w http.ResponseWriter, r *http.Request) {
	ts, err := a.Threepids.List(r.Context(), httpapi.CallerOf(r).UserID)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	out := make([]map[string]any, 0, len(ts))
	for _, t := range ts {
		out = append(out, map[string]any{"medium": t.Medium, "address": t.Address, "validated_at": t.ValidatedTS, "added_at": t.AddedTS})
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"threepids": out})
}

type bindBody struct {
	ClientSecret  string `json:"client_secret"`
	IDServer      string `json:"id_server"`
	IDAccessToken string `json:"id_access_token"`
	SID           string `json:"sid"`
}

// postThreepids is the deprecated POST /account/3pid, which the spec now
// defines as the same as /account/3pid/bind.
func (a *API) postThreepids(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Creds *bindBody `json:"three_pid_creds"`
	}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if body.Creds == nil {
		httpapi.WriteError(w, r, mxerr.MissingParam("Missing three_pid_creds"))
		return
	}
	c := body.Creds
	err := a.Threepids.Bind(r.Context(), threepid.BindRequest{ClientSecret: c.ClientSecret, IDServer: c.IDServer, IDAccessToken: c.IDAccessToken, SID: c.SID, Legacy: true})
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}

func (a *API) bindThreepid(w http.ResponseWriter, r *http.Request) {
	var c bindBody
	if err := httpapi.DecodeJSON(r, &c); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	err := a.Threepids.Bind(r.Context(), threepid.BindRequest{ClientSecret: c.ClientSecret, IDServer: c.IDServer, IDAccessToken: c.IDAccessToken, SID: c.SID})
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}

func (a *API) addThreepid(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Auth         *account.AuthDict `json:"auth"`
		ClientSecret string            `json:"client_secret"`
		SID          string            `json:"sid"`
	}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if err := a.Threepids.Add(r.Context(), httpapi.CallerOf(r).UserID, body.SID, body.ClientSecret, body.Auth); err != nil {
		writeAccountError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}

type threepidBody struct {
	Medium   string `json:"medium"`
	Address  string `json:"address"`
	IDServer string `json:"id_server"` // no identity server is ever used
}

func (a *API) deleteThreepid(w http.ResponseWriter, r *http.Request) {
	var body threepidBody
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	res, err := a.Threepids.Delete(r.Context(), httpapi.CallerOf(r).UserID, body.Medium, body.Address)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"id_server_unbind_result": res})
}

func (a *API) unbindThreepid(w http.ResponseWriter, r *http.Request) {
	var body threepidBody
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	res, err := a.Threepids.Unbind(r.Context(), body.Medium, body.Address)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"id_server_unbind_result": res})
}

// submitToken is the submit_url of /requestToken responses: the identity
// service API's POST /validate/email/submitToken, JSON in and out (form
// encoding is accepted too, as that API allows).
func (a *API) submitToken(w http.ResponseWriter, r *http.Request) {
	var body struct {
		SID          string `json:"sid"`
		ClientSecret string `json:"client_secret"`
		Token        string `json:"token"`
	}
	if r.Header.Get("Content-Type") == "application/x-www-form-urlencoded" {
		if err := r.ParseForm(); err != nil {
			httpapi.WriteError(w, r, mxerr.BadJSON("Malformed form"))
			return
		}
		body.SID, body.ClientSecret, body.Token = r.PostForm.Get("sid"), r.PostForm.Get("client_secret"), r.PostForm.Get("token")
	} else if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if _, err := a.Threepids.SubmitToken(r.Context(), body.SID, body.ClientSecret, body.Token); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]bool{"success": true})
}

// validationPage is what the link in an email opens. GET shows a button
// and changes nothing: mail scanners open links by themselves, and a
// validation they could trigger would let anyone who asks for a token for
// someone else's address have it confirmed for them.
var validationPage = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:34em;margin:3em auto;padding:0 1em;line-height:1.5}
button{font-size:1.1em;padding:.5em 1.2em}</style></head>
<body><h1>{{.Title}}</h1><p>{{.Text}}</p>
{{if .Form}}<form method="post" action="{{.Action}}">
<input type="hidden" name="sid" value="{{.SID}}"><input type="hidden" name="client_secret" value="{{.ClientSecret}}">
<input type="hidden" name="token" value="{{.Token}}"><button type="submit">{{.Button}}</button></form>{{end}}
</body></html>
`))

type validationView struct {
	Title, Text, Button, Action string
	Form                        bool
	SID, ClientSecret, Token    string
}

func writeValidationPage(w http.ResponseWriter, status int, v validationView) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// The page's URL holds the session's secrets: keep it out of caches,
	// frames and Referer headers.
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.WriteHeader(status)
	validationPage.Execute(w, v)
}

func validationFailed(w http.ResponseWriter, err error) {
	msg := "The link is not valid."
	if e, ok := mxerr.As(err); ok {
		switch e.Code {
		case "M_TOKEN_INCORRECT", "M_SESSION_EXPIRED":
			msg = "The link has expired or is not valid. Ask your Matrix app to send a new email."
		}
	} else {
		msg = "Something went wrong on the server. Try again later."
	}
	writeValidationPage(w, http.StatusBadRequest, validationView{Title: "Email address not confirmed", Text: msg})
}

func (a *API) getEmailValidation(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	sid, secret, token := q.Get("sid"), q.Get("client_secret"), q.Get("token")
	p, err := a.Threepids.CheckToken(r.Context(), sid, secret, token)
	if err != nil {
		if _, ok := mxerr.As(err); !ok {
			a.Log.Error("email validation page", "err", err)
		}
		validationFailed(w, err)
		return
	}
	v := validationView{Form: true, Action: threepid.ValidatePath, SID: sid, ClientSecret: secret, Token: token}
	switch p.Purpose {
	case account.PurposePassword:
		v.Title, v.Button = "Reset your password", "Yes, let me reset my password"
		v.Text = "Confirm that you, the owner of " + p.Address + ", want to reset the password of your account on " + a.Cfg.ServerName + "."
	case account.PurposeRegister:
		v.Title, v.Button = "Confirm your email address", "Confirm"
		v.Text = "Confirm " + p.Address + " for your new account on " + a.Cfg.ServerName + "."
	default:
		v.Title, v.Button = "Confirm your email address", "Confirm"
		v.Text = "Confirm that " + p.Address + " may be added to your account on " + a.Cfg.ServerName + "."
	}
	writeValidationPage(w, http.StatusOK, v)
}

func (a *API) postEmailValidation(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		validationFailed(w, mxerr.BadJSON("Malformed form"))
		return
	}
	f := r.PostForm
	next, err := a.Threepids.SubmitToken(r.Context(), f.Get("sid"), f.Get("client_secret"), f.Get("token"))
	if err != nil {
		if _, ok := mxerr.As(err); !ok {
			a.Log.Error("email validation", "err", err)
		}
		validationFailed(w, err)
		return
	}
	if next != "" {
		// Checked to be an http(s) URL when the session was created.
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	writeValidationPage(w, http.StatusOK, validationView{Title: "Email address confirmed",
		Text: "Thank you. You can close this page and continue in your Matrix app."})
}
