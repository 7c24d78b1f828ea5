package admission

import (
	"fmt"
	"slices"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apitypes "k8s.io/apimachinery/pkg/types"
)

// Bounds on what a response carries. kube-apiserver truncates long
// warnings and kubectl prints each on its own line, so they stay short and
// few; the deny message is read in a terminal.
const (
	maxWarnings        = 6
	maxWarningLength   = 120
	maxMessageLength   = 1024
	maxMessageFindings = 10
)

// Warning priorities, most important first: a reader who sees only the
// first few should see why the policy was not enforced.
const (
	priorityOverride = iota
	priorityDeny
	priorityError
	priorityWarn
	priorityUnscanned
)

// Pseudo rule ids for decisions no policy rule made.
const (
	ruleUnscanned  = "unscanned"
	ruleImageLimit = "image-limit"
)

var actionRank = map[string]int{ActionAllow: 0, ActionAudit: 1, ActionWarn: 2, ActionError: 3, ActionDeny: 4}

type warning struct {
	priority int
	text     string
}

// denial is one reason to deny: a rule, an image and what it found.
type denial struct {
	rule, ref  string
	containers []string
	findings   []string
	note       string // replaces findings for pseudo rules
}

// reviewState accumulates one review's outcome into its Decision.
type reviewState struct {
	cp          *compiledPolicy
	d           *Decision
	now         time.Time
	warnings    []warning
	denials     []*denial
	errs        []string
	failedRules map[string]bool
}

func (st *reviewState) raise(action string) {
	if actionRank[action] > actionRank[st.d.Action] {
		st.d.Action = action
	}
}

func (st *reviewState) warn(priority int, text string) {
	st.warnings = append(st.warnings, warning{priority, truncate(text, maxWarningLength)})
}

func (st *reviewState) addRule(id string) {
	if !slices.Contains(st.d.Rules, id) {
		st.d.Rules = append(st.d.Rules, id)
	}
}

func (st *reviewState) fail(err error) {
	st.raise(ActionError)
	st.errs = append(st.errs, err.Error())
	st.warn(priorityError, "bulwark: review failed, allowed: "+err.Error())
}

func (st *reviewState) ruleFailed(id string, err error) {
	if st.failedRules[id] {
		return
	}
	if st.failedRules == nil {
		st.failedRules = map[string]bool{}
	}
	st.failedRules[id] = true
	st.raise(ActionError)
	st.errs = append(st.errs, err.Error())
	st.warn(priorityError, fmt.Sprintf("bulwark: rule %s failed and was skipped: %v", id, err))
}

func (st *reviewState) deny(rule string, c container, findings []string, note string) {
	st.raise(ActionDeny)
	st.addRule(rule)
	for _, dn := range st.denials {
		if dn.rule == rule && dn.ref == c.image {
			if !slices.Contains(dn.containers, c.name) {
				dn.containers = append(dn.containers, c.name)
			}
			return
		}
	}
	st.denials = append(st.denials, &denial{rule: rule, ref: c.image, containers: []string{c.name}, findings: findings, note: note})
}

func (st *reviewState) denyLimit(n int) {
	st.raise(ActionDeny)
	st.addRule(ruleImageLimit)
	st.denials = append(st.denials, &denial{rule: ruleImageLimit,
		note: fmt.Sprintf("the object names %d distinct images; Bulwark reviews at most %d", n, maxImages)})
}

// notEnforced is a deny that does not apply: the image is unchanged by an
// UPDATE, or a controller or kubelet creates the pod.
func (st *reviewState) notEnforced(rule string, c container) {
	st.raise(ActionWarn)
	st.addRule(rule)
	st.warn(priorityWarn, fmt.Sprintf("bulwark: %s violates %s (not enforced: image unchanged or pod made by a controller)", shortRef(c.image), rule))
}

func (st *reviewState) fired(rule Rule, c container, findings []string, enforce bool) {
	switch rule.Action {
	case ActionDeny:
		if !enforce {
			st.notEnforced(rule.ID, c)
			return
		}
		st.deny(rule.ID, c, findings, "")
	case ActionWarn:
		st.raise(ActionWarn)
		st.addRule(rule.ID)
		st.warn(priorityWarn, fitList(fmt.Sprintf("bulwark: %s: %s has ", rule.ID, shortRef(c.image)), shortFindings(findings), maxWarningLength, "violates the rule"))
	case ActionAudit:
		st.raise(ActionAudit)
		st.addRule(rule.ID)
	}
}

func (st *reviewState) unscanned(c container, lu *lookedUp, enforce bool) {
	switch {
	case st.cp.Unscanned == UnscannedDeny && enforce:
		st.deny(ruleUnscanned, c, nil, "has not been scanned by Bulwark yet (unscanned policy: deny)")
	case st.cp.Unscanned == UnscannedDeny:
		st.notEnforced(ruleUnscanned, c)
	case lu.scanMissed:
		st.raise(ActionWarn)
		st.warn(priorityUnscanned, fmt.Sprintf("bulwark: %s not scanned within %s; allowed", shortRef(c.image), st.cp.ScanBudget))
	case lu.scanFailed:
		st.raise(ActionWarn)
		st.warn(priorityUnscanned, fmt.Sprintf("bulwark: %s could not be scanned inline; allowed", shortRef(c.image)))
	default:
		st.raise(ActionWarn)
		st.warn(priorityUnscanned, fmt.Sprintf("bulwark: %s is not scanned yet; allowed", shortRef(c.image)))
	}
}

