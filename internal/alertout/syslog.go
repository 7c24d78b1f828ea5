package alertout

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// Syslog networks.
const (
	SyslogUDP = "udp"
	SyslogTCP = "tcp"
	SyslogTLS = "tcp+tls"
)

// SyslogOptions configure a syslog output.
type SyslogOptions struct {
	// Facility is the syslog facility number; zero means local0 (16).
	Facility int
	// Hostname and AppName fill the header; empty means this host's
	// name and "bulwark".
	Hostname string
	AppName  string
	// CA is PEM certificates to trust for tcp+tls instead of the
	// system's.
	CA []byte
	// Timeout bounds connecting and one write; zero means 10 seconds.
	Timeout time.Duration
}

// sdID names the structured data element of an alert; 32473 is the
// private enterprise number RFC 5612 reserves for documentation, as
// Bulwark has none of its own.
const sdID = "alert@32473"

// maxUDPMessage keeps a datagram within what RFC 5426 receivers should
// take; maxSDValue bounds each structured data value, escaped, so that
// the header and structured data always fit in it (25 parameters of at
// most 300 bytes and a header of at most about 360) and only the free
// text is cut.
const (
	maxUDPMessage = 8192
	maxSDValue    = 300
)

// Syslog writes each alert as an RFC 5424 message: over UDP one per
// datagram, over TCP and TLS with octet-counting framing (RFC 6587). It
// keeps one connection and dials again when it broke.
type Syslog struct {
	name, network, addr string
	opts                SyslogOptions
	tls                 *tls.Config

	mu   sync.Mutex
	conn net.Conn
}

var _ Output = (*Syslog)(nil)

// NewSyslog returns an output writing to addr (host:port) over network:
// "udp", "tcp" or "tcp+tls". It does not connect until the first Send.
func NewSyslog(name, network, addr string, o SyslogOptions) (*Syslog, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("output %s: address %q: %w", name, addr, err)
	}
	s := &Syslog{name: name, network: network, addr: addr, opts: o}
	switch network {
	case SyslogUDP, SyslogTCP:
		if len(o.CA) > 0 {
			return nil, fmt.Errorf("output %s: a CA is only for %s", name, SyslogTLS)
		}
	case SyslogTLS:
		s.tls = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		if len(o.CA) > 0 {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(o.CA) {
				return nil, fmt.Errorf("output %s: no PEM certificate in its CA", name)
			}
			s.tls.RootCAs = pool
		}
	default:
		return nil, fmt.Errorf("output %s: unknown syslog network %q (want %s, %s or %s)", name, network, SyslogUDP, SyslogTCP, SyslogTLS)
	}
	if o.Facility < 0 || o.Facility > 23 {
		return nil, fmt.Errorf("output %s: syslog facility %d is not 0–23", name, o.Facility)
	}
	if s.opts.Facility == 0 {
		s.opts.Facility = 16
	}
	if s.opts.Hostname == "" {
		s.opts.Hostname, _ = os.Hostname()
	}
	if s.opts.AppName == "" {
		s.opts.AppName = "bulwark"
	}
	if s.opts.Timeout <= 0 {
		s.opts.Timeout = 10 * time.Second
	}
	return s, nil
}

// Name is the output's configured name.
func (s *Syslog) Name() string { return s.name }

// Send writes the alert. Syslog has no acknowledgement: a TCP write
// succeeds once the kernel took the bytes. Send checks that the receiver
// has not closed the connection before writing on it, which catches a
// receiver that went away between alerts, but a receiver dying as the
// bytes are written loses them; UDP loses them silently whenever the
// receiver is down.
func (s *Syslog) Send(ctx context.Context, a store.Alert, kind string) error {
	msg := s.format(a, kind, time.Now())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil && s.network != SyslogUDP && !alive(s.conn) {
		s.conn.Close()
		s.conn = nil
	}
	if s.conn == nil {
		conn, err := s.dial(ctx)
		if err != nil {
			return err
		}
		s.conn = conn
	}
	frame := msg
	if s.network != SyslogUDP {
		frame = append([]byte(strconv.Itoa(len(msg))+" "), msg...)
	}
	deadline := time.Now().Add(s.opts.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	s.conn.SetWriteDeadline(deadline)
	if _, err := s.conn.Write(frame); err != nil {
		s.conn.Close()
		s.conn = nil
		return fmt.Errorf("output %s: writing to %s: %w", s.name, s.addr, err)
	}
	return nil
}

func (s *Syslog) dial(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	var conn net.Conn
	var err error
	if s.tls != nil {
		d := tls.Dialer{Config: s.tls}
		conn, err = d.DialContext(ctx, "tcp", s.addr)
	} else {
		var d net.Dialer
		conn, err = d.DialContext(ctx, s.network, s.addr)
	}
	if err != nil {
		return nil, fmt.Errorf("output %s: connecting to %s: %w", s.name, s.addr, err)
	}
	return conn, nil
}

// alive reports whether a stream connection is still open: a syslog
// receiver never writes, so anything but a timeout on a short read
// means it closed (or reset) the connection.
func alive(conn net.Conn) bool {
	conn.SetReadDeadline(time.Now().Add(2 * time.Millisecond))
	defer conn.SetReadDeadline(time.Time{})
	var b [1]byte
	_, err := conn.Read(b[:])
	var ne net.Error
	return err == nil || (errors.As(err, &ne) && ne.Timeout())
}

// Close closes the connection, if any.
func (s *Syslog) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}

