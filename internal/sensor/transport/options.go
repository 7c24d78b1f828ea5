package transport

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
	"github.com/bulwarkhq/bulwark/internal/version"
)

// Defaults of Options.
const (
	DefaultBatchEvents      = 1000
	DefaultBatchInterval    = time.Second
	DefaultSpoolBytes       = 256 << 20
	DefaultSpoolFiles       = 50_000
	DefaultTimeout          = 30 * time.Second
	DefaultMaxBackoff       = 30 * time.Second
	DefaultReenrollInterval = 5 * time.Minute
)

// API paths, relative to Options.Server.
const (
	EnrollPath = "/api/v1/sensors/enroll"
	IngestPath = "/api/v1/ingest/sensor"
)

// Options configure a Client. Server, Node and StateDir are required, and
// so is an enrolment token (Token or TokenFile) unless StateDir already
// holds a credential for this server and node.
type Options struct {
	// Server is the Bulwark server's base URL. It must be https://; plain
	// http:// is accepted only for a loopback host (127.0.0.0/8, ::1,
	// localhost), which tests and a server on the same host use, because
	// the token and the credential would otherwise cross the network in
	// the clear.
	Server string
	// CAFile is a PEM bundle of the CAs to verify the server's certificate
	// with; empty means the system's roots.
	CAFile string
	// InsecureSkipVerify turns off certificate verification. It is never
	// on by default, and the client logs a warning when it is.
	InsecureSkipVerify bool

	// Node is the node the sensor runs on; Cluster the cluster's name,
	// sent when enrolling.
	Node    string
	Cluster string
	// Sensor is the sensor's version, sent in every batch; empty means
	// this binary's version.
	Sensor string

	// StateDir holds the sensor's credential (credential.json, mode 0600)
	// and the spool (spool/). It is created, mode 0700, if missing, and
	// locked: two sensors cannot share one.
	StateDir string
	// Token is the enrolment token itself (for example from an
	// environment variable); TokenFile a file holding it, read each time
	// the sensor enrols so that a rotated secret is picked up. TokenFile
	// wins when both are set. Neither is ever logged.
	Token     string
	TokenFile string

	// BatchEvents cuts a batch at this many events (default 1,000, at
	// most wire.MaxEvents); BatchInterval cuts one this long after its
	// first event (default 1 s).
	BatchEvents   int
	BatchInterval time.Duration
	// SpoolBytes and SpoolFiles bound the spool (defaults 256 MiB and
	// 50,000 files). When either is reached new events are dropped.
	SpoolBytes int64
	SpoolFiles int

	// Timeout bounds one HTTP request (default 30 s).
	Timeout time.Duration
	// MaxBackoff caps the wait between retries (default 30 s).
	MaxBackoff time.Duration
	// ReenrollInterval is how long the client waits, after the server has
	// refused both its credential and its token, before it tries again
	// (default 5 minutes).
	ReenrollInterval time.Duration

	// Registerer, if set, receives the client's Prometheus metrics.
	Registerer prometheus.Registerer
	// Logger receives the client's logs; nil discards them.
	Logger *slog.Logger
}

// LogValue keeps the enrolment token out of logs, should Options be logged.
func (o Options) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("server", o.Server),
		slog.String("node", o.Node),
		slog.String("cluster", o.Cluster),
		slog.String("stateDir", o.StateDir),
		slog.Bool("token", o.Token != ""),
		slog.String("tokenFile", o.TokenFile),
	)
}

// withDefaults fills the zero fields and checks the rest.
func (o Options) withDefaults() (Options, error) {
	if o.Sensor == "" {
		o.Sensor = version.Version
	}
	if o.BatchEvents == 0 {
		o.BatchEvents = DefaultBatchEvents
	}
	if o.BatchInterval == 0 {
		o.BatchInterval = DefaultBatchInterval
	}
	if o.SpoolBytes == 0 {
		o.SpoolBytes = DefaultSpoolBytes
	}
	if o.SpoolFiles == 0 {
		o.SpoolFiles = DefaultSpoolFiles
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.ReenrollInterval == 0 {
		o.ReenrollInterval = DefaultReenrollInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case o.BatchEvents < 1 || o.BatchEvents > wire.MaxEvents:
		return o, fmt.Errorf("batch size %d is not between 1 and %d events", o.BatchEvents, wire.MaxEvents)
	case o.BatchInterval < 0, o.SpoolBytes < 0, o.SpoolFiles < 0, o.Timeout < 0, o.MaxBackoff < 0, o.ReenrollInterval < 0:
		return o, errors.New("negative batch interval, spool limit, timeout or backoff")
	case o.StateDir == "":
		return o, errors.New("no state directory")
	}
	// The server applies wire's rules to the node and version of every
	// batch; checking them here turns a batch the server would refuse
	// forever into a start-up error.
	probe := wire.Batch{ID: strings.Repeat("0", 32), Node: o.Node, Sensor: o.Sensor}
	if err := probe.Validate(); err != nil {
		return o, fmt.Errorf("checking node name and sensor version: %w", err)
	}
	return o, nil
}

// serverBase checks the server URL and returns it without a trailing
// slash.
func serverBase(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("parsing server URL: %w", err)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("server URL %q must be scheme://host[:port][/path], without user, query or fragment", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !loopback(u.Hostname()) {
			return "", fmt.Errorf("server URL %q: plain http is allowed only for a loopback host; use https", raw)
		}
	default:
		return "", fmt.Errorf("server URL %q: scheme must be https", raw)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// newHTTPClient builds the one HTTP client a Client uses: TLS 1.2 or
// later, the configured CAs, bounded dial, handshake and request times,
// and no redirects (a redirect could carry the credential elsewhere, and
// the protocol has none).
func newHTTPClient(o *Options) (*http.Client, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no PEM certificates in CA file %s", o.CAFile)
		}
		tlsConf.RootCAs = pool
	}
	if o.InsecureSkipVerify {
		tlsConf.InsecureSkipVerify = true //nolint:gosec // explicitly requested by the operator; logged as a warning
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConf
	tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = 10 * time.Second
	tr.ResponseHeaderTimeout = o.Timeout
	tr.MaxIdleConnsPerHost = 2
	return &http.Client{
		Transport: tr,
		Timeout:   o.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}, nil
}
