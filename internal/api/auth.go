package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// TokenPrefix starts every API token, so leaked tokens are easy to find
// with secret scanners.
const TokenPrefix = "bwk_"

// NewToken makes a random API token and returns it with its hash; only
// the hash is stored.
func NewToken() (token, hash string) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	token = TokenPrefix + hex.EncodeToString(b[:])
	return token, HashToken(token)
}

// HashToken is the stored form of a token. Tokens are 256 random bits,
// so a fast hash is enough: there is nothing to brute-force.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// ValidRole reports whether r is a role a token may have.
func ValidRole(r string) bool {
	return r == store.RoleViewer || r == store.RoleAnalyst || r == store.RoleAdmin || r == store.RoleIngest || r == store.RoleEnroll
}

// mayCall reports whether a token of role has may call a route that needs
// role needs. Ingest tokens (held by kube-apiserver's audit webhook
// configuration, so kept on the cluster's control plane) reach only the
// ingest routes, and enrolment tokens (in every node's sensor secret)
// only the enrolment route; admins reach everything.
func mayCall(has, needs string) bool {
	if narrowRole(needs) || narrowRole(has) {
		return has == needs || has == store.RoleAdmin
	}
	return roleRank(has) >= roleRank(needs)
}

// narrowRole reports whether r is a role that reaches its own routes only.
func narrowRole(r string) bool { return r == store.RoleIngest || r == store.RoleEnroll }

func roleRank(r string) int {
	switch r {
	case store.RoleViewer:
		return 1
	case store.RoleAnalyst:
		return 2
	case store.RoleAdmin:
		return 3
	}
	return 0
}

// caller is who made a request.
type caller struct {
	tokenID int64
	name    string
	role    string
}

type callerKey struct{}

func callerOf(ctx context.Context) caller {
	c, _ := ctx.Value(callerKey{}).(caller)
	return c
}

var errUnauthenticated = errors.New("missing, unknown, expired or revoked bearer token")

// authenticate checks the bearer token and the role a route needs.
func (s *Server) authenticate(next http.Handler, role string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !strings.HasPrefix(raw, TokenPrefix) || len(raw) > 200 {
			s.writeError(w, r, http.StatusUnauthorized, errUnauthenticated)
			return
		}
		tok, err := s.store.TokenByHash(r.Context(), HashToken(raw))
		if errors.Is(err, store.ErrNotFound) {
			s.writeError(w, r, http.StatusUnauthorized, errUnauthenticated)
			return
		}
		if err != nil {
			s.dbError(w, r, err)
			return
		}
		now := time.Now()
		if !tok.RevokedAt.IsZero() || (!tok.ExpiresAt.IsZero() && now.After(tok.ExpiresAt)) {
			s.writeError(w, r, http.StatusUnauthorized, errUnauthenticated)
			return
		}
		if !mayCall(tok.Role, role) {
			s.writeError(w, r, http.StatusForbidden, errors.New("this token's role ("+tok.Role+") may not do this; it needs "+role))
			return
		}
		if err := s.store.TouchToken(r.Context(), tok.ID, now); err != nil {
			s.logger.Warn("recording token use failed", "token", tok.Name, "err", err)
		}
		ctx := context.WithValue(r.Context(), callerKey{}, caller{tokenID: tok.ID, name: tok.Name, role: tok.Role})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}
