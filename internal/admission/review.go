package admission

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"
	admissionv1 "k8s.io/api/admission/v1"
)

// maxImages bounds the distinct images one object may name. No real pod
// comes close; a request beyond it is denied rather than reviewed in part,
// so that padding a spec cannot smuggle an image past the policy.
const maxImages = 100

// Options configure a Reviewer.
type Options struct {
	Policy Policy
	Facts  Facts
	// NamespaceLabels returns a namespace's labels for the ns variable
	// (from an informer cache; it must be a lookup). Nil, or an error, gives
	// rules an empty label map.
	NamespaceLabels func(ctx context.Context, namespace string) (map[string]string, error)
	// Record is called for every decision, synchronously: make it cheap.
	Record func(Decision)
	Logger *slog.Logger
	Now    func() time.Time
	// CacheSize bounds the verdict cache (entries); default 10000.
	CacheSize int
}

// ImageDecision is what a review found about one container's image.
type ImageDecision struct {
	Container     string
	ContainerKind string
	Reference     string
	Digest        string
	Scanned       bool
	Rules         []string
	Findings      []string
	// Exemption is the reason of the exemption that took the whole image
	// out of review, if one did.
	Exemption string
}

// Decision is the record of one review.
type Decision struct {
	UID, Operation, Kind, Namespace, Name, User string
	Allowed                                     bool
	// Action is the strongest action the policy called for: deny, error,
	// warn, audit or allow. With DryRun or BreakGlass a deny is reported
	// but not enforced, so Allowed stays true.
	Action           string
	Rules            []string
	Message          string
	Warnings         []string
	DryRun           bool
	BreakGlass       bool
	BreakGlassReason string
	Images           []ImageDecision
	PolicyVersion    string
	Duration         time.Duration
	At               time.Time
}

// Reviewer answers admission reviews. It is safe for concurrent use.
type Reviewer struct {
	facts     Facts
	nsLabels  func(context.Context, string) (map[string]string, error)
	record    func(Decision)
	log       *slog.Logger
	now       func() time.Time
	cacheSize int
	policy    atomic.Pointer[compiledPolicy]
}

type compiledPolicy struct {
	Policy
	version string
	rules   []*compiledRule
	cache   *verdictCache
}

// NewReviewer compiles o.Policy and returns a Reviewer.
func NewReviewer(o Options) (*Reviewer, error) {
	if o.Facts == nil {
		return nil, errors.New("admission: Options.Facts is required")
	}
	r := &Reviewer{facts: o.Facts, nsLabels: o.NamespaceLabels, record: o.Record, log: o.Logger, now: o.Now, cacheSize: o.CacheSize}
	if r.record == nil {
		r.record = func(Decision) {}
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	if err := r.SetPolicy(o.Policy); err != nil {
		return nil, err
	}
	return r, nil
}

// SetPolicy compiles p and makes it the policy of every later review. The
// verdict cache starts empty, since verdicts belong to a policy version.
func (r *Reviewer) SetPolicy(p Policy) error {
	p = p.withDefaults()
	if err := p.Validate(); err != nil {
		return err
	}
	cp := &compiledPolicy{Policy: p, cache: newVerdictCache(r.cacheSize)}
	for _, rule := range p.Rules {
		cr, err := compileRule(rule)
		if err != nil {
			return err
		}
		cp.rules = append(cp.rules, cr)
	}
	data, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("hashing admission policy: %w", err)
	}
	sum := sha256.Sum256(data)
	cp.version = hex.EncodeToString(sum[:6])
	r.policy.Store(cp)
	return nil
}

// PolicyVersion identifies the policy in force: a hash of its content.
func (r *Reviewer) PolicyVersion() string { return r.policy.Load().version }

// Precompute evaluates every rule against an image whose scan just
// finished, so that the first review of it is a cache hit. Images that are
// not scanned or have no digest are ignored.
func (r *Reviewer) Precompute(ctx context.Context, f *ImageFacts) error {
	if f == nil || !f.Scanned || f.Digest == "" {
		return nil
	}
	r.policy.Load().verdict(ctx, f, nil)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("precomputing admission verdict for %s: %w", f.Reference, err)
	}
	return nil
}

