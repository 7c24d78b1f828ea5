package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/model"
	"github.com/bulwarkhq/bulwark/internal/store"
)

func page(q url.Values) (store.Page, error) {
	p := store.Page{Cursor: q.Get("pageToken")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxPageSize {
			return p, fmt.Errorf("limit must be 1..%d", store.MaxPageSize)
		}
		p.Limit = n
	}
	return p, nil
}

func boolParam(q url.Values, name string) (*bool, error) {
	v := q.Get(name)
	if v == "" {
		return nil, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return nil, fmt.Errorf("%s must be true or false", name)
	}
	return &b, nil
}

func int64Param(q url.Values, name string) (int64, error) {
	v := q.Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s must be a positive id", name)
	}
	return n, nil
}

func severityParam(v string) (model.Severity, error) {
	sev, ok := model.ParseSeverity(v)
	if !ok {
		return "", fmt.Errorf("unknown severity %q (want CRITICAL, HIGH, MEDIUM, LOW, NONE or UNKNOWN)", v)
	}
	return sev, nil
}

// listPage is the shape of every paged listing.
type listPage[T any] struct {
	Items         []T    `json:"items"`
	NextPageToken string `json:"nextPageToken,omitempty"`
}

type imageRefView struct {
	RegistryID int64     `json:"registryID,omitempty"`
	Host       string    `json:"host"`
	Repository string    `json:"repository"`
	Tag        string    `json:"tag,omitempty"`
	FirstSeen  time.Time `json:"firstSeenAt"`
	LastSeen   time.Time `json:"lastSeenAt"`
}

type imageView struct {
	ID          int64          `json:"id"`
	Digest      string         `json:"digest"`
	Platform    string         `json:"platform,omitempty"`
	OS          string         `json:"os,omitempty"`
	FirstSeenAt time.Time      `json:"firstSeenAt"`
	LastSeenAt  time.Time      `json:"lastSeenAt"`
	ScannedAt   *time.Time     `json:"scannedAt,omitempty"`
	MatchedAt   *time.Time     `json:"matchedAt,omitempty"`
	DBBuiltAt   *time.Time     `json:"dbBuiltAt,omitempty"`
	Packages    int            `json:"packages"`
	Summary     store.Summary  `json:"summary"`
	Warnings    []string       `json:"warnings,omitempty"`
	Refs        []imageRefView `json:"refs"`
}

func toImageView(im store.Image) imageView {
	v := imageView{ID: im.ID, Digest: im.Digest, Platform: im.Platform, OS: im.OS, FirstSeenAt: im.FirstSeenAt, LastSeenAt: im.LastSeenAt,
		ScannedAt: timePtr(im.ScannedAt), MatchedAt: timePtr(im.MatchedAt), DBBuiltAt: timePtr(im.DBBuiltAt), Packages: im.Packages,
		Summary: im.Summary, Warnings: im.Warnings, Refs: []imageRefView{}}
	for _, r := range im.Refs {
		v.Refs = append(v.Refs, imageRefView{r.RegistryID, r.Host, r.Repository, r.Tag, r.FirstSeen, r.LastSeen})
	}
	return v
}

func (s *Server) listImages(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var f store.ImageFilter
	var err error
	p, err := page(q)
	if err == nil {
		f.RegistryID, err = s.registryParam(r, q)
	}
	if err == nil && q.Get("severity") != "" {
		f.MinSeverity, err = severityParam(q.Get("severity"))
	}
	if err == nil {
		f.Scanned, err = boolParam(q, "scanned")
	}
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, err)
		return
	}
	f.Repository, f.Digest = q.Get("repository"), q.Get("digest")
	imgs, next, err := s.store.Images(r.Context(), f, p)
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	out := listPage[imageView]{Items: []imageView{}, NextPageToken: next}
	for _, im := range imgs {
		out.Items = append(out.Items, toImageView(im))
	}
	s.writeJSON(w, http.StatusOK, out)
}

