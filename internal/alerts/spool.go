package alerts

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// The spool keeps alerts that could not be delivered, one JSON file per
// alert (plus a copy of its attachment), named so that a directory listing
// is oldest first. A file is removed only after the server acknowledged the
// event, and every alert keeps its transaction ID, so a resend after a lost
// acknowledgement is deduplicated by the server: nothing lost, nothing twice.
type spool struct{ dir string }

func newSpool(stateDir string) *spool { return &spool{dir: filepath.Join(stateDir, "spool")} }

func newTxnID(now time.Time) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return fmt.Sprintf("axon-%d-%s", now.UnixNano(), hex.EncodeToString(b))
}

// put stores a and returns the spool file's path.
func (s *spool) put(a *Alert) (string, error) {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return "", err
	}
	name := fmt.Sprintf("%020d-%s", a.Created.UnixNano(), a.TxnID)
	rec := *a
	if a.File != "" && !strings.HasPrefix(a.File, s.dir+string(os.PathSeparator)) {
		dst := filepath.Join(s.dir, name+".data")
		if err := copyFile(a.File, dst); err != nil {
			return "", fmt.Errorf("spool attachment: %w", err)
		}
		rec.File = dst
	}
	data, err := json.Marshal(&rec)
	if err != nil {
		return "", err
	}
	path := filepath.Join(s.dir, name+".json")
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return "", err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
}

type spooled struct {
	path  string
	alert Alert
}

// list returns the spooled alerts, oldest first.
func (s *spool) list() ([]spooled, error) {
	names, err := filepath.Glob(filepath.Join(s.dir, "*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []spooled
	for _, p := range names {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var a Alert
		if err := json.Unmarshal(data, &a); err != nil {
			// Never block the queue on one bad file: move it aside.
			_ = os.Rename(p, p+".bad")
			continue
		}
		out = append(out, spooled{path: p, alert: a})
	}
	return out, nil
}

// remove deletes a delivered alert and its attachment copy.
func (s *spool) remove(e spooled) error {
	if e.alert.File != "" && strings.HasPrefix(e.alert.File, s.dir+string(os.PathSeparator)) {
		_ = os.Remove(e.alert.File)
	}
	return os.Remove(e.path)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