// Review judges one admission request. It never fails: a review that
// cannot be completed allows the object with a warning and Action "error",
// because the webhook must not block a cluster through its own failure.
func (r *Reviewer) Review(ctx context.Context, req *admissionv1.AdmissionRequest) (resp *admissionv1.AdmissionResponse, d Decision) {
	started := time.Now()
	cp := r.policy.Load()
	d = Decision{Allowed: true, Action: ActionAllow, At: r.now(), DryRun: cp.DryRun, PolicyVersion: cp.version}
	if req == nil {
		d.Action, d.Message = ActionError, "no admission request"
		return &admissionv1.AdmissionResponse{Allowed: true}, d
	}
	d.UID, d.Operation, d.Kind = string(req.UID), string(req.Operation), req.Kind.Kind
	d.Namespace, d.Name, d.User = req.Namespace, req.Name, req.UserInfo.Username
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("admission review panicked", "uid", d.UID, "panic", p, "stack", string(debug.Stack()))
			d = erroredDecision(d, fmt.Errorf("internal error: %v", p))
		}
		d.Duration = time.Since(started)
		resp = responseFor(req.UID, d)
		r.record(d)
	}()
	st := &reviewState{cp: cp, d: &d, now: d.At}
	r.review(ctx, st, req)
	st.finish()
	switch {
	case d.BreakGlass:
		r.log.Warn("admission break-glass used", "uid", d.UID, "kind", d.Kind, "namespace", d.Namespace, "name", d.Name,
			"user", d.User, "reason", d.BreakGlassReason, "rules", d.Rules)
	case !d.Allowed:
		r.log.Info("admission denied", "uid", d.UID, "kind", d.Kind, "namespace", d.Namespace, "name", d.Name, "user", d.User, "rules", d.Rules)
	case d.Action == ActionError:
		r.log.Warn("admission review incomplete; allowed", "uid", d.UID, "kind", d.Kind, "namespace", d.Namespace, "name", d.Name, "message", d.Message)
	}
	return resp, d
}

func erroredDecision(d Decision, err error) Decision {
	d.Allowed, d.Action = true, ActionError
	d.Message = "Bulwark could not review this request and allowed it: " + truncate(err.Error(), 300)
	d.Warnings = []string{truncate("bulwark: review failed, allowed: "+err.Error(), maxWarningLength)}
	return d
}

