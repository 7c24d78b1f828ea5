package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// clusterNameRE is what a cluster named in an ingest URL may look like: a
// DNS label, as Kubernetes names go.
var clusterNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ingestAudit receives a batch of Kubernetes audit events from a
// cluster's audit webhook backend.
func (s *Server) ingestAudit(w http.ResponseWriter, r *http.Request) {
	cluster := r.PathValue("cluster")
	if !clusterNameRE.MatchString(cluster) {
		s.writeError(w, r, http.StatusBadRequest, errors.New("the cluster name must be a DNS label (lower case letters, digits and '-')"))
		return
	}
	if s.ingest == nil {
		s.writeError(w, r, http.StatusServiceUnavailable, errors.New("this server does not take audit events"))
		return
	}
	s.ingest(cluster).ServeHTTP(w, r)
}

type auditEventView struct {
	ID           int64           `json:"id"`
	AuditID      string          `json:"auditID"`
	Cluster      string          `json:"cluster"`
	At           time.Time       `json:"at"`
	Verb         string          `json:"verb"`
	User         string          `json:"user"`
	Groups       []string        `json:"groups"`
	SourceIP     string          `json:"sourceIP,omitempty"`
	UserAgent    string          `json:"userAgent,omitempty"`
	Resource     string          `json:"resource,omitempty"`
	Subresource  string          `json:"subresource,omitempty"`
	Namespace    string          `json:"namespace,omitempty"`
	Name         string          `json:"name,omitempty"`
	APIGroup     string          `json:"apiGroup,omitempty"`
	Code         int             `json:"code"`
	Impersonated string          `json:"impersonated,omitempty"`
	Event        json.RawMessage `json:"event"`
}

func timeParam(q url.Values, name string) (time.Time, error) {
	v := q.Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s must be an RFC 3339 time", name)
	}
	return t, nil
}

func intParam(q url.Values, name string) (int, error) {
	v := q.Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 999 {
		return 0, fmt.Errorf("%s must be a number 0..999", name)
	}
	return n, nil
}

func (s *Server) listAuditEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.AuditEventFilter{Cluster: q.Get("cluster"), User: q.Get("user"), Verb: q.Get("verb"), Resource: q.Get("resource"),
		Namespace: q.Get("namespace"), Name: q.Get("name"), SourceIP: q.Get("sourceIP")}
	p, err := page(q)
	for _, tp := range []struct {
		name string
		into *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if err == nil {
			*tp.into, err = timeParam(q, tp.name)
		}
	}
	for _, ip := range []struct {
		name string
		into *int
	}{{"minCode", &f.MinCode}, {"maxCode", &f.MaxCode}} {
		if err == nil {
			*ip.into, err = intParam(q, ip.name)
		}
	}
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, err)
		return
	}
	es, next, err := s.store.AuditEvents(r.Context(), f, p)
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	out := listPage[auditEventView]{Items: []auditEventView{}, NextPageToken: next}
	for _, e := range es {
		out.Items = append(out.Items, auditEventView{ID: e.ID, AuditID: e.AuditID, Cluster: e.Cluster, At: e.At, Verb: e.Verb, User: e.User,
			Groups: nonNil(e.Groups), SourceIP: e.SourceIP, UserAgent: e.UserAgent, Resource: e.Resource, Subresource: e.Subresource,
			Namespace: e.Namespace, Name: e.Name, APIGroup: e.APIGroup, Code: e.Code, Impersonated: e.Impersonated, Event: e.Event})
	}
	s.writeJSON(w, http.StatusOK, out)
}

type alertView struct {
	ID            int64          `json:"id"`
	Source        string         `json:"source"`
	Cluster       string         `json:"cluster"`
	Rule          string         `json:"rule"`
	Title         string         `json:"title"`
	Severity      string         `json:"severity"`
	Technique     techniqueView  `json:"technique"`
	Summary       string         `json:"summary"`
	Actor         string         `json:"actor"`
	Groups        []string       `json:"groups"`
	SourceIP      string         `json:"sourceIP,omitempty"`
	UserAgent     string         `json:"userAgent,omitempty"`
	Verb          string         `json:"verb,omitempty"`
	Resource      string         `json:"resource,omitempty"`
	Subresource   string         `json:"subresource,omitempty"`
	Namespace     string         `json:"namespace,omitempty"`
	Name          string         `json:"name,omitempty"`
	Node          string         `json:"node,omitempty"`
	ContainerID   string         `json:"containerID,omitempty"`
	ContainerName string         `json:"containerName,omitempty"`
	Image         string         `json:"image,omitempty"`
	Process       string         `json:"process,omitempty"`
	Events        []string       `json:"events"`
	Count         int            `json:"count"`
	FirstAt       time.Time      `json:"firstAt"`
	LastAt        time.Time      `json:"lastAt"`
	CreatedAt     time.Time      `json:"createdAt"`
	Remediation   string         `json:"remediation,omitempty"`
	Deliveries    []deliveryView `json:"deliveries,omitempty"`
}