// registryParam reads ?registry= as an id or a name.
func (s *Server) registryParam(r *http.Request, q url.Values) (int64, error) {
	v := q.Get("registry")
	if v == "" {
		return 0, nil
	}
	if id, err := strconv.ParseInt(v, 10, 64); err == nil && id > 0 {
		return id, nil
	}
	reg, err := s.store.RegistryByName(r.Context(), v)
	if err != nil {
		return 0, fmt.Errorf("registry %q: %w", v, store.ErrNotFound)
	}
	return reg.ID, nil
}

func (s *Server) getImage(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, err)
		return
	}
	im, err := s.store.Image(r.Context(), id)
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, toImageView(*im))
}

func (s *Server) getPackages(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, err)
		return
	}
	pkgs, err := s.store.Packages(r.Context(), id)
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"items": pkgs})
}

type findingView struct {
	ID            int64      `json:"id"`
	ImageID       int64      `json:"imageID"`
	ImageDigest   string     `json:"imageDigest"`
	Vulnerability string     `json:"vulnerability"`
	Aliases       []string   `json:"aliases,omitempty"`
	Package       string     `json:"package"`
	Version       string     `json:"version"`
	Ecosystem     string     `json:"ecosystem,omitempty"`
	PURL          string     `json:"purl,omitempty"`
	Path          string     `json:"path,omitempty"`
	FixedVersion  string     `json:"fixedVersion,omitempty"`
	Fixable       bool       `json:"fixable"`
	Severity      string     `json:"severity"`
	CVSS          float64    `json:"cvss,omitempty"`
	Summary       string     `json:"summary,omitempty"`
	FirstSeenAt   time.Time  `json:"firstSeenAt"`
	FixedAt       *time.Time `json:"fixedAt,omitempty"`
}

func (s *Server) listFindings(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.FindingFilter{Package: q.Get("package"), Vulnerability: q.Get("vulnerability"), Repository: q.Get("repository"),
		State: q.Get("state"), Sort: q.Get("sort")}
	p, err := page(q)
	if err == nil && q.Get("severity") != "" {
		for _, v := range strings.Split(q.Get("severity"), ",") {
			var sev model.Severity
			if sev, err = severityParam(v); err != nil {
				break
			}
			f.Severities = append(f.Severities, sev)
		}
	}
	if err == nil && q.Get("minSeverity") != "" {
		f.MinSeverity, err = severityParam(q.Get("minSeverity"))
	}
	if err == nil {
		f.Fixable, err = boolParam(q, "fixable")
	}
	if err == nil {
		f.RegistryID, err = s.registryParam(r, q)
	}
	if err == nil {
		f.ImageID, err = int64Param(q, "image")
	}
	if errors.Is(err, store.ErrNotFound) {
		s.writeError(w, r, http.StatusNotFound, err)
		return
	}
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, err)
		return
	}
	findings, next, err := s.store.Findings(r.Context(), f, p)
	if err != nil {
		if strings.HasPrefix(err.Error(), "unknown ") {
			s.writeError(w, r, http.StatusBadRequest, err)
			return
		}
		s.dbError(w, r, err)
		return
	}
	out := listPage[findingView]{Items: []findingView{}, NextPageToken: next}
	for _, x := range findings {
		out.Items = append(out.Items, findingView{ID: x.ID, ImageID: x.ImageID, ImageDigest: x.ImageDigest, Vulnerability: x.VulnID, Aliases: x.Aliases,
			Package: x.PackageName, Version: x.PackageVersion, Ecosystem: x.Ecosystem, PURL: x.PURL, Path: x.Path, FixedVersion: x.FixedVersion,
			Fixable: x.FixedVersion != "", Severity: x.Severity, CVSS: x.CVSS, Summary: x.Summary, FirstSeenAt: x.FirstSeenAt, FixedAt: timePtr(x.FixedAt)})
	}
	s.writeJSON(w, http.StatusOK, out)
}
