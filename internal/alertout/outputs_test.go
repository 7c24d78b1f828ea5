package alertout

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func sampleAlert() store.Alert {
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	return store.Alert{ID: 7, Source: store.SourceAudit, Cluster: "prod", RuleID: "secret-read-by-human", Title: "Secret read by a human", Severity: "high",
		TechniqueID: "T1552.007", TechniqueName: "Container API", Summary: "alice read <secret> shop/db", Actor: "alice",
		Groups: []string{"dev", "system:authenticated"}, SourceIP: "10.0.0.1", UserAgent: "kubectl/v1.34", Verb: "get",
		Resource: "secrets", Namespace: "shop", Name: "db", Events: []string{"e1", "e2"}, Count: 2, GroupKey: "alice/shop/db",
		FirstAt: at, LastAt: at.Add(time.Minute), CreatedAt: at}
}

// hostileProcess is a command line a container could run: Slack markup
// that would ping a channel, syslog escapes, a line break, a terminal
// escape and a bidirectional override.
const hostileProcess = "sh -c \"curl <!channel> & ]\\\" \x1b[31m\"\nid\u202eexe.sh"

// sampleSensorAlert is a runtime alert as the sensor ingest stores it.
func sampleSensorAlert() store.Alert {
	at := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	return store.Alert{ID: 9, Source: store.SourceSensor, Cluster: "prod", RuleID: "drift-exec", Title: "Binary not in the image executed",
		Severity: "critical", TechniqueID: "T1105", TechniqueName: "Ingress Tool Transfer", Summary: "/tmp/x ran in shop/web-1",
		Actor: "uid 0", Resource: "pods", Namespace: "shop", Name: "web-1", Node: "node-a",
		ContainerID: "3f4a9c0d1e2f3a4b5c6d7e8f", ContainerName: "app", Image: "nginx:1.27", Process: hostileProcess,
		Events: []string{"ev-1"}, Count: 1, GroupKey: "drift/3f4a", FirstAt: at, LastAt: at, CreatedAt: at}
}

// httpReceiver is a webhook endpoint that answers with status and keeps
// what it was sent.
type httpReceiver struct {
	mu      sync.Mutex
	status  int
	bodies  [][]byte
	headers []http.Header
}

func (r *httpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	status := r.status
	if status == 0 {
		status = http.StatusOK
	}
	r.bodies = append(r.bodies, body)
	r.headers = append(r.headers, req.Header.Clone())
	r.mu.Unlock()
	w.WriteHeader(status)
	io.WriteString(w, http.StatusText(status))
}

func (r *httpReceiver) setStatus(s int) {
	r.mu.Lock()
	r.status = s
	r.mu.Unlock()
}

func (r *httpReceiver) received() ([][]byte, []http.Header) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.bodies...), append([]http.Header(nil), r.headers...)
}

