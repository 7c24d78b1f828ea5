package cli

import (
	"strings"
	"testing"
)

func TestTokenCommands(t *testing.T) {
	s := newAPIServer(t, nil)
	code, out, errOut := runCLI(t, s.env, "token", "create", "audit-prod", "--role", "ingest")
	if code != ExitOK || !strings.HasPrefix(out, "bwk_") {
		t.Fatalf("token create: exit %d: %s%s", code, out, errOut)
	}
	ingest := strings.TrimSpace(out)
	code, out, _ = runCLI(t, s.env, "token", "list")
	if code != ExitOK || !strings.Contains(out, "audit-prod") || !strings.Contains(out, "ingest") || strings.Contains(out, ingest) {
		t.Errorf("token list: exit %d:\n%s", code, out)
	}
	// An ingest token reads nothing.
	env := map[string]string{"BULWARK_SERVER": s.env["BULWARK_SERVER"], "BULWARK_TOKEN": ingest}
	if code, _, errOut := runCLI(t, env, "images"); code == ExitOK || !strings.Contains(errOut, "403") && !strings.Contains(errOut, "may not") {
		t.Errorf("images with an ingest token: exit %d: %s", code, errOut)
	}
	if code, out, errOut := runCLI(t, s.env, "token", "revoke", "audit-prod"); code != ExitOK {
		t.Fatalf("token revoke: %s%s", out, errOut)
	}
	if code, _, _ := runCLI(t, s.env, "token", "revoke", "audit-prod"); code == ExitOK {
		t.Error("revoking a revoked token succeeded")
	}
	if code, _, _ := runCLI(t, s.env, "token", "create", "x", "--role", "root"); code == ExitOK {
		t.Error("a token with an unknown role was created")
	}
}
