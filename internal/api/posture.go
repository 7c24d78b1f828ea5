package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/bulwarkhq/bulwark/internal/model"
	"github.com/bulwarkhq/bulwark/internal/posture"
	"github.com/bulwarkhq/bulwark/internal/store"
)

type postureFindingView struct {
	ID                int64      `json:"id"`
	ClusterID         int64      `json:"clusterID"`
	Cluster           string     `json:"cluster"`
	Check             string     `json:"check"`
	Title             string     `json:"title"`
	Severity          string     `json:"severity"`
	Frameworks        []string   `json:"frameworks"`
	ResourceKind      string     `json:"resourceKind"`
	ResourceNamespace string     `json:"resourceNamespace,omitempty"`
	ResourceName      string     `json:"resourceName"`
	Evidence          []string   `json:"evidence"`
	Remediation       string     `json:"remediation,omitempty"`
	State             string     `json:"state"`
	FirstSeenAt       time.Time  `json:"firstSeenAt"`
	LastSeenAt        time.Time  `json:"lastSeenAt"`
	ResolvedAt        *time.Time `json:"resolvedAt,omitempty"`
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *Server) listPostureFindings(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.PostureFilter{CheckID: q.Get("check"), Namespace: q.Get("namespace"), ResourceKind: q.Get("kind"), ResourceName: q.Get("name"),
		Framework: q.Get("framework"), State: q.Get("state")}
	p, err := page(q)
	if err == nil && f.State != "" && f.State != store.StateOpen && f.State != store.StateResolved && f.State != store.StateAll {
		err = fmt.Errorf("unknown state %q (want open, resolved or all)", f.State)
	}
	if err == nil && q.Get("severity") != "" {
		var sev model.Severity
		sev, err = severityParam(q.Get("severity"))
		f.Severity = string(sev)
	}
	if err == nil && q.Get("minSeverity") != "" {
		var sev model.Severity
		sev, err = severityParam(q.Get("minSeverity"))
		f.MinSeverity = string(sev)
	}
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, err)
		return
	}
	if f.ClusterID, err = s.clusterParam(r, q); err != nil {
		s.dbError(w, r, err)
		return
	}
	fs, next, err := s.store.PostureFindings(r.Context(), f, p)
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	out := listPage[postureFindingView]{Items: []postureFindingView{}, NextPageToken: next}
	for _, x := range fs {
		// A check removed since the finding was recorded has no
		// remediation to show.
		var remediation string
		if c, ok := s.checks[x.CheckID]; ok {
			remediation = c.Remediation
		}
		out.Items = append(out.Items, postureFindingView{ID: x.ID, ClusterID: x.ClusterID, Cluster: x.Cluster, Check: x.CheckID, Title: x.Title,
			Severity: x.Severity, Frameworks: nonNil(x.Frameworks), ResourceKind: x.ResourceKind, ResourceNamespace: x.ResourceNamespace,
			ResourceName: x.ResourceName, Evidence: nonNil(x.Evidence), Remediation: remediation, State: x.State,
			FirstSeenAt: x.FirstSeenAt, LastSeenAt: x.LastSeenAt, ResolvedAt: timePtr(x.ResolvedAt)})
	}
	s.writeJSON(w, http.StatusOK, out)
}

// postureCheckView shows a check with its CEL expressions, which teach
// users writing their own checks how the built-in ones are written.
type postureCheckView struct {
	ID          string   `json:"id"`
	Title       string   `json:"title"`
	Severity    string   `json:"severity"`
	Target      string   `json:"target"`
	Frameworks  []string `json:"frameworks"`
	Description string   `json:"description,omitempty"`
	Remediation string   `json:"remediation,omitempty"`
	Match       string   `json:"match,omitempty"`
	Violation   string   `json:"violation"`
	Evidence    string   `json:"evidence,omitempty"`
	Source      string   `json:"source"`
}

func (s *Server) listPostureChecks(w http.ResponseWriter, r *http.Request) {
	out := make([]postureCheckView, 0, len(s.checkList))
	for _, c := range s.checkList {
		out = append(out, toPostureCheckView(c))
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

func toPostureCheckView(c posture.Check) postureCheckView {
	return postureCheckView{ID: c.ID, Title: c.Title, Severity: c.Severity, Target: c.Target, Frameworks: nonNil(c.Frameworks),
		Description: c.Description, Remediation: c.Remediation, Match: c.Match, Violation: c.Violation, Evidence: c.Evidence, Source: c.Source}
}
