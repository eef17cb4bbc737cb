package media

import (
	"context"
	"errors"
	"html"
	"image"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/netguard"
)

// Limits of URL previews: the server fetches pages named by users, so every
// fetch is bounded in time and size and restricted to public addresses.
const (
	previewTimeout  = 10 * time.Second
	previewMaxBytes = 1 << 20
	previewMaxHops  = 5
)

type previewer struct {
	client *http.Client

	mu    sync.Mutex
	cache map[string]cachedPreview // by URL
}

type cachedPreview struct {
	og      map[string]any
	expires time.Time
}

// Previews are cached, so that every client in a room showing the same link
// costs one fetch.
const (
	previewCacheTTL     = time.Hour
	previewCacheEntries = 1000
	previewImageMax     = 10 << 20
)

func newPreviewer(policy *netguard.Policy) *previewer {
	p := &previewer{cache: map[string]cachedPreview{}}
	// The policy is checked on the resolved address of every connection,
	// redirects included, so DNS tricks cannot reach internal services.
	dialer := policy.Dialer(previewTimeout)
	p.client = &http.Client{
		Timeout: previewTimeout,
		Transport: &http.Transport{
			Proxy:                 nil, // a proxy would defeat the address check
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   previewTimeout,
			ResponseHeaderTimeout: previewTimeout,
			MaxIdleConns:          4,
			IdleConnTimeout:       30 * time.Second,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= previewMaxHops {
				return errors.New("too many redirects")
			}
			return nil
		},
	}
	return p
}

// PreviewURL fetches a web page and returns its Open Graph data, as
// GET /preview_url answers it; og:image is fetched too and stored as media.
func (s *Service) PreviewURL(ctx context.Context, raw string) (map[string]any, error) {
	if !s.cfg.URLPreviews {
		return nil, mxerr.Forbidden("URL previews are disabled on this server")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, mxerr.InvalidParam("url must be an absolute http or https URL")
	}
	u.Fragment = ""
	key := u.String()
	p := s.preview
	p.mu.Lock()
	c, ok := p.cache[key]
	p.mu.Unlock()
	if ok && s.now().Before(c.expires) {
		return c.og, nil
	}
	og, err := s.fetchPreview(ctx, u)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if len(p.cache) >= previewCacheEntries {
		for k, v := range p.cache {
			if s.now().After(v.expires) || len(p.cache) >= previewCacheEntries {
				delete(p.cache, k)
			}
		}
	}
	p.cache[key] = cachedPreview{og: og, expires: s.now().Add(previewCacheTTL)}
	p.mu.Unlock()
	return og, nil
}

func (s *Service) fetchPreview(ctx context.Context, u *url.URL) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(ctx, previewTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, mxerr.InvalidParam("Invalid url")
	}
	req.Header.Set("User-Agent", "Axon URL preview (Matrix homeserver)")
	req.Header.Set("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1")
	resp, err := s.preview.client.Do(req)
	if err != nil {
		if errors.Is(err, netguard.ErrBlocked) {
			return nil, mxerr.Forbidden("URL previews are only made for public addresses")
		}
		return nil, mxerr.New("M_UNKNOWN", "Could not fetch the page").WithStatus(http.StatusBadGateway)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, mxerr.New("M_UNKNOWN", "The page answered %d", resp.StatusCode).WithStatus(http.StatusBadGateway)
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if ct != "text/html" && ct != "application/xhtml+xml" {
		return map[string]any{}, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, previewMaxBytes))
	if err != nil {
		return nil, mxerr.New("M_UNKNOWN", "Could not read the page").WithStatus(http.StatusBadGateway)
	}
	og := openGraph(string(body))
	if img, ok := og["og:image"].(string); ok {
		delete(og, "og:image")
		if iu, err := resp.Request.URL.Parse(img); err == nil && (iu.Scheme == "http" || iu.Scheme == "https") {
			s.previewImage(ctx, iu.String(), og)
		}
	}
	return og, nil
}

// previewImage fetches a page's og:image and stores it as media owned by no
// user (not counted in anyone's quota; purged by date). Failures only leave
// the image out of the preview.
func (s *Service) previewImage(ctx context.Context, imageURL string, og map[string]any) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, imageURL, nil)
	if err != nil {
		return
	}
	req.Header.Set("User-Agent", "Axon URL preview (Matrix homeserver)")
	resp, err := s.preview.client.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if !strings.HasPrefix(ct, "image/") {
		return
	}
	limit := min(s.cfg.MaxUploadBytes, previewImageMax)
	m, tmp, err := s.receiveLimited(ctx, Upload{ContentType: ct, Length: resp.ContentLength, Body: resp.Body}, limit)
	if err != nil {
		return
	}
	defer os.Remove(tmp)
	if !thumbnailable(m.ContentType) {
		return
	}
	f, err := os.Open(tmp)
	if err != nil {
		return
	}
	cfg, _, err := image.DecodeConfig(f)
	f.Close()
	if err != nil {
		return
	}
	m.MediaID = newMediaID()
	if err := s.commit(ctx, m, tmp, func() error { return s.db.InsertMedia(ctx, *m) }); err != nil {
		return
	}
	og["og:image"] = s.MXC(m.MediaID)
	og["og:image:type"] = m.ContentType
	og["og:image:width"] = cfg.Width
	og["og:image:height"] = cfg.Height
	og["matrix:image:size"] = m.Size
}

var (
	metaTagRe = regexp.MustCompile(`(?is)<meta\s[^>]*>`)
	attrRe    = regexp.MustCompile(`(?is)([a-z:_-]+)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)`)
	titleRe   = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)
)

// openGraph extracts og:* properties (and title and description fallbacks)
// from an HTML page. A full HTML parser is not needed for <meta> tags.
func openGraph(page string) map[string]any {
	og := map[string]any{}
	var description string
	for _, tag := range metaTagRe.FindAllString(page, 200) {
		attrs := map[string]string{}
		for _, m := range attrRe.FindAllStringSubmatch(tag, -1) {
			v := m[2]
			if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') {
				v = v[1 : len(v)-1]
			}
			attrs[strings.ToLower(m[1])] = html.UnescapeString(v)
		}
		key := attrs["property"]
		if key == "" {
			key = attrs["name"]
		}
		content, ok := attrs["content"]
		if !ok {
			continue
		}
		switch {
		case key == "og:image" || key == "og:image:url" || key == "og:image:secure_url":
			if _, dup := og["og:image"]; !dup {
				og["og:image"] = content
			}
		case strings.HasPrefix(key, "og:") && !strings.HasPrefix(key, "og:image"):
			if _, dup := og[key]; !dup {
				og[key] = truncate(content, 1000)
			}
		case key == "description":
			description = content
		}
	}
	if _, ok := og["og:title"]; !ok {
		if m := titleRe.FindStringSubmatch(page); m != nil {
			og["og:title"] = truncate(strings.TrimSpace(html.UnescapeString(m[1])), 1000)
		}
	}
	if _, ok := og["og:description"]; !ok && description != "" {
		og["og:description"] = truncate(description, 1000)
	}
	return og
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
