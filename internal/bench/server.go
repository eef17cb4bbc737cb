package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is an axon process started by the benchmark.
type server struct {
	cmd     *exec.Cmd
	dir     string // temporary directory: data dir and server.log
	logPath string
	logFile *os.File
	url     string
	exited  chan struct{} // closed when the process has exited
	waitErr error         // valid once exited is closed
}

// startServer runs `binary serve` on a free loopback port with a fresh data
// directory and waits until it answers GET /_matrix/client/versions.
func startServer(ctx context.Context, binary string, output io.Writer, timeout time.Duration) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("finding a free port: %w", err)
	}
	dir, err := os.MkdirTemp("", "axon-bench-")
	if err != nil {
		return nil, err
	}
	s := &server{dir: dir, logPath: filepath.Join(dir, "server.log"), exited: make(chan struct{})}
	dataDir := filepath.Join(dir, "data")
	if err := os.Mkdir(dataDir, 0o700); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if s.logFile, err = os.Create(s.logPath); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s.url = "http://" + addr

	// Not exec.CommandContext: the process is stopped with SIGTERM in stop,
	// not killed outright when ctx ends.
	cmd := exec.Command(binary, "serve")
	cmd.Env = append(os.Environ(),
		"AXON_DATA_DIR="+dataDir,
		"AXON_LISTEN="+addr,
		"AXON_RATE_LIMITS=false",
		"AXON_REGISTRATION=open",
		"AXON_SERVER_NAME=bench.local",
	)
	var out io.Writer = s.logFile
	if output != nil {
		out = io.MultiWriter(s.logFile, output)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		s.logFile.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting %s serve: %w", binary, err)
	}
	s.cmd = cmd
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()

	if err := s.waitReady(ctx, timeout); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *server) pid() int { return s.cmd.Process.Pid }

func (s *server) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	hc := &http.Client{Timeout: 2 * time.Second}
	defer hc.CloseIdleConnections()
	for {
		resp, err := hc.Get(s.url + "/_matrix/client/versions")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("server exited before answering /versions (%v)%s", s.waitErr, s.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server did not answer GET /_matrix/client/versions with 200 within %v (last: %v)%s",
				timeout, err, s.logTail())
		}
	}
}

// deadErr reports whether the server has exited, as an error, or nil.
func (s *server) deadErr() error {
	select {
	case <-s.exited:
		return fmt.Errorf("server process exited (%v)%s", s.waitErr, s.logTail())
	default:
		return nil
	}
}

// stop sends SIGTERM, waits up to 10 s, then kills, and removes the
// temporary directory. It returns an error if the process had already died,
// failed its shutdown or did not stop in time.
func (s *server) stop() error {
	defer os.RemoveAll(s.dir)
	defer s.logFile.Close()
	select {
	case <-s.exited:
		return fmt.Errorf("server had exited on its own (%v)%s", s.waitErr, s.logTail())
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		// Dying of the signal itself (no handler) is a stop too; a non-zero
		// exit status means the server's own shutdown failed.
		var ee *exec.ExitError
		if errors.As(s.waitErr, &ee) && ee.ExitCode() > 0 {
			return fmt.Errorf("server exited with %v after SIGTERM%s", s.waitErr, s.logTail())
		}
		return nil
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
		return errors.New("server did not stop within 10 s of SIGTERM; killed")
	}
}

// logTail returns the last lines of the server's output, for error messages.
func (s *server) logTail() string {
	data, err := os.ReadFile(s.logPath)
	if err != nil || len(data) == 0 {
		return ""
	}
	const max = 2048
	if len(data) > max {
		data = data[len(data)-max:]
	}
	return "\nlast server output:\n" + string(data)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// readMemory returns the resident set size and its peak (VmRSS, VmHWM) of
// process pid in bytes, from /proc/<pid>/status.
func readMemory(pid int) (rss, peak uint64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parsing %s of pid %d: %w", name, pid, err)
		}
		if name == "VmRSS" {
			rss = kb * 1024
		} else {
			peak = kb * 1024
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if rss == 0 {
		return 0, 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	return rss, peak, nil
}