func (r *Reviewer) review(ctx context.Context, st *reviewState, req *admissionv1.AdmissionRequest) {
	d := st.d
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return
	}
	if !reviewedKinds[req.Kind.Group+"/"+req.Kind.Kind] {
		return
	}
	ephemeral := req.SubResource == "ephemeralcontainers"
	if req.SubResource != "" && !(ephemeral && req.Kind.Kind == "Pod") {
		return
	}
	w, err := decodeWorkload(req.Kind.Kind, req.Object.Raw)
	if err != nil {
		st.fail(err)
		return
	}
	if d.Name == "" {
		d.Name = w.meta.Name
		if d.Name == "" && w.meta.GenerateName != "" {
			d.Name = w.meta.GenerateName + "*"
		}
	}
	if d.Namespace == "" {
		d.Namespace = w.meta.Namespace
	}
	if reason := breakGlassReason(w, st.cp.BreakGlassAnnotation); reason != "" {
		d.BreakGlass, d.BreakGlassReason = true, reason
	}
	// Images an UPDATE leaves as they were were admitted before; denying
	// them now would block scaling or relabelling a running workload.
	var unchanged map[container]bool
	if req.Operation == admissionv1.Update && len(req.OldObject.Raw) > 0 {
		if old, err := decodeWorkload(req.Kind.Kind, req.OldObject.Raw); err == nil {
			unchanged = map[container]bool{}
			for _, c := range old.containers {
				unchanged[c] = true
			}
		}
	}
	// Pods that kube-system controllers create for a workload, and mirror
	// pods of kubelets, are judged but not denied: the gate is the
	// workload, and a reschedule must never fail.
	user := req.UserInfo.Username
	byController := req.Kind.Kind == "Pod" && req.Operation == admissionv1.Create &&
		((w.controlled && strings.HasPrefix(user, "system:serviceaccount:kube-system:")) || strings.HasPrefix(user, "system:node:"))

	var containers []container
	for _, c := range w.containers {
		if c.image == "" || (ephemeral && (c.kind != KindEphemeralContainer || unchanged[c])) {
			continue
		}
		containers = append(containers, c)
	}
	refs := uniqueImages(containers)
	if len(refs) > maxImages {
		st.denyLimit(len(refs))
		return
	}

	nsLabels := map[string]string{}
	if r.nsLabels != nil && d.Namespace != "" {
		labels, err := r.nsLabels(ctx, d.Namespace)
		if err != nil {
			st.warn(priorityError, fmt.Sprintf("bulwark: namespace %s labels unavailable: %v", d.Namespace, err))
			st.raise(ActionError)
		} else if labels != nil {
			nsLabels = labels
		}
	}
	adapt := types.DefaultTypeAdapter.NativeToValue
	vars := &requestVars{
		ns:        adapt(map[string]any{"name": d.Namespace, "labels": nsLabels}),
		operation: types.String(d.Operation),
		user:      adapt(map[string]any{"name": user, "groups": nonNil(req.UserInfo.Groups)}),
		workload: adapt(map[string]any{
			"kind": d.Kind, "namespace": d.Namespace, "name": d.Name,
			"labels": nonNilMap(w.meta.Labels), "annotations": nonNilMap(w.meta.Annotations),
		}),
	}
	facts := r.lookup(ctx, st, refs)
	for _, c := range containers {
		st.judgeContainer(ctx, c, facts[c.image], vars, !unchanged[c] && !byController)
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func breakGlassReason(w *workloadObject, annotation string) string {
	reason := strings.TrimSpace(w.meta.Annotations[annotation])
	if reason == "" {
		reason = strings.TrimSpace(w.template.Annotations[annotation])
	}
	return truncate(reason, 300)
}

func uniqueImages(cs []container) []string {
	var refs []string
	seen := map[string]bool{}
	for _, c := range cs {
		if !seen[c.image] {
			seen[c.image] = true
			refs = append(refs, c.image)
		}
	}
	return refs
}

// lookedUp is the outcome of looking one reference up.
type lookedUp struct {
	facts *ImageFacts
	err   error
	// scanMissed says an inline scan was tried and did not finish in
	// time; scanFailed that it finished without a result.
	scanMissed, scanFailed bool
}

// lookup asks the provider about every reference not exempted as a whole,
// then, under the "scan" policy, scans the unscanned ones concurrently
// within one ScanBudget.
func (r *Reviewer) lookup(ctx context.Context, st *reviewState, refs []string) map[string]*lookedUp {
	out := make(map[string]*lookedUp, len(refs))
	var toScan []string
	for _, ref := range refs {
		if _, ok := st.cp.imageExemption(st.d.Namespace, ref, st.now); ok {
			continue
		}
		f, err := r.facts.Image(ctx, ref)
		if errors.Is(err, ErrNotFound) {
			f, err = nil, nil
		}
		out[ref] = &lookedUp{facts: f, err: err}
		if err == nil && !isScanned(f) && st.cp.Unscanned == UnscannedScan {
			toScan = append(toScan, ref)
		}
	}
	if len(toScan) == 0 {
		return out
	}
	budget := st.cp.ScanBudget
	if dl, ok := ctx.Deadline(); ok {
		// Leave time to answer before kube-apiserver gives up on us.
		budget = min(budget, time.Until(dl)-250*time.Millisecond)
	}
	sctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	var wg sync.WaitGroup
	results := make([]*ImageFacts, len(toScan))
	for i, ref := range toScan {
		wg.Go(func() {
			f, err := r.facts.ScanNow(sctx, ref)
			if err == nil && sctx.Err() == nil {
				results[i] = f
			}
		})
	}
	// Scans that ignore their context must not hold the review.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-sctx.Done():
	}
	for i, ref := range toScan {
		// A scan still running after the budget leaves results[i] racing;
		// only read it when every scan is done.
		select {
		case <-done:
			if f := results[i]; isScanned(f) {
				out[ref].facts = f
			} else if sctx.Err() != nil {
				out[ref].scanMissed = true
			} else {
				out[ref].scanFailed = true
			}
		default:
			out[ref].scanMissed = true
		}
	}
	return out
}