func TestWebhookPayload(t *testing.T) {
	audit := map[string]any{
		"id": 7.0, "source": "audit", "cluster": "prod", "ruleId": "secret-read-by-human", "title": "Secret read by a human", "severity": "high",
		"technique": map[string]any{"id": "T1552.007", "name": "Container API"}, "summary": "alice read <secret> shop/db",
		"actor":  map[string]any{"username": "alice", "groups": []any{"dev", "system:authenticated"}, "sourceIP": "10.0.0.1", "userAgent": "kubectl/v1.34"},
		"object": map[string]any{"verb": "get", "resource": "secrets", "namespace": "shop", "name": "db"},
		"events": []any{"e1", "e2"}, "count": 2.0, "groupKey": "alice/shop/db",
		"firstAt": "2026-11-01T12:00:00Z", "lastAt": "2026-11-01T12:01:00Z", "createdAt": "2026-11-01T12:00:00Z",
	}
	legacy := sampleAlert()
	legacy.Source = ""
	host := sampleSensorAlert()
	host.Resource, host.Namespace, host.Name, host.ContainerID, host.ContainerName, host.Image = "", "", "", "", "", ""
	host.Process = strings.Repeat("a", 5000)
	for _, tc := range []struct {
		name  string
		alert store.Alert
		want  map[string]any
	}{
		{"audit", sampleAlert(), audit},
		// Alerts stored before sensors existed have no source.
		{"audit without source", legacy, audit},
		{"sensor", sampleSensorAlert(), map[string]any{
			"id": 9.0, "source": "sensor", "cluster": "prod", "ruleId": "drift-exec", "title": "Binary not in the image executed",
			"severity": "critical", "technique": map[string]any{"id": "T1105", "name": "Ingress Tool Transfer"}, "summary": "/tmp/x ran in shop/web-1",
			"actor":  map[string]any{"username": "uid 0", "groups": []any{}, "sourceIP": "", "userAgent": ""},
			"object": map[string]any{"verb": "", "resource": "pods", "namespace": "shop", "name": "web-1"},
			"runtime": map[string]any{"node": "node-a", "containerId": "3f4a9c0d1e2f3a4b5c6d7e8f", "containerName": "app", "image": "nginx:1.27",
				"process": hostileProcess},
			"events": []any{"ev-1"}, "count": 1.0, "groupKey": "drift/3f4a",
			"firstAt": "2026-11-02T08:00:00Z", "lastAt": "2026-11-02T08:00:00Z", "createdAt": "2026-11-02T08:00:00Z",
		}},
		// A process on the host: no container fields, and a command line
		// longer than any output carries.
		{"sensor on the host", host, map[string]any{
			"id": 9.0, "source": "sensor", "cluster": "prod", "ruleId": "drift-exec", "title": "Binary not in the image executed",
			"severity": "critical", "technique": map[string]any{"id": "T1105", "name": "Ingress Tool Transfer"}, "summary": "/tmp/x ran in shop/web-1",
			"actor":   map[string]any{"username": "uid 0", "groups": []any{}, "sourceIP": "", "userAgent": ""},
			"object":  map[string]any{"verb": "", "resource": ""},
			"runtime": map[string]any{"node": "node-a", "process": strings.Repeat("a", maxProcess)},
			"events":  []any{"ev-1"}, "count": 1.0, "groupKey": "drift/3f4a",
			"firstAt": "2026-11-02T08:00:00Z", "lastAt": "2026-11-02T08:00:00Z", "createdAt": "2026-11-02T08:00:00Z",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recv := &httpReceiver{}
			srv := httptest.NewServer(recv)
			defer srv.Close()
			w, err := NewWebhook("siem", srv.URL+"/hook", WebhookOptions{Token: "s3cret-token", Headers: map[string]string{"X-Tenant": "prod"}})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Send(context.Background(), tc.alert, store.DeliveryUpdate); err != nil {
				t.Fatal(err)
			}
			bodies, headers := recv.received()
			if len(bodies) != 1 {
				t.Fatalf("%d requests, want 1", len(bodies))
			}
			if got := headers[0].Get("Authorization"); got != "Bearer s3cret-token" {
				t.Errorf("Authorization = %q", got)
			}
			if got := headers[0].Get("X-Tenant"); got != "prod" {
				t.Errorf("X-Tenant = %q", got)
			}
			var got map[string]any
			if err := json.Unmarshal(bodies[0], &got); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{"version": "bulwark.alert/v1", "kind": "update", "alert": tc.want}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("payload (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWebhookStatuses(t *testing.T) {
	recv := &httpReceiver{}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	// The URL carries a secret, as a Slack webhook's does.
	s, err := NewSlack("chat", srv.URL+"/services/T000/B000/XXSECRETXX", WebhookOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		status   int
		ok       bool
		rejected bool
	}{
		{200, true, false}, {204, true, false}, {400, false, true}, {404, false, true}, {408, false, false},
		{429, false, false}, {500, false, false}, {503, false, false}, {302, false, false},
	} {
		recv.setStatus(tc.status)
		err := s.Send(context.Background(), sampleAlert(), store.DeliveryNew)
		if (err == nil) != tc.ok || errors.Is(err, ErrRejected) != tc.rejected {
			t.Errorf("status %d: err = %v, want ok %v, rejected %v", tc.status, err, tc.ok, tc.rejected)
		}
		if err != nil && strings.Contains(err.Error(), "XXSECRETXX") {
			t.Errorf("status %d: the error shows the URL: %v", tc.status, err)
		}
	}
	srv.Close()
	err = s.Send(context.Background(), sampleAlert(), store.DeliveryNew)
	if err == nil || errors.Is(err, ErrRejected) || strings.Contains(err.Error(), "XXSECRETXX") {
		t.Errorf("receiver down: err = %v", err)
	}
}

func TestWebhookTLS(t *testing.T) {
	ca, err := testenv.NewCA("alerts test CA")
	if err != nil {
		t.Fatal(err)
	}
	recv := &httpReceiver{}
	srv := httptest.NewUnstartedServer(recv)
	if srv.TLS, err = ca.ServerTLS(); err != nil {
		t.Fatal(err)
	}
	srv.StartTLS()
	defer srv.Close()
	trusting, err := NewWebhook("siem", srv.URL, WebhookOptions{CA: ca.CertPEM})
	if err != nil {
		t.Fatal(err)
	}
	if err := trusting.Send(context.Background(), sampleAlert(), store.DeliveryNew); err != nil {
		t.Errorf("with the CA: %v", err)
	}
	system, _ := NewWebhook("siem", srv.URL, WebhookOptions{})
	if err := system.Send(context.Background(), sampleAlert(), store.DeliveryNew); err == nil {
		t.Error("a server signed by an unknown CA was trusted")
	}
}

// slackMessage is the part of a Slack message the tests read.
type slackMessage struct {
	Text   string `json:"text"`
	Blocks []struct {
		Type string `json:"type"`
		Text *struct {
			Type, Text string
		} `json:"text"`
		Fields []struct {
			Type, Text string
		} `json:"fields"`
		Elements []struct {
			Type, Text string
		} `json:"elements"`
	} `json:"blocks"`
}

// postSlack sends a to a Slack output on loopback and returns what the
// receiver got.
func postSlack(t *testing.T, a store.Alert, kind string) slackMessage {
	t.Helper()
	recv := &httpReceiver{}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	s, err := NewSlack("chat", srv.URL, WebhookOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), a, kind); err != nil {
		t.Fatal(err)
	}
	bodies, _ := recv.received()
	if len(bodies) != 1 {
		t.Fatalf("%d requests, want 1", len(bodies))
	}
	var msg slackMessage
	if err := json.Unmarshal(bodies[0], &msg); err != nil {
		t.Fatal(err)
	}
	return msg
}

func (m slackMessage) blockTypes() []string {
	var types []string
	for _, b := range m.Blocks {
		types = append(types, b.Type)
	}
	return types
}

func TestSlackMessage(t *testing.T) {
	msg := postSlack(t, sampleAlert(), store.DeliveryNew)
	if want := "[HIGH] Secret read by a human: alice get secrets shop/db (2 events, cluster prod)"; msg.Text != want {
		t.Errorf("text = %q, want %q", msg.Text, want)
	}
	if diff := cmp.Diff([]string{"header", "section", "section", "context"}, msg.blockTypes()); diff != "" {
		t.Fatalf("blocks (-want +got):\n%s", diff)
	}
	if msg.Blocks[0].Text.Text != "HIGH: Secret read by a human" || msg.Blocks[1].Text.Text != "alice read &lt;secret&gt; shop/db" {
		t.Errorf("header %q, summary %q", msg.Blocks[0].Text.Text, msg.Blocks[1].Text.Text)
	}
	var fields []string
	for _, f := range msg.Blocks[2].Fields {
		fields = append(fields, f.Text)
	}
	want := []string{"*Severity*\nHIGH", "*Rule*\nsecret-read-by-human", "*Technique*\nT1552.007 Container API",
		"*Actor*\nalice from 10.0.0.1", "*Object*\nget secrets shop/db", "*Count*\n2"}
	if diff := cmp.Diff(want, fields); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	if !strings.Contains(msg.Blocks[3].Elements[0].Text, "cluster prod") {
		t.Errorf("context = %q", msg.Blocks[3].Elements[0].Text)
	}
}

func TestSlackMessageSensor(t *testing.T) {
	// The command line's markup is escaped, its line break and terminal
	// escape are spaces and its bidirectional override is gone.
	const process = `sh -c "curl &lt;!channel&gt; &amp; ]\"  [31m" idexe.sh`
	host := sampleSensorAlert()
	host.Resource, host.Namespace, host.Name, host.ContainerID, host.ContainerName, host.Image = "", "", "", "", "", ""
	host.Process = "/usr/bin/" + strings.Repeat("x", 3000)
	for _, tc := range []struct {
		name    string
		alert   store.Alert
		kind    string
		text    string
		header  string
		fields  []string
		process string
	}{
		{
			name: "in a pod", alert: sampleSensorAlert(), kind: store.DeliveryUpdate,
			text: "[CRITICAL] Binary not in the image executed: " + process +
				" (uid 0) at pod shop/web-1, container app, image nginx:1.27, node node-a (1 events, cluster prod)",
			header: "Updated: CRITICAL: Binary not in the image executed",
			fields: []string{"*Severity*\nCRITICAL", "*Rule*\ndrift-exec", "*Technique*\nT1105 Ingress Tool Transfer",
				"*Node*\nnode-a", "*Pod*\nshop/web-1", "*Container*\napp (3f4a9c0d1e2f)", "*Image*\nnginx:1.27", "*User*\nuid 0", "*Count*\n1"},
			process: "*Process*\n" + process,
		},
		{
			name: "on the host", alert: host, kind: store.DeliveryNew,
			text: "[CRITICAL] Binary not in the image executed: /usr/bin/" + strings.Repeat("x", maxProcessText-len("/usr/bin/")) +
				" … (uid 0) at node node-a (no container) (1 events, cluster prod)",
			header: "CRITICAL: Binary not in the image executed",
			fields: []string{"*Severity*\nCRITICAL", "*Rule*\ndrift-exec", "*Technique*\nT1105 Ingress Tool Transfer",
				"*Node*\nnode-a (no container)", "*Pod*\n-", "*Container*\n-", "*Image*\n-", "*User*\nuid 0", "*Count*\n1"},
			process: "*Process*\n/usr/bin/" + strings.Repeat("x", 2500-len("/usr/bin/")) + " …",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := postSlack(t, tc.alert, tc.kind)
			if msg.Text != tc.text {
				t.Errorf("text = %q, want %q", msg.Text, tc.text)
			}
			if diff := cmp.Diff([]string{"header", "section", "section", "section", "context"}, msg.blockTypes()); diff != "" {
				t.Fatalf("blocks (-want +got):\n%s", diff)
			}
			if got := msg.Blocks[0].Text.Text; got != tc.header {
				t.Errorf("header = %q, want %q", got, tc.header)
			}
			if got := msg.Blocks[1].Text.Text; got != "/tmp/x ran in shop/web-1" {
				t.Errorf("summary = %q", got)
			}
			var fields []string
			for _, f := range msg.Blocks[2].Fields {
				fields = append(fields, f.Text)
			}
			if diff := cmp.Diff(tc.fields, fields); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
			if got := msg.Blocks[3].Text.Text; got != tc.process {
				t.Errorf("process = %q, want %q", got, tc.process)
			}
			if got := msg.Blocks[4].Elements[0].Text; !strings.Contains(got, "cluster prod") || !strings.Contains(got, "alert 9") {
				t.Errorf("context = %q", got)
			}
		})
	}
}

// syslogMessage is a parsed RFC 5424 message.
type syslogMessage struct {
	Pri                         int
	Timestamp, Host, App, MsgID string
	SDID                        string
	Params                      map[string]string
	Msg                         string
}

var syslogHeader = regexp.MustCompile(`^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) `)

// parseSyslog parses one RFC 5424 message with one structured data
// element, unescaping its parameter values.
func parseSyslog(t *testing.T, raw string) syslogMessage {
	t.Helper()
	m := syslogHeader.FindStringSubmatch(raw)
	if m == nil {
		t.Fatalf("not an RFC 5424 message: %q", raw)
	}
	pri, _ := strconv.Atoi(m[1])
	out := syslogMessage{Pri: pri, Timestamp: m[2], Host: m[3], App: m[4], MsgID: m[6], Params: map[string]string{}}
	if _, err := time.Parse(time.RFC3339Nano, out.Timestamp); err != nil {
		t.Errorf("timestamp %q: %v", out.Timestamp, err)
	}
	rest := raw[len(m[0]):]
	if !strings.HasPrefix(rest, "[") {
		t.Fatalf("no structured data in %q", raw)
	}
	i := 1
	for i < len(rest) && rest[i] != ' ' && rest[i] != ']' {
		i++
	}
	out.SDID = rest[1:i]
	for rest[i] == ' ' {
		j := strings.Index(rest[i:], `="`)
		name := rest[i+1 : i+j]
		i += j + 2
		var v strings.Builder
		for rest[i] != '"' {
			if rest[i] == '\\' {
				i++
			}
			v.WriteByte(rest[i])
			i++
		}
		out.Params[name] = v.String()
		i++
	}
	if rest[i] != ']' {
		t.Fatalf("structured data not closed in %q", raw)
	}
	out.Msg = strings.TrimPrefix(rest[i+1:], " \ufeff")
	return out
}

// syslogReceiver is a syslog server on loopback collecting messages.
type syslogReceiver struct {
	t     *testing.T
	mu    sync.Mutex
	msgs  []string
	conns []net.Conn
	got   chan struct{}
}

// dropConnections closes the connections the receiver accepted, as a
// restarting receiver does.
func (r *syslogReceiver) dropConnections() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.Close()
	}
	r.conns = nil
}

