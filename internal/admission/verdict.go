package admission

import (
	"container/list"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/interpreter"
)

// Bounds on what one rule contributes to a verdict.
const (
	maxFindings      = 50
	maxFindingLength = 300
	defaultCacheSize = 10_000
)

// ruleOutcome is one rule's violation result for one image.
type ruleOutcome struct {
	fired    bool
	findings []string
	err      error
}

// imageVerdict holds the violation results of every rule of a policy, in
// rule order, for one (image, scan, vulnerability exemptions) key.
type imageVerdict struct {
	outcomes []ruleOutcome
}

// verdictKey identifies an image verdict: the repository and digest (a
// digest alone could be mirrored under other names), the scan time and the
// vulnerability ids exempted for this request, sorted. The policy version
// is implicit: every compiled policy owns its cache.
func verdictKey(f *ImageFacts, exempted []string) string {
	var b strings.Builder
	b.Grow(len(f.Registry) + len(f.Repository) + len(f.Digest) + 24)
	b.WriteString(f.Registry)
	b.WriteByte('/')
	b.WriteString(f.Repository)
	b.WriteByte('@')
	b.WriteString(f.Digest)
	b.WriteByte('|')
	b.WriteString(strconv.FormatInt(f.ScannedAt.UnixNano(), 36))
	for _, id := range exempted {
		b.WriteByte('|')
		b.WriteString(id)
	}
	return b.String()
}

// verdictCache is a mutex-guarded LRU. Reviews are short and the critical
// section is a map lookup and a list move, so one lock is enough at the
// rates a webhook sees.
type verdictCache struct {
	mu    sync.Mutex
	max   int
	ll    *list.List
	items map[string]*list.Element
}

type cacheEntry struct {
	key string
	v   *imageVerdict
}

func newVerdictCache(max int) *verdictCache {
	if max <= 0 {
		max = defaultCacheSize
	}
	return &verdictCache{max: max, ll: list.New(), items: map[string]*list.Element{}}
}

func (c *verdictCache) get(key string) (*imageVerdict, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[key]
	if !ok {
		return nil, false
	}
	c.ll.MoveToFront(e)
	return e.Value.(*cacheEntry).v, true
}

func (c *verdictCache) put(key string, v *imageVerdict) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		e.Value.(*cacheEntry).v = v
		c.ll.MoveToFront(e)
		return
	}
	c.items[key] = c.ll.PushFront(&cacheEntry{key: key, v: v})
	for c.ll.Len() > c.max {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*cacheEntry).key)
	}
}

