package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
)

type admissionImageView struct {
	Container     string   `json:"container"`
	ContainerKind string   `json:"containerKind"`
	Reference     string   `json:"reference"`
	Digest        string   `json:"digest,omitempty"`
	Scanned       bool     `json:"scanned"`
	Rules         []string `json:"rules"`
	Findings      []string `json:"findings"`
}

type admissionDecisionView struct {
	ID               int64                `json:"id"`
	At               time.Time            `json:"at"`
	Cluster          string               `json:"cluster,omitempty"`
	UID              string               `json:"uid"`
	Operation        string               `json:"operation"`
	Kind             string               `json:"kind"`
	Namespace        string               `json:"namespace"`
	Name             string               `json:"name"`
	User             string               `json:"user"`
	Allowed          bool                 `json:"allowed"`
	Action           string               `json:"action"`
	Rules            []string             `json:"rules"`
	Message          string               `json:"message,omitempty"`
	Warnings         []string             `json:"warnings"`
	DryRun           bool                 `json:"dryRun"`
	BreakGlass       bool                 `json:"breakGlass"`
	BreakGlassReason string               `json:"breakGlassReason,omitempty"`
	Images           []admissionImageView `json:"images"`
	DurationMS       float64              `json:"durationMs"`
}

var admissionActions = map[string]bool{store.AdmissionDeny: true, store.AdmissionWarn: true, store.AdmissionAudit: true,
	store.AdmissionAllow: true, store.AdmissionError: true}

func (s *Server) listAdmissionDecisions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.AdmissionFilter{Cluster: q.Get("cluster"), Namespace: q.Get("namespace"), Action: q.Get("action"), Rule: q.Get("rule")}
	p, err := page(q)
	if err == nil && f.Action != "" && !admissionActions[f.Action] {
		err = fmt.Errorf("unknown action %q (want deny, warn, audit, allow or error)", f.Action)
	}
	for _, b := range []struct {
		name string
		into *bool
	}{{"breakGlass", &f.BreakGlass}, {"denied", &f.Denied}} {
		if err != nil {
			break
		}
		var v *bool
		if v, err = boolParam(q, b.name); v != nil {
			*b.into = *v
		}
	}
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, err)
		return
	}
	ds, next, err := s.store.AdmissionDecisions(r.Context(), f, p)
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	out := listPage[admissionDecisionView]{Items: []admissionDecisionView{}, NextPageToken: next}
	for _, d := range ds {
		v := admissionDecisionView{ID: d.ID, At: d.At, Cluster: d.Cluster, UID: d.UID, Operation: d.Operation, Kind: d.Kind,
			Namespace: d.Namespace, Name: d.Name, User: d.User, Allowed: d.Allowed, Action: d.Action, Rules: nonNil(d.Rules),
			Message: d.Message, Warnings: nonNil(d.Warnings), DryRun: d.DryRun, BreakGlass: d.BreakGlass,
			BreakGlassReason: d.BreakGlassReason, Images: []admissionImageView{}, DurationMS: float64(d.Duration.Microseconds()) / 1000}
		for _, im := range d.Images {
			v.Images = append(v.Images, admissionImageView{Container: im.Container, ContainerKind: im.ContainerKind, Reference: im.Reference,
				Digest: im.Digest, Scanned: im.Scanned, Rules: nonNil(im.Rules), Findings: nonNil(im.Findings)})
		}
		out.Items = append(out.Items, v)
	}
	s.writeJSON(w, http.StatusOK, out)
}
