package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/bulwarkhq/bulwark/internal/registry"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// credentialsJSON is how credentials travel in requests. Responses carry
// only credentialsView: secrets are never returned.
type credentialsJSON struct {
	Username                 string `json:"username,omitempty"`
	Password                 string `json:"password,omitempty"`
	Token                    string `json:"token,omitempty"`
	AWSAccessKeyID           string `json:"awsAccessKeyID,omitempty"`
	AWSSecretAccessKey       string `json:"awsSecretAccessKey,omitempty"`
	AWSSessionToken          string `json:"awsSessionToken,omitempty"`
	AWSRegion                string `json:"awsRegion,omitempty"`
	AzureTenantID            string `json:"azureTenantID,omitempty"`
	AzureClientID            string `json:"azureClientID,omitempty"`
	AzureClientSecret        string `json:"azureClientSecret,omitempty"`
	GoogleServiceAccountJSON string `json:"googleServiceAccountJSON,omitempty"`
}

func (c credentialsJSON) credentials() registry.Credentials {
	return registry.Credentials{Username: c.Username, Password: c.Password, Token: c.Token,
		AWSAccessKeyID: c.AWSAccessKeyID, AWSSecretAccessKey: c.AWSSecretAccessKey, AWSSessionToken: c.AWSSessionToken, AWSRegion: c.AWSRegion,
		AzureTenantID: c.AzureTenantID, AzureClientID: c.AzureClientID, AzureClientSecret: c.AzureClientSecret,
		GoogleServiceAccountJSON: c.GoogleServiceAccountJSON}
}

// credentialsView shows which identity a registry uses, never a secret.
type credentialsView struct {
	Set            bool   `json:"set"`
	Username       string `json:"username,omitempty"`
	AWSAccessKeyID string `json:"awsAccessKeyID,omitempty"`
	AWSRegion      string `json:"awsRegion,omitempty"`
	AzureTenantID  string `json:"azureTenantID,omitempty"`
	AzureClientID  string `json:"azureClientID,omitempty"`
}

type registryRequest struct {
	Name           string           `json:"name"`
	Type           string           `json:"type"`
	URL            string           `json:"url"`
	Namespace      string           `json:"namespace,omitempty"`
	Repositories   []string         `json:"repositories,omitempty"`
	Insecure       bool             `json:"insecure,omitempty"`
	PollInterval   string           `json:"pollInterval,omitempty"`
	RateLimit      float64          `json:"rateLimit,omitempty"`
	MaxTags        int              `json:"maxTags,omitempty"`
	PublishReports bool             `json:"publishReports,omitempty"`
	Region         string           `json:"region,omitempty"`
	Credentials    *credentialsJSON `json:"credentials,omitempty"`
}

