package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// credentialFile is the credential's name in the state directory.
const credentialFile = "credential.json"

const (
	// maxSmallFile bounds what is read of a credential or token file and
	// of a server's answer that is not a batch: they are a few hundred
	// bytes, and a bigger one is a mistake or hostile.
	maxSmallFile = 64 << 10
	// maxCredential bounds the credential itself; it travels in a header.
	maxCredential = 4096
)

var (
	// errRefused says the server refused the token or the credential
	// (HTTP 400, 401 or 403): trying again at once would not help.
	errRefused = errors.New("refused by the server")
	// errNoToken says there is no enrolment token to enrol with.
	errNoToken = errors.New("no enrolment token")
)

// credential is what the state directory keeps of an enrolment. Server
// and Node tie it to the server and node it was issued for, so that a
// sensor moved to another server or renamed enrols again instead of
// sending with a credential that cannot work.
type credential struct {
	ID         string `json:"id"`
	Credential string `json:"credential"`
	Server     string `json:"server"`
	Node       string `json:"node"`
}

// loadCredential reads the credential file; a missing file is (nil, nil).
func loadCredential(path string) (*credential, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("opening credential file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSmallFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading credential file %s: %w", path, err)
	}
	if len(data) > maxSmallFile {
		return nil, fmt.Errorf("credential file %s is larger than %d bytes", path, maxSmallFile)
	}
	c, err := parseCredential(data)
	if err != nil {
		return nil, fmt.Errorf("credential file %s: %w", path, err)
	}
	return c, nil
}

// parseCredential reads a credential file's contents.
func parseCredential(data []byte) (*credential, error) {
	var c credential
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("parsing: %w", err)
	}
	if err := checkCredential(c.Credential); err != nil {
		return nil, err
	}
	return &c, nil
}

// storeCredential replaces the credential file atomically: a crash leaves
// the old file or the new one, never a torn one. It is 0600 from the
// start, since it is a secret.
func storeCredential(path string, c *credential) error {
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encoding credential: %w", err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".credential-*")
	if err != nil {
		return fmt.Errorf("creating credential file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("setting credential file mode: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing credential file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("syncing credential file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("closing credential file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replacing credential file: %w", err)
	}
	// Losing the credential to a power cut would cost an enrolment with a
	// token that may since have expired, so the rename is made durable.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// checkCredential accepts what can travel in an Authorization header:
// visible ASCII, bounded.
func checkCredential(s string) error {
	if s == "" {
		return errors.New("empty credential")
	}
	if len(s) > maxCredential {
		return fmt.Errorf("credential is %d bytes, at most %d", len(s), maxCredential)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return fmt.Errorf("credential has a character that is not visible ASCII at byte %d", i)
		}
	}
	return nil
}

// token returns the enrolment token, reading TokenFile afresh.
func (o *Options) token() (string, error) {
	tok := o.Token
	if o.TokenFile != "" {
		f, err := os.Open(o.TokenFile)
		if err != nil {
			return "", fmt.Errorf("opening token file: %w", err)
		}
		data, err := io.ReadAll(io.LimitReader(f, maxSmallFile+1))
		f.Close()
		if err != nil {
			return "", fmt.Errorf("reading token file %s: %w", o.TokenFile, err)
		}
		if len(data) > maxSmallFile {
			return "", fmt.Errorf("token file %s is larger than %d bytes", o.TokenFile, maxSmallFile)
		}
		tok = string(data)
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", errNoToken
	}
	// The token travels in a header too; the error must not quote it.
	if err := checkCredential(tok); err != nil {
		return "", fmt.Errorf("enrolment token: %w", err)
	}
	return tok, nil
}

// hasToken says whether an enrolment token is configured at all.
func (o *Options) hasToken() bool { return o.Token != "" || o.TokenFile != "" }

// enroll trades the enrolment token for a credential and stores it.
func (c *Client) enroll(ctx context.Context) (*credential, error) {
	tok, err := c.opts.token()
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(map[string]string{"node": c.opts.Node, "cluster": c.opts.Cluster})
	if err != nil {
		return nil, fmt.Errorf("encoding enrolment request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+EnrollPath, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("building enrolment request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("enrolling: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxSmallFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading enrolment answer: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusBadRequest, resp.StatusCode == http.StatusUnauthorized, resp.StatusCode == http.StatusForbidden:
		return nil, fmt.Errorf("enrolling: %w: HTTP %d%s", errRefused, resp.StatusCode, serverMessage(data))
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return nil, &retryError{err: fmt.Errorf("enrolling: HTTP %d%s", resp.StatusCode, serverMessage(data)), after: retryAfter(resp)}
	case len(data) > maxSmallFile:
		return nil, fmt.Errorf("enrolment answer is larger than %d bytes", maxSmallFile)
	}
	id, secret, err := parseEnrollAnswer(data)
	if err != nil {
		return nil, fmt.Errorf("enrolment answer: %w", err)
	}
	cred := &credential{ID: id, Credential: secret, Server: c.base, Node: c.opts.Node}
	if err := storeCredential(c.credPath, cred); err != nil {
		return nil, err
	}
	c.log.Info("sensor enrolled", "server", c.base, "node", c.opts.Node, "sensorID", id)
	return cred, nil
}

// parseEnrollAnswer reads the server's answer to an enrolment: the
// sensor's id and its credential.
func parseEnrollAnswer(data []byte) (id, secret string, err error) {
	var answer struct {
		ID         json.RawMessage `json:"id"`
		Credential string          `json:"credential"`
	}
	if err := json.Unmarshal(data, &answer); err != nil {
		return "", "", fmt.Errorf("parsing: %w", err)
	}
	if err := checkCredential(answer.Credential); err != nil {
		return "", "", err
	}
	if id, err = sensorID(answer.ID); err != nil {
		return "", "", err
	}
	return id, answer.Credential, nil
}

// sensorID reads the server's id for the sensor, a number or a string.
func sensorID(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return "", errors.New("id is neither a string nor a number")
		}
		s = n.String()
	}
	if s == "" || len(s) > 253 {
		return "", fmt.Errorf("id is %d bytes, want 1 to 253", len(s))
	}
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return "", errors.New("id has a control character")
		}
	}
	return s, nil
}

// serverMessage extracts a short, printable message from an error answer
// for a log line; the answer is the server's, so it is clipped.
func serverMessage(data []byte) string {
	var p struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(data))
	if json.Unmarshal(data, &p) == nil && p.Error != "" {
		msg = p.Error
	}
	msg = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, msg)
	if len(msg) > 200 {
		msg = strings.ToValidUTF8(msg[:200], "") + "…"
	}
	if msg == "" {
		return ""
	}
	return ": " + msg
}
