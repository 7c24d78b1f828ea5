package alertout

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// WebhookOptions configure an HTTP output.
type WebhookOptions struct {
	// Token, when set, is sent as "Authorization: Bearer <token>".
	Token string
	// Headers are sent with every request (a tenant id, or an
	// authorization scheme other than bearer).
	Headers map[string]string
	// CA is PEM certificates to trust instead of the system's.
	CA []byte
	// Timeout bounds one request; zero means 10 seconds.
	Timeout time.Duration
}

// poster posts JSON for the HTTP outputs. Its errors never contain the
// URL, which for Slack is the secret.
type poster struct {
	name    string
	url     string
	opts    WebhookOptions
	client  *http.Client
	timeout time.Duration
}

func newPoster(name, rawURL string, o WebhookOptions) (*poster, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("output %s: the URL must be an http:// or https:// URL", name)
	}
	for k, v := range o.Headers {
		if k == "" || strings.ContainsAny(k, " :\r\n") || strings.ContainsAny(v, "\r\n") {
			return nil, fmt.Errorf("output %s: header %q is not a valid HTTP header", name, k)
		}
	}
	if strings.ContainsAny(o.Token, "\r\n") {
		return nil, fmt.Errorf("output %s: the token holds a line break", name)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if len(o.CA) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(o.CA) {
			return nil, fmt.Errorf("output %s: no PEM certificate in its CA", name)
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	// A redirect would carry the token elsewhere; a webhook answers
	// where it is told to.
	client := &http.Client{Transport: transport, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &poster{name: name, url: rawURL, opts: o, client: client, timeout: timeout}, nil
}

// post sends body. A 2xx is success; a 4xx other than 408 and 429 is
// ErrRejected; anything else, including no answer, is worth a retry.
func (p *poster) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("output %s: building request: %w", p.name, stripURL(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "bulwark-alerts")
	for k, v := range p.opts.Headers {
		req.Header.Set(k, v)
	}
	if p.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+p.opts.Token)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("output %s: posting: %w", p.name, stripURL(err))
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	msg := fmt.Sprintf("output %s: answered %s", p.name, resp.Status)
	if s := printable(snippet); s != "" {
		msg += ": " + s
	}
	if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
		return fmt.Errorf("%w: %s", ErrRejected, msg)
	}
	return errors.New(msg)
}

// stripURL drops the URL net/http puts in its errors.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// printable keeps a response snippet fit for a log line.
func printable(b []byte) string {
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// Webhook posts each alert as a Payload.
type Webhook struct{ p *poster }

var _ Output = (*Webhook)(nil)

// NewWebhook returns an output posting to url.
func NewWebhook(name, url string, o WebhookOptions) (*Webhook, error) {
	p, err := newPoster(name, url, o)
	if err != nil {
		return nil, err
	}
	return &Webhook{p: p}, nil
}

// Name is the output's configured name.
func (w *Webhook) Name() string { return w.p.name }

// Send posts the alert.
func (w *Webhook) Send(ctx context.Context, a store.Alert, kind string) error {
	body, err := json.Marshal(NewPayload(a, kind))
	if err != nil {
		return fmt.Errorf("output %s: encoding alert %d: %w", w.p.name, a.ID, err)
	}
	return w.p.post(ctx, body)
}

// Slack posts each alert as a Slack message (Block Kit, with a text
// fallback) to an incoming webhook, or to anything that takes its format
// (Mattermost, Rocket.Chat, Discord's /slack endpoint).
type Slack struct{ p *poster }

var _ Output = (*Slack)(nil)

// NewSlack returns an output posting to the incoming webhook url, which
// is a secret: it never appears in errors.
func NewSlack(name, url string, o WebhookOptions) (*Slack, error) {
	p, err := newPoster(name, url, o)
	if err != nil {
		return nil, err
	}
	return &Slack{p: p}, nil
}

// Name is the output's configured name.
func (s *Slack) Name() string { return s.p.name }

// Send posts the alert as a message.
func (s *Slack) Send(ctx context.Context, a store.Alert, kind string) error {
	body, err := json.Marshal(SlackMessage(a, kind))
	if err != nil {
		return fmt.Errorf("output %s: encoding alert %d: %w", s.p.name, a.ID, err)
	}
	return s.p.post(ctx, body)
}

// SlackMessage is the message Slack posts for an alert: "text" for
// notifications and clients without blocks, "blocks" for the rest. An
// audit alert shows its actor and object; a sensor alert where it
// happened (node, pod, container, image) and the process.
func SlackMessage(a store.Alert, kind string) map[string]any {
	sev := strings.ToUpper(a.Severity)
	head := sev + ": " + a.Title
	if kind == store.DeliveryUpdate {
		head = "Updated: " + head
	}
	technique := a.TechniqueID
	if a.TechniqueName != "" {
		technique = strings.TrimSpace(technique + " " + a.TechniqueName)
	}
	// Slack reads text as markup too: a command line holding
	// "<!channel>" must not ping anyone.
	text := fmt.Sprintf("[%s] %s: %s (%d events, cluster %s)", sev, a.Title, describe(a), a.Count, a.Cluster)
	field := func(label, value string) map[string]any {
		if value == "" {
			value = "-"
		}
		return map[string]any{"type": "mrkdwn", "text": cut("*"+label+"*\n"+mrkdwn(value), 2000)}
	}
	blocks := []any{
		map[string]any{"type": "header", "text": map[string]any{"type": "plain_text", "text": cut(head, 150)}},
	}
	if a.Summary != "" {
		blocks = append(blocks, map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": cut(mrkdwn(a.Summary), 3000)}})
	}
	if isSensor(a) {
		container := containerRef(a)
		if a.ContainerName != "" && a.ContainerID != "" {
			container += " (" + oneLine(cut(a.ContainerID, 12)) + ")"
		}
		node := oneLine(a.Node)
		if a.ContainerID == "" && a.ContainerName == "" && a.Name == "" && node != "" {
			node += " (no container)"
		}
		process := clip(a.Process, 2500)
		blocks = append(blocks,
			map[string]any{"type": "section", "fields": []any{
				field("Severity", sev), field("Rule", a.RuleID), field("Technique", technique),
				field("Node", node), field("Pod", podRef(a)), field("Container", container),
				field("Image", oneLine(a.Image)), field("User", oneLine(a.Actor)), field("Count", fmt.Sprint(a.Count)),
			}},
			map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": cut("*Process*\n"+mrkdwn(cmp.Or(process, "-")), 3000)}},
		)
	} else {
		actor := a.Actor
		if a.SourceIP != "" {
			actor += " from " + a.SourceIP
		}
		blocks = append(blocks, map[string]any{"type": "section", "fields": []any{
			field("Severity", sev), field("Rule", a.RuleID), field("Technique", technique),
			field("Actor", actor), field("Object", object(a)), field("Count", fmt.Sprint(a.Count)),
		}})
	}
	blocks = append(blocks,
		map[string]any{"type": "context", "elements": []any{map[string]any{"type": "mrkdwn", "text": cut(mrkdwn(fmt.Sprintf(
			"cluster %s · first %s · last %s · alert %d", a.Cluster, a.FirstAt.UTC().Format(time.RFC3339), a.LastAt.UTC().Format(time.RFC3339), a.ID)), 3000)}}},
	)
	return map[string]any{"text": cut(mrkdwn(text), 3000), "blocks": blocks}
}

// mrkdwn escapes the three characters Slack's markup gives meaning.
func mrkdwn(s string) string { return mrkdwnEscaper.Replace(s) }

var mrkdwnEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// cut bounds s to n bytes on a rune boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
