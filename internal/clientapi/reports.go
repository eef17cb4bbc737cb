package clientapi

import (
	"net/http"

	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/mxerr"
)

// The reporting module: reports of events, rooms and users, kept for the
// operators (axon reports list|resolve). The routes are rate limited with
// the message class.

func (a *API) reportEvent(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Reason string `json:"reason"`
		Score  *int64 `json:"score"`
	}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	err := a.Reports.ReportEvent(r.Context(), httpapi.CallerOf(r).UserID, r.PathValue("roomId"), r.PathValue("eventId"), body.Reason, body.Score)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}

// decodeReportReason reads the body of room and user reports, whose reason is
// required but may be blank.
func decodeReportReason(r *http.Request) (string, error) {
	var body struct {
		Reason *string `json:"reason"`
	}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		return "", err
	}
	if body.Reason == nil {
		return "", mxerr.MissingParam("reason is required (it may be blank)")
	}
	return *body.Reason, nil
}

func (a *API) reportRoom(w http.ResponseWriter, r *http.Request) {
	reason, err := decodeReportReason(r)
	if err == nil {
		err = a.Reports.ReportRoom(r.Context(), httpapi.CallerOf(r).UserID, r.PathValue("roomId"), reason)
	}
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}

func (a *API) reportUser(w http.ResponseWriter, r *http.Request) {
	reason, err := decodeReportReason(r)
	if err == nil {
		err = a.Reports.ReportUser(r.Context(), httpapi.CallerOf(r).UserID, r.PathValue("userId"), reason)
	}
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}