type techniqueView struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type deliveryView struct {
	Output   string    `json:"output"`
	Kind     string    `json:"kind"`
	Status   string    `json:"status"`
	Attempts int       `json:"attempts"`
	NextAt   time.Time `json:"nextAt"`
	Error    string    `json:"error,omitempty"`
}

func (s *Server) alertView(a store.Alert) alertView {
	v := alertView{ID: a.ID, Source: a.Source, Cluster: a.Cluster, Rule: a.RuleID, Title: a.Title, Severity: a.Severity,
		Technique: techniqueView{ID: a.TechniqueID, Name: a.TechniqueName}, Summary: a.Summary, Actor: a.Actor, Groups: nonNil(a.Groups),
		SourceIP: a.SourceIP, UserAgent: a.UserAgent, Verb: a.Verb, Resource: a.Resource, Subresource: a.Subresource, Namespace: a.Namespace,
		Name: a.Name, Node: a.Node, ContainerID: a.ContainerID, ContainerName: a.ContainerName, Image: a.Image, Process: a.Process,
		Events: nonNil(a.Events), Count: a.Count, FirstAt: a.FirstAt, LastAt: a.LastAt, CreatedAt: a.CreatedAt}
	for _, r := range s.rules {
		if r.ID == a.RuleID {
			v.Remediation = r.Remediation
			break
		}
	}
	return v
}

func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.AlertFilter{Source: q.Get("source"), Cluster: q.Get("cluster"), Node: q.Get("node"), RuleID: q.Get("rule"), Actor: q.Get("actor"),
		Namespace: q.Get("namespace"), TechniqueID: q.Get("technique")}
	p, err := page(q)
	if err == nil && f.Source != "" && f.Source != store.SourceAudit && f.Source != store.SourceSensor {
		err = fmt.Errorf("source must be %s or %s", store.SourceAudit, store.SourceSensor)
	}
	if err == nil && q.Get("severity") != "" {
		sev, e := severityParam(q.Get("severity"))
		f.Severity, err = string(sev), e
	}
	if err == nil && q.Get("minSeverity") != "" {
		sev, e := severityParam(q.Get("minSeverity"))
		f.MinSeverity, err = string(sev), e
	}
	if err == nil {
		f.Since, err = timeParam(q, "since")
	}
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, err)
		return
	}
	as, next, err := s.store.Alerts(r.Context(), f, p)
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	out := listPage[alertView]{Items: []alertView{}, NextPageToken: next}
	for _, a := range as {
		out.Items = append(out.Items, s.alertView(a))
	}
	s.writeJSON(w, http.StatusOK, out)
}

func (s *Server) getAlert(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, err)
		return
	}
	a, err := s.store.Alert(r.Context(), id)
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	ds, err := s.store.AlertDeliveries(r.Context(), id)
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	v := s.alertView(*a)
	v.Deliveries = []deliveryView{}
	for _, d := range ds {
		v.Deliveries = append(v.Deliveries, deliveryView{Output: d.Output, Kind: d.Kind, Status: d.Status, Attempts: d.Attempts, NextAt: d.NextAt, Error: d.Error})
	}
	s.writeJSON(w, http.StatusOK, v)
}

type detectionRuleView struct {
	ID          string        `json:"id"`
	Title       string        `json:"title"`
	Severity    string        `json:"severity"`
	Technique   techniqueView `json:"technique"`
	Description string        `json:"description,omitempty"`
	Remediation string        `json:"remediation,omitempty"`
	Verbs       []string      `json:"verbs"`
	Resources   []string      `json:"resources"`
	Match       string        `json:"match"`
	Output      string        `json:"output,omitempty"`
	State       string        `json:"state,omitempty"`
	Tags        []string      `json:"tags"`
	Source      string        `json:"source"`
}

func (s *Server) listDetectionRules(w http.ResponseWriter, r *http.Request) {
	out := listPage[detectionRuleView]{Items: []detectionRuleView{}}
	for _, rule := range s.rules {
		v := detectionRuleView{ID: rule.ID, Title: rule.Title, Severity: rule.Severity, Technique: techniqueView{ID: rule.Technique.ID, Name: rule.Technique.Name},
			Description: rule.Description, Remediation: rule.Remediation, Verbs: nonNil(rule.Verbs), Resources: nonNil(rule.Resources),
			Match: rule.Match, Output: rule.Output, Tags: nonNil(rule.Tags), Source: rule.Source}
		if rule.State != nil {
			v.State = rule.State.Kind
		}
		out.Items = append(out.Items, v)
	}
	s.writeJSON(w, http.StatusOK, out)
}
