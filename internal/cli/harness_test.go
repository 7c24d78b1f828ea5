package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/testenv"
)

// serverRun is `bulwark server` running in the test process, with a fresh
// admin token that the client commands use too.
type serverRun struct {
	t    *testing.T
	addr string
	// env is what the server and the client commands read.
	env  map[string]string
	logs *syncBuffer

	stopOnce sync.Once
	cancel   context.CancelFunc
	exited   chan int
	code     int
}

// startServer runs `bulwark server --listen <free port> args...` until the
// test ends (or Stop), logging its output if the test fails. scheme is
// "http" or "https" (when args carry --tls-cert).
func startServer(t *testing.T, scheme string, args ...string) *serverRun {
	t.Helper()
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	var b [32]byte
	rand.Read(b[:])
	token := "bwk_" + hex.EncodeToString(b[:])
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	return startServerWith(t, addr, map[string]string{"BULWARK_ADMIN_TOKEN": token, "BULWARK_TOKEN": token, "BULWARK_SERVER": scheme + "://" + addr}, args...)
}

// restart starts the server again, after Stop, on the same address with
// the same environment and args.
func (s *serverRun) restart(args ...string) *serverRun {
	s.t.Helper()
	return startServerWith(s.t, s.addr, s.env, args...)
}

func startServerWith(t *testing.T, addr string, env map[string]string, args ...string) *serverRun {
	t.Helper()
	s := &serverRun{t: t, addr: addr, env: env, logs: &syncBuffer{}, exited: make(chan int, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		s.exited <- runContext(ctx, append([]string{"server", "--listen", s.addr}, args...), s.logs, s.logs,
			func(k string) (string, bool) { v, ok := s.env[k]; return v, ok })
	}()
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("server log:\n%s", s.logs.String())
		}
	})
	return s
}

// Stop stops the server and reports a failed exit.
func (s *serverRun) Stop() {
	s.stopOnce.Do(func() {
		s.cancel()
		select {
		case s.code = <-s.exited:
			if s.code != ExitOK {
				s.t.Errorf("server exited %d", s.code)
			}
		case <-time.After(30 * time.Second):
			s.t.Error("server did not stop within 30s")
		}
	})
}

// waitUntil polls ok until it holds, failing the test at the deadline or
// when the server exits; it returns ok's last output.
func (s *serverRun) waitUntil(what string, timeout time.Duration, ok func() (bool, string)) string {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done, last := ok()
		if done {
			return last
		}
		select {
		case code := <-s.exited:
			s.exited <- code // for Stop
			s.t.Fatalf("server exited %d while waiting for %s", code, what)
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out after %v waiting for %s; last:\n%s", timeout, what, last)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// cli runs a client command against the server; extra flags (such as
// --ca-file) go after args.
func (s *serverRun) cli(args ...string) (int, string) {
	s.t.Helper()
	code, out, errOut := runCLI(s.t, s.env, args...)
	return code, out + errOut
}