func newSyslogReceiver(t *testing.T) *syslogReceiver {
	return &syslogReceiver{t: t, got: make(chan struct{}, 1000)}
}

func (r *syslogReceiver) add(m string) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
	r.got <- struct{}{}
}

func (r *syslogReceiver) messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}

func (r *syslogReceiver) wait(n int) []string {
	r.t.Helper()
	deadline := time.After(10 * time.Second)
	for len(r.messages()) < n {
		select {
		case <-r.got:
		case <-deadline:
			r.t.Fatalf("%d syslog messages after 10s, want %d", len(r.messages()), n)
		}
	}
	return r.messages()
}

// serveStream reads octet-counted frames (RFC 6587) from every
// connection of l until it is closed.
func (r *syslogReceiver) serveStream(l net.Listener) {
	for {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		r.conns = append(r.conns, conn)
		r.mu.Unlock()
		go func() {
			defer conn.Close()
			br := bufio.NewReader(conn)
			for {
				n, err := br.ReadString(' ')
				if err != nil {
					return
				}
				size, err := strconv.Atoi(strings.TrimSuffix(n, " "))
				if err != nil {
					r.t.Errorf("bad frame length %q", n)
					return
				}
				buf := make([]byte, size)
				if _, err := io.ReadFull(br, buf); err != nil {
					r.t.Errorf("short frame: %v", err)
					return
				}
				r.add(string(buf))
			}
		}()
	}
}

