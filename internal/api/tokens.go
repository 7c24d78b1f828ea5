package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
)

type tokenView struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	Role       string     `json:"role"`
	Prefix     string     `json:"prefix"`
	CreatedAt  time.Time  `json:"createdAt"`
	CreatedBy  string     `json:"createdBy,omitempty"`
	ExpiresAt  *time.Time `json:"expiresAt,omitempty"`
	LastUsedAt *time.Time `json:"lastUsedAt,omitempty"`
	RevokedAt  *time.Time `json:"revokedAt,omitempty"`
	// Token is set only in the response that creates it.
	Token string `json:"token,omitempty"`
}

func toTokenView(t store.Token) tokenView {
	return tokenView{ID: t.ID, Name: t.Name, Role: t.Role, Prefix: t.Prefix, CreatedAt: t.CreatedAt, CreatedBy: t.CreatedBy,
		ExpiresAt: timePtr(t.ExpiresAt), LastUsedAt: timePtr(t.LastUsedAt), RevokedAt: timePtr(t.RevokedAt)}
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	toks, err := s.store.Tokens(r.Context())
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	out := make([]tokenView, 0, len(toks))
	for _, t := range toks {
		out = append(out, toTokenView(t))
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

type tokenRequest struct {
	Name string `json:"name"`
	Role string `json:"role"`
	// ExpiresIn is a Go duration ("720h"); empty never expires.
	ExpiresIn string `json:"expiresIn,omitempty"`
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	var req tokenRequest
	if err := decode(w, r, &req); err != nil {
		s.writeError(w, r, http.StatusBadRequest, err)
		return
	}
	setAudit(r, req.Name, map[string]any{"role": req.Role})
	if req.Name == "" || len(req.Name) > 100 {
		s.writeError(w, r, http.StatusBadRequest, errors.New("name is required (at most 100 characters)"))
		return
	}
	if !ValidRole(req.Role) {
		s.writeError(w, r, http.StatusBadRequest, errors.New("role must be viewer, analyst, admin, ingest or enroll"))
		return
	}
	token, hash := NewToken()
	t := store.Token{Name: req.Name, Role: req.Role, Hash: hash, Prefix: token[:len(TokenPrefix)+6], CreatedBy: callerOf(r.Context()).name}
	if req.ExpiresIn != "" {
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 {
			s.writeError(w, r, http.StatusBadRequest, errors.New("expiresIn must be a positive duration such as 720h"))
			return
		}
		t.ExpiresAt = time.Now().Add(d)
	}
	if err := s.store.CreateToken(r.Context(), &t); err != nil {
		s.dbError(w, r, err)
		return
	}
	v := toTokenView(t)
	v.Token = token
	s.writeJSON(w, http.StatusCreated, v)
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, err)
		return
	}
	setAudit(r, r.PathValue("id"), nil)
	if err := s.store.RevokeToken(r.Context(), id); err != nil {
		s.dbError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type auditView struct {
	ID         int64          `json:"id"`
	At         time.Time      `json:"at"`
	Actor      string         `json:"actor"`
	Role       string         `json:"role,omitempty"`
	Action     string         `json:"action"`
	Method     string         `json:"method,omitempty"`
	Path       string         `json:"path,omitempty"`
	Target     string         `json:"target,omitempty"`
	Status     int            `json:"status"`
	RemoteAddr string         `json:"remoteAddr,omitempty"`
	Detail     map[string]any `json:"detail,omitempty"`
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, err := page(q)
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, err)
		return
	}
	entries, next, err := s.store.AuditLog(r.Context(), store.AuditFilter{Actor: q.Get("actor"), Action: q.Get("action")}, p)
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	out := listPage[auditView]{Items: []auditView{}, NextPageToken: next}
	for _, e := range entries {
		out.Items = append(out.Items, auditView(e))
	}
	s.writeJSON(w, http.StatusOK, out)
}