// severityCode maps an alert's severity to a syslog severity.
func severityCode(sev string) int {
	switch strings.ToLower(sev) {
	case "critical":
		return 2
	case "high":
		return 3
	case "medium":
		return 4
	case "low":
		return 5
	}
	return 6
}

// format spells an RFC 5424 message:
// <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] BOM MSG.
// A sensor alert's parameters and text say where it happened and the
// process; an audit alert's the actor and the object.
func (s *Syslog) format(a store.Alert, kind string, now time.Time) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "<%d>1 %s %s %s %d alert [%s", s.opts.Facility*8+severityCode(a.Severity), now.UTC().Format("2006-01-02T15:04:05.000Z"),
		headerField(s.opts.Hostname, 255), headerField(s.opts.AppName, 48), os.Getpid(), sdID)
	for _, p := range []struct{ name, value string }{
		{"id", strconv.FormatInt(a.ID, 10)}, {"kind", kind}, {"source", source(a)}, {"cluster", a.Cluster}, {"rule", a.RuleID},
		{"severity", a.Severity}, {"technique", a.TechniqueID}, {"techniqueName", a.TechniqueName}, {"actor", a.Actor},
		{"groups", strings.Join(a.Groups, ",")}, {"sourceIP", a.SourceIP}, {"userAgent", a.UserAgent}, {"verb", a.Verb},
		{"resource", a.Resource}, {"subresource", a.Subresource}, {"namespace", a.Namespace}, {"name", a.Name},
		{"node", a.Node}, {"containerId", a.ContainerID}, {"containerName", a.ContainerName}, {"image", a.Image},
		{"process", a.Process}, {"count", strconv.Itoa(a.Count)},
		{"firstAt", a.FirstAt.UTC().Format(time.RFC3339Nano)}, {"lastAt", a.LastAt.UTC().Format(time.RFC3339Nano)},
	} {
		if p.value == "" {
			continue
		}
		b.WriteString(" " + p.name + `="`)
		writeSDValue(&b, p.value, maxSDValue)
		b.WriteString(`"`)
	}
	b.WriteString("] \ufeff")
	text := a.Title + ": " + describe(a)
	if a.Summary != "" {
		text += " — " + a.Summary
	}
	b.WriteString(oneLine(text))
	msg := b.String()
	if s.network == SyslogUDP {
		msg = cut(msg, maxUDPMessage)
	}
	return []byte(msg)
}

// headerField makes a header field printable US-ASCII without spaces, or
// "-" (the nil value) when nothing is left.
func headerField(v string, n int) string {
	v = strings.Map(func(r rune) rune {
		if r <= ' ' || r > '~' {
			return -1
		}
		return r
	}, v)
	if v == "" {
		return "-"
	}
	return cut(v, n)
}

// writeSDValue writes v as a PARAM-VALUE of at most n bytes: '"', '\'
// and ']' take a backslash, and the cut falls between escapes, never
// leaving a lone backslash to swallow the closing quote. Control
// characters become spaces, so one message stays one line for receivers
// that split on them.
func writeSDValue(b *strings.Builder, v string, n int) {
	written := 0
	for _, r := range v {
		r = safeRune(r)
		if r < 0 {
			continue
		}
		escape := r == '"' || r == '\\' || r == ']'
		size := utf8.RuneLen(r)
		if escape {
			size++
		}
		if written+size > n {
			return
		}
		if escape {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
		written += size
	}
}