// finish turns the accumulated outcome into the Decision's verdict,
// message and warnings.
func (st *reviewState) finish() {
	d := st.d
	override := ""
	switch {
	case d.BreakGlass:
		override = "break-glass"
		st.warn(priorityOverride, fmt.Sprintf("bulwark: break-glass used and recorded (%s); policy not enforced", d.BreakGlassReason))
	case d.DryRun:
		override = "dry run"
	}
	if len(st.denials) > 0 {
		d.Message = st.denyMessage()
		if override == "" {
			d.Allowed = false
		} else {
			d.Message = override + ", not enforced: " + d.Message
			for _, dn := range st.denials {
				st.warn(priorityDeny, wouldDeny(override, dn))
			}
		}
	} else if len(st.errs) > 0 {
		d.Message = truncate("Bulwark could not complete the review and allowed the object: "+strings.Join(st.errs, "; "), maxMessageLength)
	}
	slices.SortStableFunc(st.warnings, func(a, b warning) int { return a.priority - b.priority })
	var ws []string
	for _, w := range st.warnings {
		if !slices.Contains(ws, w.text) {
			ws = append(ws, w.text)
		}
	}
	if len(ws) > maxWarnings {
		more := len(ws) - (maxWarnings - 1)
		ws = append(ws[:maxWarnings-1], fmt.Sprintf("bulwark: %d more warnings; see the Bulwark admission log", more))
	}
	d.Warnings = ws
}

// wouldDeny is the warning for a denial that was not enforced.
func wouldDeny(override string, dn *denial) string {
	base := fmt.Sprintf("bulwark: %s: would have been denied by rule %s", override, dn.rule)
	if dn.ref == "" {
		return truncate(base+": "+dn.note, maxWarningLength)
	}
	base += ": " + shortRef(dn.ref)
	if len(dn.findings) == 0 {
		note := dn.note
		if note == "" {
			note = "violates it"
		}
		return truncate(base+" "+note, maxWarningLength)
	}
	return fitList(base+" has ", shortFindings(dn.findings), maxWarningLength, "")
}

// denyMessage names every denying rule, image and (up to ten) findings,
// and how to get past it in an emergency.
func (st *reviewState) denyMessage() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Bulwark denied %s %s: ", st.d.Kind, objectName(st.d.Namespace, st.d.Name))
	// Ten findings in all, so that several denying images still make a
	// message one can read in a terminal.
	perDenial := max(2, maxMessageFindings/len(st.denials))
	for i, dn := range st.denials {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "rule %s: ", dn.rule)
		if dn.ref == "" {
			b.WriteString(dn.note)
			continue
		}
		fmt.Fprintf(&b, "image %s (%s %s) ", dn.ref, pluralize("container", len(dn.containers)), strings.Join(dn.containers, ", "))
		switch {
		case dn.note != "":
			b.WriteString(dn.note)
		case len(dn.findings) == 0:
			b.WriteString("violates it")
		default:
			b.WriteString("has ")
			b.WriteString(joinMore(dn.findings, perDenial))
		}
	}
	msg := truncate(b.String(), maxMessageLength-120)
	return msg + fmt.Sprintf(". Fix the image or ask for an exemption; in an emergency set annotation %s=<reason>.", st.cp.BreakGlassAnnotation)
}

func objectName(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

func pluralize(word string, n int) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// joinMore joins up to n items and counts the rest.
func joinMore(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:n], ", ") + fmt.Sprintf(" and %d more", len(items)-n)
}

// shortFindings keeps the id of each finding ("CVE-2025-4802 (CRITICAL…"
// becomes "CVE-2025-4802"), for warnings that must fit in a line.
func shortFindings(fs []string) []string {
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		if i := strings.IndexByte(f, ' '); i > 0 {
			f = f[:i]
		}
		out = append(out, f)
	}
	return out
}

// fitList appends as many items to prefix as fit in max bytes, then
// "and N more"; with no items it appends empty.
func fitList(prefix string, items []string, max int, empty string) string {
	if len(items) == 0 {
		return truncate(prefix+empty, max)
	}
	s := prefix
	for i, it := range items {
		sep := ""
		if i > 0 {
			sep = ", "
		}
		rest := len(items) - i - 1
		tail := ""
		if rest > 0 {
			tail = fmt.Sprintf(" and %d more", rest)
		}
		if len(s)+len(sep)+len(it)+len(tail) > max {
			if i == 0 {
				return truncate(s+it, max)
			}
			return s + fmt.Sprintf(" and %d more", len(items)-i)
		}
		s += sep + it
	}
	return s
}

// shortRef keeps a reference readable in a warning: long ones lose the
// start (the registry), which is the least telling part.
func shortRef(ref string) string {
	const max = 48
	if len(ref) <= max {
		return ref
	}
	if i := strings.IndexByte(ref, '@'); i > 0 && i < len(ref)-12 {
		ref = ref[:i+1] + ref[i+1:i+20] + "…"
		if len(ref) <= max {
			return ref
		}
	}
	cut := len(ref) - max + len("…")
	for cut < len(ref) && ref[cut]&0xC0 == 0x80 {
		cut++
	}
	return "…" + ref[cut:]
}

func responseFor(uid apitypes.UID, d Decision) *admissionv1.AdmissionResponse {
	resp := &admissionv1.AdmissionResponse{UID: uid, Allowed: d.Allowed, Warnings: d.Warnings}
	if !d.Allowed {
		resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: 403, Reason: metav1.StatusReasonForbidden, Message: d.Message}
	}
	if d.Action != ActionAllow {
		resp.AuditAnnotations = map[string]string{"action": d.Action}
		if len(d.Rules) > 0 {
			resp.AuditAnnotations["rules"] = strings.Join(d.Rules, ",")
		}
		if d.BreakGlass {
			resp.AuditAnnotations["break-glass"] = d.BreakGlassReason
		}
		if d.DryRun {
			resp.AuditAnnotations["dry-run"] = "true"
		}
	}
	return resp
}
