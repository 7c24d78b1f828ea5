package alertout

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"time"

	"go.yaml.in/yaml/v3"
)

// Output types of the configuration file.
const (
	TypeWebhook = "webhook"
	TypeSlack   = "slack"
	TypeSyslog  = "syslog"
)

// OutputConfig is one output of the configuration file. Secrets are not
// written in it: TokenEnv and URLEnv name environment variables holding
// them.
type OutputConfig struct {
	Name string `yaml:"name"`
	Type string `yaml:"type"`
	// URL (webhook, slack), or URLEnv naming the variable holding it:
	// a Slack webhook URL is itself the secret.
	URL    string `yaml:"url"`
	URLEnv string `yaml:"urlEnv"`
	// TokenEnv names the variable holding a bearer token (webhook).
	TokenEnv string `yaml:"tokenEnv"`
	// Headers are sent with every request (webhook, slack); not for
	// secrets.
	Headers map[string]string `yaml:"headers"`
	// Network (udp, tcp, tcp+tls) and Address (host:port) of a syslog
	// receiver, with Facility (a name such as local0 or a number),
	// Hostname and AppName for its header.
	Network  string `yaml:"network"`
	Address  string `yaml:"address"`
	Facility string `yaml:"facility"`
	Hostname string `yaml:"hostname"`
	AppName  string `yaml:"appName"`
	// CAFile is a PEM file of certificates to trust (https, tcp+tls).
	CAFile string `yaml:"caFile"`
	// Timeout bounds one send ("10s").
	Timeout string `yaml:"timeout"`
}

type configFile struct {
	Outputs []OutputConfig `yaml:"outputs"`
}

// ErrInvalidConfig is wrapped by every configuration error.
var ErrInvalidConfig = errors.New("invalid alert output configuration")

var outputName = regexp.MustCompile(`^[a-z0-9]([a-z0-9_.-]{0,62})$`)

var facilities = map[string]int{"user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
	"uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "security": 13, "console": 14, "solaris-cron": 15,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23}

// ParseConfig reads the outputs file: a document with a list under
// "outputs". Unknown keys, a second document, duplicate names and fields
// that do not belong to an output's type are errors.
func ParseConfig(data []byte) ([]OutputConfig, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f configFile
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: only one YAML document is allowed", ErrInvalidConfig)
	}
	seen := map[string]bool{}
	var errs []error
	for i, c := range f.Outputs {
		if err := c.validate(); err != nil {
			errs = append(errs, fmt.Errorf("%w: output %d (%q): %w", ErrInvalidConfig, i+1, c.Name, err))
			continue
		}
		if seen[c.Name] {
			errs = append(errs, fmt.Errorf("%w: two outputs are named %q", ErrInvalidConfig, c.Name))
		}
		seen[c.Name] = true
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return f.Outputs, nil
}

func (c OutputConfig) validate() error {
	if !outputName.MatchString(c.Name) {
		return errors.New("name must be 1–63 lower-case letters, digits, '-', '_' or '.'")
	}
	if c.Timeout != "" {
		if d, err := time.ParseDuration(c.Timeout); err != nil || d <= 0 {
			return fmt.Errorf("timeout %q is not a positive duration", c.Timeout)
		}
	}
	only := func(fields map[string]string) error {
		for field, v := range fields {
			if v != "" {
				return fmt.Errorf("%s does not apply to a %s output", field, c.Type)
			}
		}
		return nil
	}
	switch c.Type {
	case TypeWebhook, TypeSlack:
		if (c.URL == "") == (c.URLEnv == "") {
			return errors.New("exactly one of url and urlEnv is required")
		}
		if c.Type == TypeSlack && c.TokenEnv != "" {
			return errors.New("tokenEnv does not apply to a slack output (its URL is the secret: use urlEnv)")
		}
		return only(map[string]string{"network": c.Network, "address": c.Address, "facility": c.Facility,
			"hostname": c.Hostname, "appName": c.AppName})
	case TypeSyslog:
		if c.Address == "" {
			return errors.New("address is required")
		}
		switch c.Network {
		case SyslogUDP, SyslogTCP, SyslogTLS:
		default:
			return fmt.Errorf("network %q is not %s, %s or %s", c.Network, SyslogUDP, SyslogTCP, SyslogTLS)
		}
		if c.CAFile != "" && c.Network != SyslogTLS {
			return fmt.Errorf("caFile applies to network %s only", SyslogTLS)
		}
		if _, err := facility(c.Facility); err != nil {
			return err
		}
		if len(c.Headers) > 0 {
			return errors.New("headers do not apply to a syslog output")
		}
		return only(map[string]string{"url": c.URL, "urlEnv": c.URLEnv, "tokenEnv": c.TokenEnv})
	}
	return fmt.Errorf("type %q is not %s, %s or %s", c.Type, TypeWebhook, TypeSlack, TypeSyslog)
}

func facility(name string) (int, error) {
	if name == "" {
		return 16, nil
	}
	if f, ok := facilities[name]; ok {
		return f, nil
	}
	var n int
	if _, err := fmt.Sscanf(name, "%d", &n); err == nil && fmt.Sprint(n) == name && n >= 1 && n <= 23 {
		return n, nil
	}
	return 0, fmt.Errorf("facility %q is not a syslog facility name or 1–23 (kern is not for programs)", name)
}

// Build makes the outputs, reading the secrets their configurations name
// with lookupEnv (os.LookupEnv in the server) and their CA files. An
// unset variable is an error naming the variable, never a value.
func Build(cfgs []OutputConfig, lookupEnv func(string) (string, bool)) ([]Output, error) {
	var outs []Output
	for _, c := range cfgs {
		if err := c.validate(); err != nil {
			return nil, fmt.Errorf("%w: output %q: %w", ErrInvalidConfig, c.Name, err)
		}
		out, err := build(c, lookupEnv)
		if err != nil {
			return nil, err
		}
		outs = append(outs, out)
	}
	return outs, nil
}

func build(c OutputConfig, lookupEnv func(string) (string, bool)) (Output, error) {
	env := func(name string) (string, error) {
		v, ok := lookupEnv(name)
		if !ok || v == "" {
			return "", fmt.Errorf("output %s: environment variable %s is not set", c.Name, name)
		}
		return v, nil
	}
	var timeout time.Duration
	if c.Timeout != "" {
		timeout, _ = time.ParseDuration(c.Timeout)
	}
	var ca []byte
	if c.CAFile != "" {
		var err error
		if ca, err = os.ReadFile(c.CAFile); err != nil {
			return nil, fmt.Errorf("output %s: reading CA: %w", c.Name, err)
		}
	}
	if c.Type == TypeSyslog {
		f, _ := facility(c.Facility)
		return NewSyslog(c.Name, c.Network, c.Address, SyslogOptions{Facility: f, Hostname: c.Hostname, AppName: c.AppName, CA: ca, Timeout: timeout})
	}
	url := c.URL
	if c.URLEnv != "" {
		var err error
		if url, err = env(c.URLEnv); err != nil {
			return nil, err
		}
	}
	o := WebhookOptions{Headers: c.Headers, CA: ca, Timeout: timeout}
	if c.TokenEnv != "" {
		var err error
		if o.Token, err = env(c.TokenEnv); err != nil {
			return nil, err
		}
	}
	if c.Type == TypeSlack {
		return NewSlack(c.Name, url, o)
	}
	return NewWebhook(c.Name, url, o)
}
