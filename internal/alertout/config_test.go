package alertout

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/testenv"
)

const goodConfig = `
outputs:
  - name: siem
    type: webhook
    url: https://siem.example/hooks/bulwark
    tokenEnv: SIEM_TOKEN
    headers: {X-Tenant: prod}
    timeout: 5s
  - name: chat
    type: slack
    urlEnv: SLACK_WEBHOOK_URL
  - name: syslog
    type: syslog
    network: tcp+tls
    address: siem.example:6514
    facility: authpriv
    caFile: CAFILE
`

func TestParseAndBuild(t *testing.T) {
	ca, err := testenv.NewCA("config test CA")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cfgs, err := ParseConfig([]byte(strings.Replace(goodConfig, "CAFILE", caFile, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfgs) != 3 || cfgs[0].TokenEnv != "SIEM_TOKEN" || cfgs[2].Facility != "authpriv" {
		t.Fatalf("parsed = %+v", cfgs)
	}
	env := map[string]string{"SIEM_TOKEN": "tok-123", "SLACK_WEBHOOK_URL": "https://hooks.slack.example/services/T/B/secret"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	outs, err := Build(cfgs, lookup)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range outs {
		names = append(names, o.Name())
	}
	if diff := cmp.Diff([]string{"siem", "chat", "syslog"}, names); diff != "" {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}
	if w := outs[0].(*Webhook); w.p.opts.Token != "tok-123" || w.p.timeout.String() != "5s" {
		t.Errorf("webhook options = %+v", w.p.opts)
	}
	if s := outs[2].(*Syslog); s.opts.Facility != 10 || s.tls.RootCAs == nil {
		t.Errorf("syslog options = %+v", s.opts)
	}

	delete(env, "SIEM_TOKEN")
	if _, err := Build(cfgs, lookup); err == nil || !strings.Contains(err.Error(), "SIEM_TOKEN") {
		t.Errorf("unset token variable: err = %v", err)
	}
}

func TestParseConfigRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown key":       "outputs:\n  - {name: a, type: webhook, url: 'http://x', color: red}\n",
		"token in the file": "outputs:\n  - {name: a, type: webhook, url: 'http://x', token: s3cret}\n",
		"unknown type":      "outputs:\n  - {name: a, type: email, url: 'http://x'}\n",
		"no url":            "outputs:\n  - {name: a, type: webhook}\n",
		"url and urlEnv":    "outputs:\n  - {name: a, type: slack, url: 'http://x', urlEnv: X}\n",
		"slack token":       "outputs:\n  - {name: a, type: slack, urlEnv: X, tokenEnv: Y}\n",
		"duplicate names":   "outputs:\n  - {name: a, type: webhook, url: 'http://x'}\n  - {name: a, type: slack, url: 'http://y'}\n",
		"bad name":          "outputs:\n  - {name: 'A B', type: webhook, url: 'http://x'}\n",
		"syslog network":    "outputs:\n  - {name: a, type: syslog, network: sctp, address: 'h:514'}\n",
		"syslog url":        "outputs:\n  - {name: a, type: syslog, network: udp, address: 'h:514', url: 'http://x'}\n",
		"syslog facility":   "outputs:\n  - {name: a, type: syslog, network: udp, address: 'h:514', facility: kern}\n",
		"ca for plain tcp":  "outputs:\n  - {name: a, type: syslog, network: tcp, address: 'h:514', caFile: /x}\n",
		"webhook network":   "outputs:\n  - {name: a, type: webhook, url: 'http://x', network: udp}\n",
		"bad timeout":       "outputs:\n  - {name: a, type: webhook, url: 'http://x', timeout: soon}\n",
		"two documents":     "outputs: []\n---\noutputs: []\n",
		"not a list":        "outputs: {name: a}\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseConfig([]byte(doc))
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error shows the token: %v", err)
			}
		})
	}
	if cfgs, err := ParseConfig(nil); err != nil || len(cfgs) != 0 {
		t.Errorf("empty file = %v, %v", cfgs, err)
	}
}

func TestBuildRejectsBadURL(t *testing.T) {
	_, err := Build([]OutputConfig{{Name: "a", Type: TypeSlack, URLEnv: "U"}}, func(string) (string, bool) { return "ftp://secret-host/x", true })
	if err == nil || strings.Contains(err.Error(), "secret-host") {
		t.Errorf("err = %v", err)
	}
}