func (c *verdictCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

// severityRank orders severities most severe first; unknown strings last.
func severityRank(s string) int {
	switch strings.ToUpper(s) {
	case "CRITICAL":
		return 0
	case "HIGH":
		return 1
	case "MEDIUM":
		return 2
	case "LOW":
		return 3
	}
	return 4
}

// visibleVulnerabilities drops exempted vulnerabilities (by id or alias,
// case-insensitively), adjusts the summary to match and orders the rest
// most severe first, so that messages name the worst ones.
func visibleVulnerabilities(f *ImageFacts, exempted []string) ([]Vulnerability, Summary) {
	sum := f.Summary
	vulns := make([]Vulnerability, 0, len(f.Vulnerabilities))
	for _, v := range f.Vulnerabilities {
		if isExempted(v, exempted) {
			switch severityRank(v.Severity) {
			case 0:
				sum.Critical--
			case 1:
				sum.High--
			case 2:
				sum.Medium--
			case 3:
				sum.Low--
			default:
				sum.Unknown--
			}
			if v.Fixable {
				sum.Fixable--
			}
			continue
		}
		vulns = append(vulns, v)
	}
	for _, p := range []*int{&sum.Critical, &sum.High, &sum.Medium, &sum.Low, &sum.Unknown, &sum.Fixable} {
		*p = max(*p, 0)
	}
	slices.SortStableFunc(vulns, func(a, b Vulnerability) int {
		if d := severityRank(a.Severity) - severityRank(b.Severity); d != 0 {
			return d
		}
		if a.CVSS != b.CVSS {
			if a.CVSS > b.CVSS {
				return -1
			}
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	return vulns, sum
}

func isExempted(v Vulnerability, exempted []string) bool {
	for _, id := range exempted {
		if strings.EqualFold(v.ID, id) {
			return true
		}
		for _, a := range v.Aliases {
			if strings.EqualFold(a, id) {
				return true
			}
		}
	}
	return false
}

// imageVars is the activation of a Violation expression.
type imageVars struct {
	image, summary, vulnerabilities ref.Val
}

func (a *imageVars) ResolveName(name string) (any, bool) {
	switch name {
	case "image":
		return a.image, true
	case "summary":
		return a.summary, true
	case "vulnerabilities":
		return a.vulnerabilities, true
	}
	return nil, false
}

func (a *imageVars) Parent() interpreter.Activation { return nil }

func newImageVars(f *ImageFacts, exempted []string) *imageVars {
	vulns, sum := visibleVulnerabilities(f, exempted)
	list := make([]any, len(vulns))
	for i, v := range vulns {
		aliases := v.Aliases
		if aliases == nil {
			aliases = []string{}
		}
		list[i] = map[string]any{
			"id": v.ID, "aliases": aliases, "severity": strings.ToUpper(v.Severity),
			"cvss": v.CVSS, "fixable": v.Fixable, "package": v.Package,
			"version": v.Version, "fixedVersion": v.FixedVersion,
		}
	}
	adapt := types.DefaultTypeAdapter.NativeToValue
	return &imageVars{
		image: adapt(map[string]any{
			"registry": f.Registry, "repository": f.Repository, "digest": f.Digest,
			"scannedAt": f.ScannedAt.UTC(),
		}),
		summary: adapt(map[string]int64{
			"critical": int64(sum.Critical), "high": int64(sum.High), "medium": int64(sum.Medium),
			"low": int64(sum.Low), "unknown": int64(sum.Unknown), "fixable": int64(sum.Fixable),
			"total": int64(len(vulns)),
		}),
		vulnerabilities: adapt(list),
	}
}

// judgeImage evaluates every rule's Violation for one image. Failures are
// per rule: a rule that errors (the cost limit, a missing key) does not
// fire, and the error is reported with the outcome.
func (cp *compiledPolicy) judgeImage(ctx context.Context, f *ImageFacts, exempted []string) *imageVerdict {
	vars := newImageVars(f, exempted)
	v := &imageVerdict{outcomes: make([]ruleOutcome, len(cp.rules))}
	for i, r := range cp.rules {
		val, _, err := r.violation.ContextEval(ctx, vars)
		if err != nil {
			v.outcomes[i].err = fmt.Errorf("rule %s: violation: %w", r.ID, err)
			continue
		}
		v.outcomes[i] = outcomeOf(r.ID, val)
	}
	return v
}

func outcomeOf(id string, v ref.Val) ruleOutcome {
	switch val := v.(type) {
	case types.Bool:
		return ruleOutcome{fired: bool(val)}
	case traits.Lister:
		n := int(val.Size().(types.Int))
		if n == 0 {
			return ruleOutcome{}
		}
		// The same vulnerability in two copies of a package reads the
		// same: it is named once.
		out := ruleOutcome{fired: true}
		seen := map[string]bool{}
		more := 0
		for it := val.Iterator(); it.HasNext() == types.True; {
			e := it.Next()
			s, ok := e.(types.String)
			if !ok {
				return ruleOutcome{err: fmt.Errorf("rule %s: violation item is %s, want string", id, e.Type().TypeName())}
			}
			f := truncate(strings.TrimSpace(string(s)), maxFindingLength)
			if seen[f] {
				continue
			}
			seen[f] = true
			if len(out.findings) == maxFindings {
				more++
				continue
			}
			out.findings = append(out.findings, f)
		}
		if more > 0 {
			out.findings = append(out.findings, fmt.Sprintf("and %d more", more))
		}
		return out
	}
	return ruleOutcome{err: fmt.Errorf("rule %s: violation returned %s, want bool or list(string)", id, v.Type().TypeName())}
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence,
// marking the cut with "…".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	n -= len("…")
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

// verdict returns the cached verdict for f, computing it on a miss. Only
// complete verdicts are cached: one cut short by ctx is not.
func (cp *compiledPolicy) verdict(ctx context.Context, f *ImageFacts, exempted []string) *imageVerdict {
	key := verdictKey(f, exempted)
	if v, ok := cp.cache.get(key); ok {
		return v
	}
	v := cp.judgeImage(ctx, f, exempted)
	if ctx.Err() == nil {
		cp.cache.put(key, v)
	}
	return v
}