func isScanned(f *ImageFacts) bool { return f != nil && f.Scanned && f.Digest != "" }

// imageExemption returns the active exemption that covers a whole image.
func (cp *compiledPolicy) imageExemption(namespace, ref string, now time.Time) (Exemption, bool) {
	for _, e := range cp.Exemptions {
		if e.Vulnerability == "" && e.active(now) && e.appliesTo(namespace, ref) {
			return e, true
		}
	}
	return Exemption{}, false
}

// vulnerabilityExemptions returns the ids exempted for an image, sorted
// and deduplicated, as part of the verdict cache key.
func (cp *compiledPolicy) vulnerabilityExemptions(namespace, ref string, now time.Time) []string {
	var ids []string
	for _, e := range cp.Exemptions {
		if e.Vulnerability != "" && e.active(now) && e.appliesTo(namespace, ref) {
			ids = append(ids, strings.ToUpper(e.Vulnerability))
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// requestVars is the activation of a Match expression.
type requestVars struct {
	ns, workload, operation, user, image ref.Val
}

func (a *requestVars) ResolveName(name string) (any, bool) {
	switch name {
	case "ns":
		return a.ns, true
	case "workload":
		return a.workload, true
	case "operation":
		return a.operation, true
	case "user":
		return a.user, true
	case "image":
		return a.image, true
	}
	return nil, false
}

func (a *requestVars) Parent() interpreter.Activation { return nil }

func (st *reviewState) judgeContainer(ctx context.Context, c container, lu *lookedUp, base *requestVars, enforce bool) {
	im := ImageDecision{Container: c.name, ContainerKind: c.kind, Reference: c.image}
	defer func() { st.d.Images = append(st.d.Images, im) }()
	if lu == nil {
		e, _ := st.cp.imageExemption(st.d.Namespace, c.image, st.now)
		im.Exemption = e.Reason
		return
	}
	if lu.err != nil {
		st.warn(priorityError, fmt.Sprintf("bulwark: could not check %s: %v", shortRef(c.image), lu.err))
		st.raise(ActionError)
		return
	}
	f := lu.facts
	parts := parseReference(c.image)
	if f != nil {
		im.Digest = f.Digest
		if f.Registry != "" {
			parts.registry, parts.repository = f.Registry, f.Repository
		}
		if f.Tag != "" {
			parts.tag = f.Tag
		}
		if f.Digest != "" {
			parts.digest = f.Digest
		}
	}
	if !isScanned(f) {
		st.unscanned(c, lu, enforce)
		return
	}
	im.Scanned = true
	vars := *base
	vars.image = types.DefaultTypeAdapter.NativeToValue(map[string]any{
		"registry": parts.registry, "repository": parts.repository, "tag": parts.tag, "digest": parts.digest,
		"reference": c.image, "containerName": c.name, "containerKind": c.kind,
	})
	exempted := st.cp.vulnerabilityExemptions(st.d.Namespace, c.image, st.now)
	var v *imageVerdict
	for i, rule := range st.cp.rules {
		if rule.match != nil {
			val, _, err := rule.match.ContextEval(ctx, &vars)
			if err != nil {
				st.ruleFailed(rule.ID, fmt.Errorf("rule %s: match: %w", rule.ID, err))
				continue
			}
			if b, ok := val.(types.Bool); !ok || !bool(b) {
				continue
			}
		}
		if v == nil {
			v = st.cp.verdict(ctx, f, exempted)
		}
		o := v.outcomes[i]
		if o.err != nil {
			st.ruleFailed(rule.ID, o.err)
			continue
		}
		if !o.fired {
			continue
		}
		im.Rules = append(im.Rules, rule.ID)
		for _, fd := range o.findings {
			if !slices.Contains(im.Findings, fd) {
				im.Findings = append(im.Findings, fd)
			}
		}
		st.fired(rule.Rule, c, o.findings, enforce)
	}
}
