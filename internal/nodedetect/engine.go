package nodedetect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/google/cel-go/cel"

	"github.com/bulwarkhq/bulwark/internal/detect"
	"github.com/bulwarkhq/bulwark/internal/rulestate"
	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
)

// ErrCompile is wrapped by every error about a rule expression.
var ErrCompile = errors.New("rule does not compile")

// Defaults of Options and of rule state.
const (
	DefaultGroupWindow    = 5 * time.Minute
	DefaultMaxGroups      = 10_000
	DefaultMaxContainers  = 10_000
	DefaultDownloadWindow = 15 * time.Minute
)

// Options configure an Engine. The zero value is usable.
type Options struct {
	// GroupWindow is how long after a group's first event further matches
	// join it instead of raising a new alert; default 5m.
	GroupWindow time.Duration
	// MaxGroups bounds the open groups; default 10,000.
	MaxGroups int
	// MaxContainers bounds the containers (and hosts) whose recent
	// downloaders are remembered; default 10,000. Only containers where a
	// downloader ran in the last DownloadWindow take a place.
	MaxContainers int
	// DownloadWindow is how long after a downloader ran executing its
	// output (or a drifted binary) counts as process.downloaded; default
	// 15m.
	DownloadWindow time.Duration
	// Lists extend the embedded domain lists, or add new ones, by name;
	// an entry "!domain" takes a domain out. See LoadLists.
	Lists map[string][]string
	// Now is the clock for events without timestamps; default time.Now.
	Now func() time.Time
	// Logger receives rule evaluation errors; default slog.Default().
	Logger *slog.Logger
}

// Meta is what the caller knows about an event beyond the event itself.
type Meta struct {
	// Node is the node whose sensor reported the event, Cluster the
	// cluster it belongs to.
	Node, Cluster string
	// EvidenceID identifies the stored event; alerts list it.
	EvidenceID string
}

// Engine evaluates a fixed set of compiled rules over a stream of sensor
// events of one cluster and keeps their correlation state, rule state and
// alert groups. Its methods are safe for concurrent use but serialised by
// one mutex: the engine is meant to be fed by one goroutine and flushed by
// a ticker.
type Engine struct {
	rules  []*compiledRule
	byKind map[string][]*compiledRule
	opts   Options

	mu        sync.Mutex
	view      *view
	downloads *downloads
	groups    *rulestate.Groups[Alert]
}

type compiledRule struct {
	Rule
	match, output, key cel.Program
	// limited rules (all but the unmodified built-in ones) run with a cost
	// limit and a deadline.
	limited bool
	// state of stateful rules; nil otherwise.
	state  *rulestate.State
	errors uint64
}