type registryView struct {
	ID             int64           `json:"id"`
	Name           string          `json:"name"`
	Type           string          `json:"type"`
	URL            string          `json:"url"`
	Namespace      string          `json:"namespace,omitempty"`
	Repositories   []string        `json:"repositories,omitempty"`
	Insecure       bool            `json:"insecure"`
	PollInterval   string          `json:"pollInterval,omitempty"`
	RateLimit      float64         `json:"rateLimit,omitempty"`
	MaxTags        int             `json:"maxTags,omitempty"`
	PublishReports bool            `json:"publishReports"`
	Region         string          `json:"region,omitempty"`
	Credentials    credentialsView `json:"credentials"`
	CreatedAt      time.Time       `json:"createdAt"`
	UpdatedAt      time.Time       `json:"updatedAt"`
	LastPolledAt   *time.Time      `json:"lastPolledAt,omitempty"`
	LastError      string          `json:"lastError,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (s *Server) registryView(r *store.Registry) registryView {
	v := registryView{ID: r.ID, Name: r.Name, Type: r.Type, URL: r.URL, Namespace: r.Settings.Namespace, Repositories: r.Settings.Repositories,
		Insecure: r.Settings.Insecure, RateLimit: r.Settings.RateLimit, MaxTags: r.Settings.MaxTags, PublishReports: r.Settings.PublishReports,
		Region: r.Settings.Region, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, LastPolledAt: timePtr(r.LastPolledAt), LastError: r.LastError}
	if r.Settings.PollInterval != 0 {
		v.PollInterval = time.Duration(r.Settings.PollInterval).String()
	}
	if len(r.Credentials) > 0 {
		v.Credentials.Set = true
		if c, err := registry.OpenCredentials(s.box, r.Name, r.Credentials); err == nil {
			v.Credentials.Username, v.Credentials.AWSAccessKeyID, v.Credentials.AWSRegion = c.Username, c.AWSAccessKeyID, c.AWSRegion
			v.Credentials.AzureTenantID, v.Credentials.AzureClientID = c.AzureTenantID, c.AzureClientID
		} else {
			s.logger.Warn("cannot open registry credentials", "registry", r.Name, "err", err)
		}
	}
	return v
}

// toRegistry validates a request into a registry, sealing its
// credentials. keep are the sealed credentials to keep when the request
// has none (an update that does not touch them), sealed under oldName.
func (s *Server) toRegistry(req registryRequest, oldName string, keep []byte) (*store.Registry, error) {
	if req.Name == "" || len(req.Name) > 100 {
		return nil, errors.New("name is required (at most 100 characters)")
	}
	settings := store.RegistrySettings{Namespace: req.Namespace, Repositories: req.Repositories, Insecure: req.Insecure,
		RateLimit: req.RateLimit, MaxTags: req.MaxTags, PublishReports: req.PublishReports, Region: req.Region}
	if req.PollInterval != "" {
		d, err := time.ParseDuration(req.PollInterval)
		if err != nil {
			return nil, fmt.Errorf("pollInterval: %w", err)
		}
		if d > 0 && d < time.Minute {
			return nil, errors.New("pollInterval: at least 1m (or negative to never poll)")
		}
		settings.PollInterval = store.Duration(d)
	}
	if req.RateLimit < 0 || req.MaxTags < 0 {
		return nil, errors.New("rateLimit and maxTags must not be negative")
	}
	var creds registry.Credentials
	switch {
	case req.Credentials != nil:
		creds = req.Credentials.credentials()
	case keep != nil:
		var err error
		if creds, err = registry.OpenCredentials(s.box, oldName, keep); err != nil {
			return nil, err
		}
	}
	// New validates the type, URL and which credentials the type needs,
	// without contacting the registry.
	if _, err := registry.New(registry.Config{Type: registry.Type(req.Type), URL: req.URL, Insecure: req.Insecure, Namespace: req.Namespace,
		Repositories: req.Repositories, Credentials: creds}); err != nil {
		return nil, err
	}
	sealed, err := registry.SealCredentials(s.box, req.Name, creds)
	if err != nil {
		return nil, err
	}
	return &store.Registry{Name: req.Name, Type: req.Type, URL: req.URL, Settings: settings, Credentials: sealed}, nil
}

func (s *Server) listRegistries(w http.ResponseWriter, r *http.Request) {
	regs, err := s.store.Registries(r.Context())
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	out := make([]registryView, 0, len(regs))
	for i := range regs {
		out = append(out, s.registryView(&regs[i]))
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

func (s *Server) createRegistry(w http.ResponseWriter, r *http.Request) {
	var req registryRequest
	if err := decode(w, r, &req); err != nil {
		s.writeError(w, r, http.StatusBadRequest, err)
		return
	}
	setAudit(r, req.Name, map[string]any{"type": req.Type, "url": req.URL})
	reg, err := s.toRegistry(req, "", nil)
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, err)
		return
	}
	if err := s.store.CreateRegistry(r.Context(), reg); err != nil {
		s.dbError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusCreated, s.registryView(reg))
}

func (s *Server) registryByPath(w http.ResponseWriter, r *http.Request) (*store.Registry, bool) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, err)
		return nil, false
	}
	reg, err := s.store.Registry(r.Context(), id)
	if err != nil {
		s.dbError(w, r, err)
		return nil, false
	}
	return reg, true
}

func (s *Server) getRegistry(w http.ResponseWriter, r *http.Request) {
	if reg, ok := s.registryByPath(w, r); ok {
		s.writeJSON(w, http.StatusOK, s.registryView(reg))
	}
}

func (s *Server) updateRegistry(w http.ResponseWriter, r *http.Request) {
	old, ok := s.registryByPath(w, r)
	if !ok {
		return
	}
	var req registryRequest
	if err := decode(w, r, &req); err != nil {
		s.writeError(w, r, http.StatusBadRequest, err)
		return
	}
	setAudit(r, old.Name, map[string]any{"name": req.Name, "type": req.Type, "url": req.URL, "credentialsChanged": req.Credentials != nil})
	reg, err := s.toRegistry(req, old.Name, old.Credentials)
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, err)
		return
	}
	reg.ID = old.ID
	if err := s.store.UpdateRegistry(r.Context(), reg); err != nil {
		s.dbError(w, r, err)
		return
	}
	updated, err := s.store.Registry(r.Context(), reg.ID)
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, s.registryView(updated))
}

func (s *Server) deleteRegistry(w http.ResponseWriter, r *http.Request) {
	reg, ok := s.registryByPath(w, r)
	if !ok {
		return
	}
	setAudit(r, reg.Name, nil)
	if err := s.store.DeleteRegistry(r.Context(), reg.ID); err != nil {
		s.dbError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) pollRegistry(w http.ResponseWriter, r *http.Request) {
	reg, ok := s.registryByPath(w, r)
	if !ok {
		return
	}
	setAudit(r, reg.Name, nil)
	if err := s.scheduler.PollNow(r.Context(), reg.ID); err != nil {
		s.dbError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusAccepted, map[string]string{"status": "poll scheduled"})
}

type repositoryView struct {
	Name        string    `json:"name"`
	FirstSeenAt time.Time `json:"firstSeenAt"`
	LastSeenAt  time.Time `json:"lastSeenAt"`
}

func (s *Server) listRepositories(w http.ResponseWriter, r *http.Request) {
	reg, ok := s.registryByPath(w, r)
	if !ok {
		return
	}
	repos, err := s.store.Repositories(r.Context(), reg.ID)
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	out := make([]repositoryView, 0, len(repos))
	for _, rp := range repos {
		out = append(out, repositoryView{rp.Name, rp.FirstSeenAt, rp.LastSeenAt})
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"items": out})
}