func TestSyslogNetworks(t *testing.T) {
	ca, err := testenv.NewCA("syslog test CA")
	if err != nil {
		t.Fatal(err)
	}
	serverTLS, err := ca.ServerTLS()
	if err != nil {
		t.Fatal(err)
	}
	for _, network := range []string{SyslogUDP, SyslogTCP, SyslogTLS} {
		t.Run(network, func(t *testing.T) {
			recv := newSyslogReceiver(t)
			var addr string
			opts := SyslogOptions{Hostname: "bulwark-0", Facility: 10}
			switch network {
			case SyslogUDP:
				pc, err := net.ListenPacket("udp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer pc.Close()
				addr = pc.LocalAddr().String()
				go func() {
					buf := make([]byte, 65536)
					for {
						n, _, err := pc.ReadFrom(buf)
						if err != nil {
							return
						}
						recv.add(string(buf[:n]))
					}
				}()
			case SyslogTCP, SyslogTLS:
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				if network == SyslogTLS {
					l = tls.NewListener(l, serverTLS)
					opts.CA = ca.CertPEM
				}
				defer l.Close()
				addr = l.Addr().String()
				go recv.serveStream(l)
			}
			s, err := NewSyslog("siem", network, addr, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			a := sampleAlert()
			a.Summary = "quote \" backslash \\ bracket ] newline\nend"
			for _, kind := range []string{store.DeliveryNew, store.DeliveryUpdate} {
				if err := s.Send(context.Background(), a, kind); err != nil {
					t.Fatal(err)
				}
			}
			a.Actor = `eve"]`
			if err := s.Send(context.Background(), a, store.DeliveryUpdate); err != nil {
				t.Fatal(err)
			}
			if err := s.Send(context.Background(), sampleSensorAlert(), store.DeliveryNew); err != nil {
				t.Fatal(err)
			}
			msgs := recv.wait(4)
			m := parseSyslog(t, msgs[0])
			if m.Pri != 10*8+3 || m.Host != "bulwark-0" || m.App != "bulwark" || m.MsgID != "alert" || m.SDID != "alert@32473" {
				t.Errorf("header = %+v", m)
			}
			want := map[string]string{"id": "7", "kind": "new", "source": "audit", "cluster": "prod", "rule": "secret-read-by-human", "severity": "high",
				"technique": "T1552.007", "techniqueName": "Container API", "actor": "alice", "groups": "dev,system:authenticated",
				"sourceIP": "10.0.0.1", "userAgent": "kubectl/v1.34", "verb": "get", "resource": "secrets", "namespace": "shop",
				"name": "db", "count": "2", "firstAt": "2026-11-01T12:00:00Z", "lastAt": "2026-11-01T12:01:00Z"}
			if diff := cmp.Diff(want, m.Params); diff != "" {
				t.Errorf("structured data (-want +got):\n%s", diff)
			}
			if want := "Secret read by a human: alice get secrets shop/db — quote \" backslash \\ bracket ] newline end"; m.Msg != want {
				t.Errorf("message = %q, want %q", m.Msg, want)
			}
			if k := parseSyslog(t, msgs[1]).Params["kind"]; k != "update" {
				t.Errorf("second message kind = %q", k)
			}
			if actor := parseSyslog(t, msgs[2]).Params["actor"]; actor != `eve"]` {
				t.Errorf("escaped actor read back as %q", actor)
			}
			// A sensor alert says where it happened and the process; its
			// line break, terminal escape and bidirectional override do
			// not reach the receiver.
			sensor := parseSyslog(t, msgs[3])
			if sensor.Pri != 10*8+2 {
				t.Errorf("sensor alert PRI = %d", sensor.Pri)
			}
			process := `sh -c "curl <!channel> & ]\"  [31m" idexe.sh`
			want = map[string]string{"id": "9", "kind": "new", "source": "sensor", "cluster": "prod", "rule": "drift-exec",
				"severity": "critical", "technique": "T1105", "techniqueName": "Ingress Tool Transfer", "actor": "uid 0",
				"resource": "pods", "namespace": "shop", "name": "web-1", "node": "node-a", "containerId": "3f4a9c0d1e2f3a4b5c6d7e8f",
				"containerName": "app", "image": "nginx:1.27", "process": process, "count": "1",
				"firstAt": "2026-11-02T08:00:00Z", "lastAt": "2026-11-02T08:00:00Z"}
			if diff := cmp.Diff(want, sensor.Params); diff != "" {
				t.Errorf("sensor structured data (-want +got):\n%s", diff)
			}
			if want := "Binary not in the image executed: " + process +
				" (uid 0) at pod shop/web-1, container app, image nginx:1.27, node node-a — /tmp/x ran in shop/web-1"; sensor.Msg != want {
				t.Errorf("sensor message = %q, want %q", sensor.Msg, want)
			}
		})
	}
}

// TestSyslogHostileValues fills every field of an alert with the most
// escaping a value can need: the message must still parse, keep its
// structured data whole within a datagram and stay on one line.
func TestSyslogHostileValues(t *testing.T) {
	s, err := NewSyslog("siem", SyslogUDP, "127.0.0.1:514", SyslogOptions{Hostname: strings.Repeat("h", 300), AppName: strings.Repeat("a", 60)})
	if err != nil {
		t.Fatal(err)
	}
	hostile := strings.Repeat(`"]\`, 5000) + "\n\xff"
	a := sampleSensorAlert()
	for _, f := range []*string{&a.Cluster, &a.RuleID, &a.Title, &a.Severity, &a.TechniqueID, &a.TechniqueName, &a.Summary, &a.Actor,
		&a.SourceIP, &a.UserAgent, &a.Verb, &a.Resource, &a.Subresource, &a.Namespace, &a.Name, &a.Node, &a.ContainerID,
		&a.ContainerName, &a.Image, &a.Process} {
		*f = hostile
	}
	a.Groups = []string{hostile, hostile}
	raw := s.format(a, store.DeliveryNew, time.Now())
	if len(raw) > maxUDPMessage {
		t.Errorf("datagram of %d bytes, want at most %d", len(raw), maxUDPMessage)
	}
	if !utf8.Valid(raw) || bytes.ContainsAny(raw, "\r\n") {
		t.Errorf("message is not one line of UTF-8: %q", raw)
	}
	m := parseSyslog(t, string(raw))
	for _, name := range []string{"cluster", "rule", "actor", "groups", "userAgent", "namespace", "name", "node", "containerId",
		"containerName", "image", "process", "count", "lastAt"} {
		v, ok := m.Params[name]
		if !ok {
			t.Errorf("parameter %s missing", name)
			continue
		}
		// Escaped, each value is at most maxSDValue bytes: half of them
		// backslashes.
		if name != "count" && name != "lastAt" && len(v) < maxSDValue/2-2 {
			t.Errorf("parameter %s = %q, cut too short", name, v)
		}
	}
	if !strings.HasPrefix(m.Msg, `"]\"]\`) {
		t.Errorf("message text = %.40q", m.Msg)
	}
}

func TestSyslogReconnects(t *testing.T) {
	recv := newSyslogReceiver(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	go recv.serveStream(l)
	s, err := NewSyslog("siem", SyslogTCP, addr, SyslogOptions{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Send(context.Background(), sampleAlert(), store.DeliveryNew); err != nil {
		t.Fatal(err)
	}
	recv.wait(1)
	// The receiver restarts: its connections close, and for a while
	// nothing listens.
	l.Close()
	recv.dropConnections()
	closeAccepted(t, addr)
	if err := s.Send(context.Background(), sampleAlert(), store.DeliveryUpdate); err == nil {
		t.Error("a send while the receiver is down succeeded")
	}
	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	go recv.serveStream(l2)
	if err := s.Send(context.Background(), sampleAlert(), store.DeliveryUpdate); err != nil {
		t.Fatalf("send after the receiver came back: %v", err)
	}
	msgs := recv.wait(2)
	if k := parseSyslog(t, msgs[1]).Params["kind"]; k != "update" {
		t.Errorf("kind after reconnecting = %q", k)
	}
}

// closeAccepted waits until nothing accepts on addr.
func closeAccepted(t *testing.T, addr string) {
	t.Helper()
	for i := 0; i < 100; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s still accepts", addr)
}

// FuzzSensorAlertOutputs feeds hostile container-supplied values to every
// output format: the webhook carries the command line intact (bounded),
// Slack shows no markup of it, and syslog stays one parsable line within
// a datagram.
func FuzzSensorAlertOutputs(f *testing.F) {
	f.Add(hostileProcess, "nginx:1.27", "app", "web-1")
	f.Add(strings.Repeat(`\]"`, 200), "\xff\xfe", "\u202e", "")
	f.Add("", "", "", "")
	s, err := NewSyslog("siem", SyslogUDP, "127.0.0.1:514", SyslogOptions{Hostname: "bulwark-0"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, process, image, container, pod string) {
		a := sampleSensorAlert()
		a.Process, a.Image, a.ContainerName, a.Name = process, image, container, pod
		a.Summary = process

		body, err := json.Marshal(NewPayload(a, store.DeliveryNew))
		if err != nil {
			t.Fatal(err)
		}
		var p Payload
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatal(err)
		}
		if p.Alert.Runtime == nil || p.Alert.Runtime.Process != string([]rune(cut(process, maxProcess))) {
			t.Errorf("webhook runtime = %+v", p.Alert.Runtime)
		}

		body, err = json.Marshal(SlackMessage(a, store.DeliveryNew))
		if err != nil {
			t.Fatal(err)
		}
		var msg slackMessage
		if err := json.Unmarshal(body, &msg); err != nil {
			t.Fatal(err)
		}
		texts := []string{msg.Text}
		for _, b := range msg.Blocks {
			if b.Text != nil && b.Type != "header" {
				texts = append(texts, b.Text.Text)
			}
			for _, fl := range b.Fields {
				texts = append(texts, fl.Text)
			}
		}
		for _, text := range texts {
			if strings.ContainsAny(text, "<>") || len(text) > 3000 {
				t.Errorf("Slack text %q holds markup or is too long", text)
			}
		}

		raw := s.format(a, store.DeliveryNew, time.Now())
		if len(raw) > maxUDPMessage || !utf8.Valid(raw) || bytes.ContainsAny(raw, "\r\n") {
			t.Errorf("syslog message %q is not one line of UTF-8 within a datagram", raw)
		}
		m := parseSyslog(t, string(raw))
		if m.Params["lastAt"] != "2026-11-02T08:00:00Z" {
			t.Errorf("structured data cut short: %v", m.Params)
		}
	})
}

func BenchmarkFormats(b *testing.B) {
	s, err := NewSyslog("siem", SyslogTCP, "127.0.0.1:514", SyslogOptions{Hostname: "bulwark-0"})
	if err != nil {
		b.Fatal(err)
	}
	for _, a := range []store.Alert{sampleAlert(), sampleSensorAlert()} {
		b.Run(a.Source+"/webhook", func(b *testing.B) {
			for b.Loop() {
				if _, err := json.Marshal(NewPayload(a, store.DeliveryNew)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(a.Source+"/slack", func(b *testing.B) {
			for b.Loop() {
				if _, err := json.Marshal(SlackMessage(a, store.DeliveryNew)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(a.Source+"/syslog", func(b *testing.B) {
			for b.Loop() {
				s.format(a, store.DeliveryNew, time.Time{})
			}
		})
	}
}