// New type-checks every expression of every rule and builds an Engine.
// The error names the rule, the field and the CEL message; all problems
// are reported at once. Duplicate ids are an error, so a user rule cannot
// silently replace a built-in one.
func New(rules []Rule, o Options) (*Engine, error) {
	o.GroupWindow = orDefault(o.GroupWindow, DefaultGroupWindow)
	o.MaxGroups = orDefault(o.MaxGroups, DefaultMaxGroups)
	o.MaxContainers = orDefault(o.MaxContainers, DefaultMaxContainers)
	o.DownloadWindow = orDefault(o.DownloadWindow, DefaultDownloadWindow)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	lists, err := buildLists(o.Lists)
	if err != nil {
		return nil, err
	}
	env, err := newEnv(lists)
	if err != nil {
		return nil, err
	}
	builtin, err := builtinByID()
	if err != nil {
		return nil, err
	}
	e := &Engine{opts: o, byKind: map[string][]*compiledRule{}}
	seen := map[string]string{}
	var errs []error
	for _, r := range rules {
		if prev, dup := seen[r.ID]; dup {
			errs = append(errs, fmt.Errorf("rule %s (%s): %w: duplicate id, also defined in %s", r.ID, r.Source, ErrCompile, prev))
			continue
		}
		seen[r.ID] = r.Source
		cr, err := compileRule(env, lists, r, builtin)
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
	for _, r := range e.rules {
		for _, k := range kinds {
			if len(r.Kinds) == 0 || slices.Contains(r.Kinds, k) {
				e.byKind[k] = append(e.byKind[k], r)
			}
		}
	}
	e.view = newView()
	e.downloads = newDownloads(o.MaxContainers, o.DownloadWindow)
	e.groups = rulestate.NewGroups(o.MaxGroups, o.GroupWindow, reportAlert)
	return e, nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

func compileRule(env *cel.Env, lists map[string]domainSet, r Rule, builtin map[string]Rule) (*compiledRule, error) {
	if err := validate(r); err != nil {
		return nil, fmt.Errorf("rule %s (%s): %w: %w", r.ID, r.Source, ErrInvalidRule, err)
	}
	fail := func(field string, err error) error {
		return fmt.Errorf("rule %s (%s): field %s: %w: %w", r.ID, r.Source, field, ErrCompile, err)
	}
	r = cloneRule(r)
	// The embedded rules are reviewed code; cost tracking would only slow
	// them down. Everything else gets the limit.
	cr := &compiledRule{Rule: r, limited: !sameAs(r, builtin)}
	check := func(ast *cel.Ast) error { return checkLists(ast, lists) }
	var err error
	if cr.match, err = detect.Program(env, r.Match, cel.BoolType, cr.limited, check); err != nil {
		return nil, fail("match", err)
	}
	if r.Output != "" {
		if cr.output, err = detect.Program(env, r.Output, cel.StringType, cr.limited, check); err != nil {
			return nil, fail("output", err)
		}
	}
	if s := r.State; s != nil {
		if cr.key, err = detect.Program(env, s.Key, cel.StringType, cr.limited, check); err != nil {
			return nil, fail("state.key", err)
		}
		cr.state = detect.NewState(s)
	}
	return cr, nil
}

// sameAs reports whether r is exactly one of the embedded rules.
func sameAs(r Rule, builtin map[string]Rule) bool {
	b, ok := builtin[r.ID]
	if !ok || b.Match != r.Match || b.Output != r.Output || (b.State == nil) != (r.State == nil) {
		return false
	}
	return b.State == nil || b.State.Key == r.State.Key
}

var builtinByID = sync.OnceValues(func() (map[string]Rule, error) {
	rs, err := builtinRules()
	if err != nil {
		return nil, err
	}
	m := map[string]Rule{}
	for _, r := range rs {
		m[r.ID] = r
	}
	return m, nil
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

// Process judges one event against the rules of its kind and returns the
// alerts to deliver now: one for each new group, plus updates of groups
// that had to be evicted to make room. Matches that join an open group
// return nothing here; Flush reports them. The event should have passed
// wire.Event.Validate; Process only reads it.
func (e *Engine) Process(ev *wire.Event, meta Meta) []Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ev.Time.IsZero() {
		// Validate refuses such events; judge a stray one at the clock
		// rather than at the zero time, which would corrupt windows.
		c := *ev
		c.Time = e.opts.Now()
		ev = &c
	}
	var downloaded bool
	var source string
	if ev.Kind == wire.KindExec {
		downloaded, source = e.downloads.observe(ev, meta.Node)
	}
	rules := e.byKind[ev.Kind]
	if len(rules) == 0 {
		return nil
	}
	e.view.reset(ev, meta.Node, meta.Cluster, downloaded, source)
	defer e.view.clear()
	var out []Alert
	for _, r := range rules {
		ok, err := detect.EvalBool(context.Background(), r.match, e.view, r.limited)
		if err != nil {
			e.evalError(r, "match", meta, err)
			continue
		}
		if !ok {
			continue
		}
		weight := 1
		var stateKey string
		if r.State != nil {
			if stateKey, err = detect.EvalString(context.Background(), r.key, e.view, r.limited); err != nil {
				e.evalError(r, "state.key", meta, err)
				continue
			}
			if weight = r.state.Observe(stateKey, ev.Time); weight == 0 {
				continue
			}
		}
		out = e.fire(r, ev, meta, stateKey, weight, out)
	}
	return out
}

// fire adds a match to its group, opening one (and returning its alert)
// when there is none within the window.
func (e *Engine) fire(r *compiledRule, ev *wire.Event, meta Meta, stateKey string, weight int, out []Alert) []Alert {
	t := ev.Time
	key := groupKey(r.ID, stateKey, scopeKey(ev, meta.Node), ev.Process.Exe)
	out, joined := e.groups.Join(key, meta.EvidenceID, t, weight, out)
	if joined {
		return out
	}
	summary := r.Title
	if r.output != nil {
		s, err := detect.EvalString(context.Background(), r.output, e.view, r.limited)
		if err != nil {
			e.evalError(r, "output", meta, err)
		} else if s != "" {
			summary = s
		}
	}
	return e.groups.Open(key, firstAlert(r, ev, meta, summary), meta.EvidenceID, t, weight, out)
}

// Flush returns an update for every group whose Count grew since it was
// last reported, ordered by first event, and forgets the groups whose
// window has closed at now.
func (e *Engine) Flush(now time.Time) []Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.groups.Flush(now, nil)
}

// evalError logs a rule's runtime failure on the 1st, 2nd, 4th, 8th, …
// occurrence, so that a rule broken for every event cannot flood the log.
// The rule is not disabled: an attacker who can make a rule fail must not
// be able to switch it off.
func (e *Engine) evalError(r *compiledRule, field string, meta Meta, err error) {
	r.errors++
	if bits.OnesCount64(r.errors) != 1 {
		return
	}
	e.opts.Logger.Warn("runtime detection rule failed", "rule", r.ID, "field", field,
		"node", meta.Node, "cluster", meta.Cluster, "event", meta.EvidenceID, "failures", r.errors, "err", err)
}
