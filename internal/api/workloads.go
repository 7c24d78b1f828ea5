package api

import (
	"net/http"
	"net/url"
	"time"

	"github.com/bulwarkhq/bulwark/internal/model"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// workloadHeader is what every view of a workload shows: where it runs
// and how it is reachable.
type workloadHeader struct {
	ID             int64     `json:"id"`
	ClusterID      int64     `json:"clusterID"`
	Cluster        string    `json:"cluster"`
	Namespace      string    `json:"namespace"`
	Kind           string    `json:"kind"`
	Name           string    `json:"name"`
	ServiceAccount string    `json:"serviceAccount,omitempty"`
	Exposure       []string  `json:"exposure"`
	HostNetwork    bool      `json:"hostNetwork"`
	HostPID        bool      `json:"hostPID"`
	HostIPC        bool      `json:"hostIPC"`
	FirstSeenAt    time.Time `json:"firstSeenAt"`
	LastSeenAt     time.Time `json:"lastSeenAt"`
}

func toWorkloadHeader(w *store.Workload) workloadHeader {
	exposure := w.Exposure
	if exposure == nil {
		exposure = []string{}
	}
	return workloadHeader{ID: w.ID, ClusterID: w.ClusterID, Cluster: w.Cluster, Namespace: w.Namespace, Kind: w.Kind, Name: w.Name,
		ServiceAccount: w.ServiceAccount, Exposure: exposure, HostNetwork: w.HostNetwork, HostPID: w.HostPID, HostIPC: w.HostIPC,
		FirstSeenAt: w.FirstSeenAt, LastSeenAt: w.LastSeenAt}
}

type containerView struct {
	Name         string   `json:"name"`
	Kind         string   `json:"kind"`
	Image        string   `json:"image"`
	Digest       string   `json:"digest,omitempty"`
	Privileged   bool     `json:"privileged"`
	RunAsNonRoot *bool    `json:"runAsNonRoot,omitempty"`
	Capabilities []string `json:"capabilities,omitempty"`
	HostPorts    []int32  `json:"hostPorts,omitempty"`
}

type podView struct {
	Name       string          `json:"name"`
	Node       string          `json:"node,omitempty"`
	Phase      string          `json:"phase,omitempty"`
	Containers []containerView `json:"containers"`
}

type workloadView struct {
	workloadHeader
	Pods []podView `json:"pods"`
}

func toWorkloadView(w *store.Workload) workloadView {
	v := workloadView{workloadHeader: toWorkloadHeader(w), Pods: make([]podView, 0, len(w.Pods))}
	for _, p := range w.Pods {
		pv := podView{Name: p.Name, Node: p.Node, Phase: p.Phase, Containers: make([]containerView, 0, len(p.Containers))}
		for _, c := range p.Containers {
			pv.Containers = append(pv.Containers, containerView{Name: c.Name, Kind: c.Kind, Image: c.Image, Digest: c.Digest,
				Privileged: c.Privileged, RunAsNonRoot: c.RunAsNonRoot, Capabilities: c.Capabilities, HostPorts: c.HostPorts})
		}
		v.Pods = append(v.Pods, pv)
	}
	return v
}

// exposedParam reads ?exposed=: true keeps workloads reachable from
// outside their cluster; false, like its absence, keeps every workload.
func exposedParam(q url.Values) (bool, error) {
	b, err := boolParam(q, "exposed")
	return b != nil && *b, err
}

func (s *Server) listWorkloads(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.WorkloadFilter{Namespace: q.Get("namespace"), Kind: q.Get("kind"), Name: q.Get("name"), Digest: q.Get("digest")}
	p, err := page(q)
	if err == nil {
		f.Exposed, err = exposedParam(q)
	}
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, err)
		return
	}
	if f.ClusterID, err = s.clusterParam(r, q); err != nil {
		s.dbError(w, r, err)
		return
	}
	ws, next, err := s.store.Workloads(r.Context(), f, p)
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	out := listPage[workloadView]{Items: []workloadView{}, NextPageToken: next}
	for i := range ws {
		out.Items = append(out.Items, toWorkloadView(&ws[i]))
	}
	s.writeJSON(w, http.StatusOK, out)
}

func (s *Server) getWorkload(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, err)
		return
	}
	wl, err := s.store.Workload(r.Context(), id)
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, toWorkloadView(wl))
}

type vulnerableImageView struct {
	Container string `json:"container"`
	Image     string `json:"image"`
	Digest    string `json:"digest"`
	ImageID   int64  `json:"imageID"`
	Critical  int    `json:"critical"`
	High      int    `json:"high"`
	Medium    int    `json:"medium"`
	Low       int    `json:"low"`
	Unknown   int    `json:"unknown"`
	Fixable   int    `json:"fixable"`
}

type vulnerableWorkloadView struct {
	workloadHeader
	Images []vulnerableImageView `json:"images"`
}

// defaultMinSeverity is the least severity a finding must have to make a
// workload vulnerable when the caller does not say: LOW counts, findings
// of severity NONE or UNKNOWN only when asked for with minSeverity.
const defaultMinSeverity = model.SeverityLow

func (s *Server) listVulnerableWorkloads(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.VulnerableWorkloadFilter{Namespace: q.Get("namespace"), Vulnerability: q.Get("vulnerability"), MinSeverity: defaultMinSeverity}
	p, err := page(q)
	if err == nil && q.Get("minSeverity") != "" {
		f.MinSeverity, err = severityParam(q.Get("minSeverity"))
	}
	var fixable *bool
	if err == nil {
		fixable, err = boolParam(q, "fixable")
	}
	if err == nil {
		f.Exposed, err = exposedParam(q)
	}
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, err)
		return
	}
	f.Fixable = fixable != nil && *fixable
	if f.ClusterID, err = s.clusterParam(r, q); err != nil {
		s.dbError(w, r, err)
		return
	}
	ws, next, err := s.store.VulnerableWorkloads(r.Context(), f, p)
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	out := listPage[vulnerableWorkloadView]{Items: []vulnerableWorkloadView{}, NextPageToken: next}
	for i := range ws {
		v := vulnerableWorkloadView{workloadHeader: toWorkloadHeader(&ws[i].Workload), Images: make([]vulnerableImageView, 0, len(ws[i].Images))}
		for _, im := range ws[i].Images {
			v.Images = append(v.Images, vulnerableImageView{Container: im.Container, Image: im.Image, Digest: im.Digest, ImageID: im.ImageID,
				Critical: im.Critical, High: im.High, Medium: im.Medium, Low: im.Low, Unknown: im.Unknown, Fixable: im.Fixable})
		}
		out.Items = append(out.Items, v)
	}
	s.writeJSON(w, http.StatusOK, out)
}
