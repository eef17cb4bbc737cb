package clientapi

import (
	"net/http"

	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/push"
)

func (a *API) getPushRules(w http.ResponseWriter, r *http.Request) {
	rs, err := a.PushRules.Get(r.Context(), httpapi.CallerOf(r).UserID)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"global": rs})
}

func (a *API) getGlobalPushRules(w http.ResponseWriter, r *http.Request) {
	rs, err := a.PushRules.Get(r.Context(), httpapi.CallerOf(r).UserID)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, rs)
}

func (a *API) getPushRule(w http.ResponseWriter, r *http.Request) {
	rule, err := a.PushRules.Rule(r.Context(), httpapi.CallerOf(r).UserID, r.PathValue("kind"), r.PathValue("ruleId"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, rule)
}

func (a *API) putPushRule(w http.ResponseWriter, r *http.Request) {
	var body push.NewRule
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	q := r.URL.Query()
	err := a.PushRules.Put(r.Context(), httpapi.CallerOf(r).UserID, r.PathValue("kind"), r.PathValue("ruleId"), body,
		q.Get("before"), q.Get("after"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}

func (a *API) deletePushRule(w http.ResponseWriter, r *http.Request) {
	if err := a.PushRules.Delete(r.Context(), httpapi.CallerOf(r).UserID, r.PathValue("kind"), r.PathValue("ruleId")); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}

func (a *API) getPushRuleEnabled(w http.ResponseWriter, r *http.Request) {
	rule, err := a.PushRules.Rule(r.Context(), httpapi.CallerOf(r).UserID, r.PathValue("kind"), r.PathValue("ruleId"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]bool{"enabled": rule.Enabled})
}

func (a *API) putPushRuleEnabled(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Enabled *bool `json:"enabled"`
	}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if body.Enabled == nil {
		httpapi.WriteError(w, r, mxerr.MissingParam("Missing enabled"))
		return
	}
	if err := a.PushRules.SetEnabled(r.Context(), httpapi.CallerOf(r).UserID, r.PathValue("kind"), r.PathValue("ruleId"), *body.Enabled); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}

func (a *API) getPushRuleActions(w http.ResponseWriter, r *http.Request) {
	rule, err := a.PushRules.Rule(r.Context(), httpapi.CallerOf(r).UserID, r.PathValue("kind"), r.PathValue("ruleId"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"actions": rule.Actions})
}

func (a *API) putPushRuleActions(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Actions []any `json:"actions"`
	}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if err := a.PushRules.SetActions(r.Context(), httpapi.CallerOf(r).UserID, r.PathValue("kind"), r.PathValue("ruleId"), body.Actions); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}
