package posture

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/interpreter"
)

// object is one thing a check is evaluated against.
type object struct {
	res Resource
	act interpreter.Activation
}

func newObject(res Resource, vars map[string]any) object {
	act, err := interpreter.NewActivation(vars)
	if err != nil {
		// NewActivation only fails for unsupported binding types; a map
		// always works.
		panic(err)
	}
	return object{res: res, act: act}
}

// Evaluate judges every object of in against every check and returns the
// findings ordered by check id, then resource. Runtime failures of single
// checks do not stop the run: they come back as a joined error of
// *EvalError next to the findings. Only a cancelled ctx ends it early; then
// the findings are nil and the error wraps ctx.Err().
func (e *Engine) Evaluate(ctx context.Context, in *Input) ([]Finding, error) {
	if in == nil {
		in = &Input{}
	}
	need := map[string]bool{}
	for _, c := range e.checks {
		need[c.Target] = true
	}
	byTarget := buildObjects(in, need)

	var findings []Finding
	var errs []error
	for _, c := range e.checks {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("evaluating posture checks: %w", err)
		}
		objs := byTarget[c.Target]
		var evalErr *EvalError
		for i, o := range objs {
			if i%256 == 255 {
				if err := ctx.Err(); err != nil {
					return nil, fmt.Errorf("evaluating posture check %s: %w", c.ID, err)
				}
			}
			f, failed, err := c.judge(ctx, o)
			if err != nil {
				if ctx.Err() != nil {
					return nil, fmt.Errorf("evaluating posture check %s: %w", c.ID, ctx.Err())
				}
				if evalErr == nil {
					evalErr = &EvalError{CheckID: c.ID, Resource: o.res, Err: err}
				}
				evalErr.Failed++
				if evalErr.Failed >= maxErrorsPerCheck && i+1 < len(objs) {
					evalErr.Abandoned = true
					evalErr.Failed += len(objs) - i - 1
					break
				}
				continue
			}
			if failed {
				findings = append(findings, f)
			}
		}
		if evalErr != nil {
			errs = append(errs, evalErr)
		}
	}
	sort.SliceStable(findings, func(i, j int) bool {
		a, b := findings[i], findings[j]
		if a.CheckID != b.CheckID {
			return a.CheckID < b.CheckID
		}
		if a.Resource.Kind != b.Resource.Kind {
			return a.Resource.Kind < b.Resource.Kind
		}
		if a.Resource.Namespace != b.Resource.Namespace {
			return a.Resource.Namespace < b.Resource.Namespace
		}
		return a.Resource.Name < b.Resource.Name
	})
	return findings, errors.Join(errs...)
}

func (c *compiledCheck) judge(ctx context.Context, o object) (Finding, bool, error) {
	if c.match != nil {
		v, err := c.eval(ctx, c.match, o)
		if err != nil {
			return Finding{}, false, fmt.Errorf("match: %w", err)
		}
		b, ok := v.(types.Bool)
		if !ok {
			return Finding{}, false, fmt.Errorf("match returned %s, want bool", v.Type().TypeName())
		}
		if !b {
			return Finding{}, false, nil
		}
	}
	v, err := c.eval(ctx, c.violation, o)
	if err != nil {
		return Finding{}, false, fmt.Errorf("violation: %w", err)
	}
	var evidence []string
	switch val := v.(type) {
	case types.Bool:
		if !val {
			return Finding{}, false, nil
		}
		if c.evidence != nil {
			ev, err := c.eval(ctx, c.evidence, o)
			if err != nil {
				return Finding{}, false, fmt.Errorf("evidence: %w", err)
			}
			if evidence, err = evidenceOf(ev); err != nil {
				return Finding{}, false, fmt.Errorf("evidence: %w", err)
			}
		}
	case traits.Lister:
		if val.Size() == types.IntZero {
			return Finding{}, false, nil
		}
		if evidence, err = evidenceOf(val); err != nil {
			return Finding{}, false, fmt.Errorf("violation: %w", err)
		}
	default:
		return Finding{}, false, fmt.Errorf("violation returned %s, want bool or list(string)", v.Type().TypeName())
	}
	return Finding{
		CheckID:     c.ID,
		Title:       c.Title,
		Severity:    c.Severity,
		Frameworks:  slices.Clone(c.Frameworks),
		Resource:    o.res,
		Evidence:    evidence,
		Remediation: c.Remediation,
	}, true, nil
}

func (c *compiledCheck) eval(ctx context.Context, p cel.Program, o object) (ref.Val, error) {
	if c.limited {
		v, _, err := p.ContextEval(ctx, o.act)
		return v, err
	}
	v, _, err := p.Eval(o.act)
	return v, err
}

// evidenceOf turns a string or list of strings into bounded evidence lines,
// so that a check cannot blow up a finding's size.
func evidenceOf(v ref.Val) ([]string, error) {
	var out []string
	add := func(s string) {
		s = strings.TrimSpace(s)
		if s == "" {
			return
		}
		if len(s) > maxEvidenceLength {
			s = truncate(s, maxEvidenceLength) + "…"
		}
		out = append(out, s)
	}
	switch val := v.(type) {
	case types.String:
		add(string(val))
	case traits.Lister:
		n := 0
		for it := val.Iterator(); it.HasNext() == types.True; {
			e := it.Next()
			s, ok := e.(types.String)
			if !ok {
				return nil, fmt.Errorf("evidence item is %s, want string", e.Type().TypeName())
			}
			if n == maxEvidenceItems {
				out = append(out, fmt.Sprintf("… %d more", int64(val.Size().(types.Int))-int64(n)))
				break
			}
			add(string(s))
			n++
		}
	default:
		return nil, fmt.Errorf("got %s, want string or list(string)", v.Type().TypeName())
	}
	return out, nil
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
