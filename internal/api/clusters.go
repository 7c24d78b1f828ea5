package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/bulwarkhq/bulwark/internal/cluster"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// maxClusterBody bounds a cluster request: a kubeconfig of the largest
// size the server keeps, as a JSON string in which, at worst, every byte
// is escaped as \u00XX, and the other fields.
const maxClusterBody = 6*cluster.MaxKubeconfigBytes + 64<<10

// clusterRequest adds a cluster. Kubeconfig is write-only: responses
// show only the context and server it names.
type clusterRequest struct {
	Name       string `json:"name"`
	Source     string `json:"source,omitempty"`
	Kubeconfig string `json:"kubeconfig,omitempty"`
	Context    string `json:"context,omitempty"`
}

type clusterView struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	Source     string     `json:"source"`
	Context    string     `json:"context,omitempty"`
	Server     string     `json:"server,omitempty"`
	Status     string     `json:"status"`
	Error      string     `json:"error,omitempty"`
	Version    string     `json:"version,omitempty"`
	Namespaces int        `json:"namespaces"`
	Workloads  int        `json:"workloads"`
	Pods       int        `json:"pods"`
	CreatedAt  time.Time  `json:"createdAt"`
	UpdatedAt  time.Time  `json:"updatedAt"`
	SyncedAt   *time.Time `json:"syncedAt,omitempty"`
}

func toClusterView(c *store.Cluster) clusterView {
	return clusterView{ID: c.ID, Name: c.Name, Source: c.Source, Context: c.Context, Server: c.Server, Status: c.Status, Error: c.Error,
		Version: c.Version, Namespaces: c.Namespaces, Workloads: c.Workloads, Pods: c.Pods, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
		SyncedAt: timePtr(c.SyncedAt)}
}

func (s *Server) listClusters(w http.ResponseWriter, r *http.Request) {
	cs, err := s.store.Clusters(r.Context())
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	out := make([]clusterView, 0, len(cs))
	for i := range cs {
		out = append(out, toClusterView(&cs[i]))
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

func (s *Server) createCluster(w http.ResponseWriter, r *http.Request) {
	var req clusterRequest
	if err := decodeLimited(w, r, &req, maxClusterBody); err != nil {
		s.writeError(w, r, http.StatusBadRequest, err)
		return
	}
	if req.Source == "" {
		req.Source = store.ClusterSourceKubeconfig
	}
	setAudit(r, req.Name, map[string]any{"source": req.Source})
	if req.Name == "" || len(req.Name) > 100 {
		s.writeError(w, r, http.StatusBadRequest, errors.New("name is required (at most 100 characters)"))
		return
	}
	c := &store.Cluster{Name: req.Name, Source: req.Source}
	var sealed []byte
	switch req.Source {
	case store.ClusterSourceKubeconfig:
		if req.Kubeconfig == "" {
			s.writeError(w, r, http.StatusBadRequest, errors.New("kubeconfig is required for source kubeconfig"))
			return
		}
		kc, err := cluster.Prepare([]byte(req.Kubeconfig), req.Context)
		if errors.Is(err, cluster.ErrBadKubeconfig) {
			s.writeError(w, r, http.StatusBadRequest, err)
			return
		}
		if err != nil {
			s.writeError(w, r, http.StatusInternalServerError, fmt.Errorf("preparing the kubeconfig of cluster %q: %w", req.Name, err))
			return
		}
		c.Context, c.Server = kc.Context, kc.Server
		setAudit(r, req.Name, map[string]any{"source": req.Source, "context": kc.Context, "server": kc.Server})
		if sealed, err = s.box.Seal(kc.Data, cluster.SealContext(req.Name)); err != nil {
			s.writeError(w, r, http.StatusInternalServerError, fmt.Errorf("sealing the kubeconfig of cluster %q: %w", req.Name, err))
			return
		}
	case store.ClusterSourceInCluster:
		if req.Kubeconfig != "" || req.Context != "" {
			s.writeError(w, r, http.StatusBadRequest, errors.New("source in-cluster takes no kubeconfig or context: the server uses its own service account"))
			return
		}
		// Two entries for the cluster the server runs in would watch it
		// twice under two names.
		existing, err := s.store.Clusters(r.Context())
		if err != nil {
			s.dbError(w, r, err)
			return
		}
		for _, e := range existing {
			if e.Source == store.ClusterSourceInCluster {
				s.writeError(w, r, http.StatusConflict, fmt.Errorf("cluster %q already watches the cluster the server runs in", e.Name))
				return
			}
		}
	default:
		s.writeError(w, r, http.StatusBadRequest, fmt.Errorf("unknown source %q (want %s or %s)", req.Source,
			store.ClusterSourceKubeconfig, store.ClusterSourceInCluster))
		return
	}
	if err := s.store.CreateCluster(r.Context(), c, sealed); err != nil {
		s.dbError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusCreated, toClusterView(c))
}

func (s *Server) clusterByPath(w http.ResponseWriter, r *http.Request) (*store.Cluster, bool) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, err)
		return nil, false
	}
	c, err := s.store.Cluster(r.Context(), id)
	if err != nil {
		s.dbError(w, r, err)
		return nil, false
	}
	return c, true
}

func (s *Server) getCluster(w http.ResponseWriter, r *http.Request) {
	if c, ok := s.clusterByPath(w, r); ok {
		s.writeJSON(w, http.StatusOK, toClusterView(c))
	}
}

func (s *Server) deleteCluster(w http.ResponseWriter, r *http.Request) {
	c, ok := s.clusterByPath(w, r)
	if !ok {
		return
	}
	setAudit(r, c.Name, nil)
	if err := s.store.DeleteCluster(r.Context(), c.ID); err != nil {
		s.dbError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type namespaceView struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
}

func (s *Server) listClusterNamespaces(w http.ResponseWriter, r *http.Request) {
	c, ok := s.clusterByPath(w, r)
	if !ok {
		return
	}
	nss, err := s.store.ClusterNamespaces(r.Context(), c.ID)
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	out := make([]namespaceView, 0, len(nss))
	for _, n := range nss {
		out = append(out, namespaceView{n.Name, n.Labels})
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

// clusterParam reads ?cluster= as an id or a name; a cluster that does
// not exist is ErrNotFound. A number is tried as an id first, then as a
// name.
func (s *Server) clusterParam(r *http.Request, q url.Values) (int64, error) {
	v := q.Get("cluster")
	if v == "" {
		return 0, nil
	}
	if id, err := strconv.ParseInt(v, 10, 64); err == nil && id > 0 {
		c, err := s.store.Cluster(r.Context(), id)
		if err == nil {
			return c.ID, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return 0, err
		}
	}
	c, err := s.store.ClusterByName(r.Context(), v)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return 0, fmt.Errorf("no cluster with id or name %q: %w", v, store.ErrNotFound)
		}
		return 0, err
	}
	return c.ID, nil
}
