package clientapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/media"
	"github.com/axon-matrix/axon/internal/mxerr"
)

// Content repository (spec: client-server-api/modules/content_repo.md).
// The same handlers serve the authenticated /_matrix/client/v1/media paths
// and the legacy /_matrix/media/v3 ones; legacyOpts tells them apart.

// mediaHeaders are sent with every piece of media served: the spec's
// recommended sandbox policy, and permission for web clients on other
// origins to embed the content.
func mediaHeaders(w http.ResponseWriter, c *media.Content, fileName string, legacy bool) {
	h := w.Header()
	h.Set("Content-Type", c.ContentType)
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; object-src 'self';")
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	h.Set("X-Content-Type-Options", "nosniff")
	if fileName == "" {
		fileName = c.UploadName
	}
	h.Set("Content-Disposition", media.Disposition(c.ContentType, fileName))
	// Media never changes once uploaded. Authenticated responses must not
	// be kept by shared caches, which would serve them without a token.
	if legacy {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "private, max-age=31536000, immutable")
	}
	if c.SHA256 != "" {
		h.Set("ETag", `"`+c.SHA256+`"`)
	}
}

func (a *API) mediaUpload(w http.ResponseWriter, r *http.Request) {
	mxc, err := a.Media.Upload(r.Context(), a.uploadOf(r))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"content_uri": mxc})
}

func (a *API) uploadOf(r *http.Request) media.Upload {
	return media.Upload{
		UserID:      httpapi.CallerOf(r).UserID,
		ContentType: r.Header.Get("Content-Type"),
		FileName:    r.URL.Query().Get("filename"),
		Length:      r.ContentLength,
		Body:        r.Body,
	}
}

func (a *API) mediaCreate(w http.ResponseWriter, r *http.Request) {
	mxc, expires, err := a.Media.Create(r.Context(), httpapi.CallerOf(r).UserID)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"content_uri": mxc, "unused_expires_at": expires.UnixMilli()})
}

func (a *API) mediaUploadTo(w http.ResponseWriter, r *http.Request) {
	err := a.Media.UploadTo(r.Context(), r.PathValue("serverName"), r.PathValue("mediaId"), a.uploadOf(r))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{})
}

// mediaOptions reads timeout_ms; legacy says which path family was used.
func mediaOptions(r *http.Request, legacy bool) (media.Options, error) {
	opt := media.Options{Legacy: legacy, Wait: media.DefaultWait}
	// Remote media is never fetched and redirects never sent, so these
	// two change nothing, but junk in them is still bad input.
	for _, name := range []string{"allow_remote", "allow_redirect"} {
		if _, err := httpapi.QueryBool(r.URL.Query(), name); err != nil {
			return opt, err
		}
	}
	if v := r.URL.Query().Get("timeout_ms"); v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms < 0 {
			return opt, mxerr.InvalidParam("timeout_ms must be a non-negative integer")
		}
		opt.Wait = time.Duration(ms) * time.Millisecond
	}
	return opt, nil
}

func (a *API) mediaDownload(legacy bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		opt, err := mediaOptions(r, legacy)
		if err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
		c, err := a.Media.Download(r.Context(), r.PathValue("serverName"), r.PathValue("mediaId"), opt)
		if err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
		defer c.Close()
		mediaHeaders(w, c, r.PathValue("fileName"), legacy)
		http.ServeContent(w, r, "", c.Created, c.File)
	}
}

func (a *API) mediaThumbnail(legacy bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		opt, err := mediaOptions(r, legacy)
		if err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
		q := r.URL.Query()
		width, werr := strconv.Atoi(q.Get("width"))
		height, herr := strconv.Atoi(q.Get("height"))
		if werr != nil || herr != nil {
			httpapi.WriteError(w, r, mxerr.InvalidParam("width and height must be integers"))
			return
		}
		animated, err := httpapi.QueryBool(q, "animated")
		if err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
		req := media.ThumbnailRequest{Width: width, Height: height, Method: q.Get("method"), Animated: animated}
		c, err := a.Media.Thumbnail(r.Context(), r.PathValue("serverName"), r.PathValue("mediaId"), req, opt)
		if err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
		defer c.Close()
		mediaHeaders(w, c, "", legacy)
		// Thumbnails are always shown inline by clients; their type is one
		// of the image types on the inline list.
		http.ServeContent(w, r, "", c.Created, c.File)
	}
}

func (a *API) mediaConfig(w http.ResponseWriter, r *http.Request) {
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"m.upload.size": a.Media.MaxUploadBytes()})
}

func (a *API) mediaPreviewURL(w http.ResponseWriter, r *http.Request) {
	og, err := a.Media.PreviewURL(r.Context(), r.URL.Query().Get("url"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, og)
}
