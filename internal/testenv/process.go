package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Process is a component program the test environment started. It is only
// ever stopped by its own PID.
type Process struct {
	Name    string
	LogPath string

	cmd  *exec.Cmd
	stop syscall.Signal
	done chan struct{}

	mu  sync.Mutex
	err error
}

// processOptions adjust how a Process starts.
type processOptions struct {
	env  []string            // added to the test's environment
	dir  string              // working directory
	cred *syscall.Credential // run as another user
	stop syscall.Signal      // asks for a clean shutdown; SIGTERM when zero
}

// startProcess runs bin with args, its output going to logDir/name.log. The
// child gets SIGKILL if the test binary dies first, so a crashed test leaves
// no component running.
func startProcess(logDir, name string, opts processOptions, bin string, args ...string) (*Process, error) {
	logPath := filepath.Join(logDir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening log for %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Dir = opts.dir
	cmd.Env = append(os.Environ(), opts.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
		Credential: opts.cred,
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s (%s): %w", name, bin, err)
	}
	p := &Process{Name: name, LogPath: logPath, cmd: cmd, stop: opts.stop, done: make(chan struct{})}
	if p.stop == 0 {
		p.stop = syscall.SIGTERM
	}
	go func() {
		err := cmd.Wait()
		logFile.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// PID is the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is the process's exit status once Done is closed.
func (p *Process) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Stop sends the stop signal (SIGTERM unless the component asks for
// another) to the process's own PID, waits up to grace for it to
// exit, then kills it. Its children, if any, share its process group and get
// the same signals; no other process is touched.
func (p *Process) Stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(-pid, p.stop)
	select {
	case <-p.done:
		return
	case <-time.After(grace):
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	<-p.done
}

// Tail returns the last n lines of the process's log.
func (p *Process) Tail(n int) string {
	return tailFile(p.LogPath, n)
}

func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// logDir makes a directory for a component's logs. It is removed when the
// scope ends without failure and kept, with its path and the tail of each
// log printed, when the scope failed.
func logDir(s scope, component string) (string, error) {
	dir, err := os.MkdirTemp("", "bulwark-"+component+"-logs-")
	if err != nil {
		return "", fmt.Errorf("creating log directory: %w", err)
	}
	s.Cleanup(func() {
		if !s.Failed() {
			os.RemoveAll(dir)
			return
		}
		entries, _ := os.ReadDir(dir)
		var b strings.Builder
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".log") {
				fmt.Fprintf(&b, "--- %s (last 40 lines)\n%s\n", e.Name(), tailFile(filepath.Join(dir, e.Name()), 40))
			}
		}
		s.Logf("%s logs kept in %s\n%s", component, dir, b.String())
	})
	return dir, nil
}

// scope is what a component belongs to: a single test (testing.TB) or the
// shared suite of a package's tests (see Main).
type scope interface {
	Cleanup(func())
	Failed() bool
	Logf(format string, args ...any)
}

// suite is the scope of components shared by all tests of a package. Its
// cleanups run when Main's m.Run returns.
type suite struct {
	mu       sync.Mutex
	active   bool
	failed   bool
	cleanups []func()
}

var shared suite

func (s *suite) Cleanup(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cleanups = append(s.cleanups, f)
}

func (s *suite) Failed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

func (s *suite) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "testenv: "+format+"\n", args...)
}

// errNoMain is returned when a shared component is asked for in a package
// whose TestMain does not call Main: nothing would stop it.
var errNoMain = errors.New("shared test components need TestMain to call testenv.Main(m)")

func (s *suite) check() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.active {
		return errNoMain
	}
	return nil
}

// runCleanups stops everything the suite started, newest first.
func (s *suite) runCleanups(failed bool) {
	s.mu.Lock()
	s.failed = failed
	cleanups := s.cleanups
	s.cleanups = nil
	s.mu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
}

var (
	sharedMu         sync.Mutex
	sharedComponents = map[string]*sharedEntry{}
)

type sharedEntry struct {
	once sync.Once
	v    any
	err  error
}

// sharedComponent starts a component once per package, under key, in the
// shared suite's scope, and hands every caller the same instance (or the
// same start error).
func sharedComponent[T any](t testing.TB, key string, start func(scope) (T, error)) T {
	t.Helper()
	if err := shared.check(); err != nil {
		t.Fatal(err)
	}
	sharedMu.Lock()
	e, ok := sharedComponents[key]
	if !ok {
		e = &sharedEntry{}
		sharedComponents[key] = e
	}
	sharedMu.Unlock()
	e.once.Do(func() { e.v, e.err = start(&shared) })
	if e.err != nil {
		fatal(t, "starting shared "+key, e.err)
	}
	return e.v.(T)
}

// testingM is the part of *testing.M that Main uses.
type testingM interface{ Run() int }

// Main runs a package's tests and then stops the components they shared.
// Packages that use Shared* helpers call it from TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m testingM) {
	shared.mu.Lock()
	shared.active = true
	shared.mu.Unlock()
	code := m.Run()
	shared.runCleanups(code != 0)
	os.Exit(code)
}
