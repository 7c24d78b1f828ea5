package detect

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"

	"github.com/bulwarkhq/bulwark/internal/rulestate"
)

// ErrCompile is wrapped by every error about a rule expression.
var ErrCompile = errors.New("rule does not compile")

// Defaults of Options.
const (
	DefaultGroupWindow = 5 * time.Minute
	DefaultMaxGroups   = 10_000
	// streamingIDs bounds the audit IDs of streaming requests remembered
	// between their ResponseStarted and ResponseComplete events.
	streamingIDs = 4096
)

// Options configure an Engine. The zero value is usable.
type Options struct {
	// GroupWindow is how long after a group's first event further matches
	// join it instead of raising a new alert; default 5m.
	GroupWindow time.Duration
	// MaxGroups bounds the open groups; default 10,000.
	MaxGroups int
	// Now is the clock for events without timestamps; default time.Now.
	Now func() time.Time
	// Logger receives rule evaluation errors; default slog.Default().
	Logger *slog.Logger
}

// Engine evaluates a fixed set of compiled rules over a stream of audit
// events and keeps their state and alert groups. Its methods are safe for
// concurrent use, but Process and Flush are serialised by one mutex: the
// engine is meant to be fed by one goroutine and flushed by a ticker.
type Engine struct {
	rules []*compiledRule
	opts  Options

	mu        sync.Mutex
	index     ruleIndex
	view      eventView
	groups    *rulestate.Groups[Alert]
	streaming *rulestate.LRU[struct{}]
}

type compiledRule struct {
	Rule
	match, output, key cel.Program
	// limited rules (all but the unmodified built-in ones) run with a cost
	// limit and a deadline.
	limited bool
	anyVerb bool
	verbs   []string
	// state of stateful rules; nil otherwise.
	state  *rulestate.State
	errors uint64
}

// Compile type-checks every expression of every rule and builds an Engine.
// The error names the rule, the field and the CEL message; all problems are
// reported at once. Duplicate ids are an error, so a user rule cannot
// silently replace a built-in one.
func Compile(rules []Rule, o Options) (*Engine, error) {
	if o.GroupWindow <= 0 {
		o.GroupWindow = DefaultGroupWindow
	}
	if o.MaxGroups <= 0 {
		o.MaxGroups = DefaultMaxGroups
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	e := &Engine{opts: o}
	seen := map[string]string{}
	var errs []error
	for _, r := range rules {
		if prev, dup := seen[r.ID]; dup {
			errs = append(errs, fmt.Errorf("rule %s (%s): %w: duplicate id, also defined in %s", r.ID, r.Source, ErrCompile, prev))
			continue
		}
		seen[r.ID] = r.Source
		cr, err := compileRule(r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		e.rules = append(e.rules, cr)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	sort.Slice(e.rules, func(i, j int) bool { return e.rules[i].ID < e.rules[j].ID })
	e.index = newRuleIndex(e.rules)
	e.groups = rulestate.NewGroups(o.MaxGroups, o.GroupWindow, reportAlert)
	e.streaming = rulestate.NewLRU[struct{}](streamingIDs)
	return e, nil
}

func compileRule(r Rule) (*compiledRule, error) {
	if err := validate(r); err != nil {
		return nil, fmt.Errorf("rule %s (%s): %w: %w", r.ID, r.Source, ErrInvalidRule, err)
	}
	fail := func(field string, err error) error {
		return fmt.Errorf("rule %s (%s): field %s: %w: %w", r.ID, r.Source, field, ErrCompile, err)
	}
	env, err := celEnv()
	if err != nil {
		return nil, err
	}
	r = cloneRule(r)
	// The embedded rules are reviewed code; cost tracking would only slow
	// them down. Everything else gets the limit.
	limited := !isBuiltin(r)
	cr := &compiledRule{Rule: r, limited: limited}
	if cr.match, err = Program(env, r.Match, cel.BoolType, limited, checkFields); err != nil {
		return nil, fail("match", err)
	}
	if r.Output != "" {
		if cr.output, err = Program(env, r.Output, cel.StringType, limited, checkFields); err != nil {
			return nil, fail("output", err)
		}
	}
	cr.anyVerb = len(r.Verbs) == 0 || slices.Contains(r.Verbs, "*")
	cr.verbs = r.Verbs
	if s := r.State; s != nil {
		if cr.key, err = Program(env, s.Key, cel.StringType, limited, checkFields); err != nil {
			return nil, fail("state.key", err)
		}
		cr.state = NewState(s)
	}
	return cr, nil
}

// cloneRule copies the slices and state of r, so that the caller's rule and
// the engine's do not alias.
func cloneRule(r Rule) Rule {
	r.Verbs = slices.Clone(r.Verbs)
	r.Resources = slices.Clone(r.Resources)
	r.Tags = slices.Clone(r.Tags)
	if r.State != nil {
		s := *r.State
		r.State = &s
	}
	return r
}

// isBuiltin reports whether r is exactly one of the embedded rules.
func isBuiltin(r Rule) bool {
	b, ok := builtinByID()[r.ID]
	if !ok || b.Match != r.Match || b.Output != r.Output || (b.State == nil) != (r.State == nil) {
		return false
	}
	return b.State == nil || b.State.Key == r.State.Key
}

var builtinByID = sync.OnceValue(func() map[string]Rule {
	m := map[string]Rule{}
	for _, r := range Builtin() {
		m[r.ID] = r
	}
	return m
})

// Rules returns the compiled rules, sorted by id, with state defaults
// filled in.
func (e *Engine) Rules() []Rule {
	out := make([]Rule, len(e.rules))
	for i, r := range e.rules {
		out[i] = cloneRule(r.Rule)
	}
	return out
}

// ruleIndex finds the rules an event's verb and resource can concern, so
// that most events reach few rules and no CEL.
type ruleIndex struct {
	byResource map[string][]*compiledRule // "pods", "pods/exec"
	anyRes     []*compiledRule            // rules without resources, or with "*"
	cache      map[indexKey][]*compiledRule
}

type indexKey struct{ verb, resource, subresource string }

// maxIndexCache bounds the memoised candidate lists: resource names in
// audit events come from request paths, which clients choose.
const maxIndexCache = 4096

func newRuleIndex(rules []*compiledRule) ruleIndex {
	ix := ruleIndex{byResource: map[string][]*compiledRule{}, cache: map[indexKey][]*compiledRule{}}
	for _, r := range rules {
		if len(r.Resources) == 0 || slices.Contains(r.Resources, "*") {
			ix.anyRes = append(ix.anyRes, r)
			continue
		}
		for _, res := range r.Resources {
			ix.byResource[res] = append(ix.byResource[res], r)
		}
	}
	return ix
}

func (ix *ruleIndex) candidates(verb, resource, subresource string) []*compiledRule {
	k := indexKey{verb, resource, subresource}
	if c, ok := ix.cache[k]; ok {
		return c
	}
	res := resource
	if subresource != "" {
		res = resource + "/" + subresource
	}
	var out []*compiledRule
	add := func(rs []*compiledRule) {
		for _, r := range rs {
			if (r.anyVerb || slices.Contains(r.verbs, verb)) && !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	add(ix.anyRes)
	if resource != "" {
		add(ix.byResource[res])
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if len(ix.cache) < maxIndexCache {
		ix.cache[k] = out
	}
	return out
}

// describeResource is resource or resource/subresource.
func describeResource(resource, subresource string) string {
	if subresource == "" {
		return resource
	}
	return strings.Join([]string{resource, subresource}, "/")
}
