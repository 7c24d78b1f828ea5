package detect

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stypes "k8s.io/apimachinery/pkg/types"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// t0 is when the test streams start.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var auditSeq atomic.Int64

// Identities the fixtures act as.
var (
	admin      = authnv1.UserInfo{Username: "alice@example.com", Groups: []string{"platform-admins", "system:authenticated"}}
	bob        = authnv1.UserInfo{Username: "bob@example.com", Groups: []string{"developers", "system:authenticated"}}
	anonymous  = authnv1.UserInfo{Username: "system:anonymous", Groups: []string{"system:unauthenticated"}}
	node1      = authnv1.UserInfo{Username: "system:node:node-1", Groups: []string{"system:nodes", "system:authenticated"}}
	kcm        = authnv1.UserInfo{Username: "system:kube-controller-manager", Groups: []string{"system:authenticated"}}
	scheduler  = authnv1.UserInfo{Username: "system:kube-scheduler", Groups: []string{"system:authenticated"}}
	rsCtrl     = saUser("kube-system", "replicaset-controller", "")
	nsCtrl     = saUser("kube-system", "namespace-controller", "")
	csrCtrl    = saUser("kube-system", "certificate-controller", "")
	webPod     = saUser("app", "web", "web-7d9f8-abcde")
	argoCD     = saUser("argocd", "argocd-application-controller", "argocd-application-controller-0")
	prometheus = saUser("monitoring", "prometheus", "prometheus-0")
)

func saUser(ns, name, pod string) authnv1.UserInfo {
	u := authnv1.UserInfo{
		Username: "system:serviceaccount:" + ns + ":" + name,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
	}
	if pod != "" {
		u.Extra = map[string]authnv1.ExtraValue{
			podTokenExtra:                          {pod},
			"authentication.kubernetes.io/pod-uid": {"0b6c2f9e-1111-2222-3333-444455556666"},
		}
	}
	return u
}

type eventOption func(*auditv1.Event)

// ev builds a ResponseComplete event with code 200 at t0. resource may
// name a subresource: "pods/exec".
func ev(verb, resource string, opts ...eventOption) auditv1.Event {
	res, sub, _ := strings.Cut(resource, "/")
	e := auditv1.Event{
		Level:          auditv1.LevelRequest,
		AuditID:        k8stypes.UID(fmt.Sprintf("a-%06d", auditSeq.Add(1))),
		Stage:          auditv1.StageResponseComplete,
		Verb:           verb,
		User:           admin,
		SourceIPs:      []string{"10.0.0.7"},
		UserAgent:      "kubectl/v1.34.1 (linux/amd64) kubernetes/abc123",
		RequestURI:     "/api/v1/" + res,
		ResponseStatus: &metav1.Status{Code: 200},
		StageTimestamp: metav1.NewMicroTime(t0),
	}
	if res != "" {
		e.ObjectRef = &auditv1.ObjectReference{Resource: res, Subresource: sub, APIVersion: "v1"}
	}
	for _, o := range opts {
		o(&e)
	}
	return e
}

func in(ns, name string) eventOption {
	return func(e *auditv1.Event) {
		e.ObjectRef.Namespace, e.ObjectRef.Name = ns, name
		e.RequestURI = "/api/v1/namespaces/" + ns + "/" + e.ObjectRef.Resource
		if name != "" {
			e.RequestURI += "/" + name
		}
		if e.ObjectRef.Subresource != "" {
			e.RequestURI += "/" + e.ObjectRef.Subresource
		}
	}
}

func named(name string) eventOption {
	return func(e *auditv1.Event) { e.ObjectRef.Name = name }
}

func by(u authnv1.UserInfo) eventOption { return func(e *auditv1.Event) { e.User = u } }

func code(c int32) eventOption {
	return func(e *auditv1.Event) { e.ResponseStatus = &metav1.Status{Code: c} }
}

func stage(s auditv1.Stage) eventOption { return func(e *auditv1.Event) { e.Stage = s } }

func agent(ua string) eventOption { return func(e *auditv1.Event) { e.UserAgent = ua } }

func uri(u string) eventOption { return func(e *auditv1.Event) { e.RequestURI = u } }

func at(t time.Time) eventOption {
	return func(e *auditv1.Event) { e.StageTimestamp = metav1.NewMicroTime(t) }
}

func auditID(id string) eventOption {
	return func(e *auditv1.Event) { e.AuditID = k8stypes.UID(id) }
}

func request(json string) eventOption {
	return func(e *auditv1.Event) {
		e.RequestObject = &runtime.Unknown{Raw: []byte(json), ContentType: "application/json"}
	}
}

func response(json string) eventOption {
	return func(e *auditv1.Event) {
		e.ResponseObject = &runtime.Unknown{Raw: []byte(json), ContentType: "application/json"}
	}
}

func impersonating(u authnv1.UserInfo) eventOption {
	return func(e *auditv1.Event) { e.ImpersonatedUser = &u }
}

func apiGroup(g string) eventOption {
	return func(e *auditv1.Event) { e.ObjectRef.APIGroup = g }
}

// exec is a kubectl exec session as kube-apiserver logs it when it starts.
func exec(ns, pod string, opts ...eventOption) auditv1.Event {
	o := append([]eventOption{in(ns, pod), stage(auditv1.StageResponseStarted), code(101),
		func(e *auditv1.Event) {
			e.RequestURI += "?command=sh&command=-c&command=id&container=app&stdin=true&tty=true"
		}}, opts...)
	return ev("create", "pods/exec", o...)
}

// podJSON is a Pod manifest with the given spec fields added to one
// container "app" and its pod spec.
func podJSON(specExtra, containerExtra string) string {
	c := `{"name":"app","image":"registry.example/app:1.2"` + containerExtra + `}`
	return `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"app"},"spec":{"containers":[` + c + `]` + specExtra + `}}`
}

// deploymentJSON wraps a pod spec's extras in a Deployment template.
func deploymentJSON(specExtra, containerExtra string) string {
	c := `{"name":"app","image":"registry.example/app:1.2"` + containerExtra + `}`
	return `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"replicas":2,"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[` + c + `]` + specExtra + `}}}}`
}

func cronJobJSON(specExtra string) string {
	return `{"apiVersion":"batch/v1","kind":"CronJob","metadata":{"name":"nightly"},"spec":{"schedule":"0 2 * * *","jobTemplate":{"spec":{"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"job","image":"busybox"}]` + specExtra + `}}}}}}`
}

func hostPathJSON(path string) string {
	return `,"volumes":[{"name":"cfg","configMap":{"name":"cfg"}},{"name":"host","hostPath":{"path":"` + path + `"}}]`
}

func bindingJSON(kind, role string, subjects ...string) string {
	return `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"` + kind + `","metadata":{"name":"b"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"` + role + `"},"subjects":[` + strings.Join(subjects, ",") + `]}`
}

const (
	saSubject    = `{"kind":"ServiceAccount","name":"deployer","namespace":"ci"}`
	groupSubject = `{"kind":"Group","apiGroup":"rbac.authorization.k8s.io","name":"sre"}`
)

func roleJSON(verbs, resources string) string {
	return `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"r"},"rules":[{"apiGroups":[""],"resources":` + resources + `,"verbs":` + verbs + `}]}`
}

// repeat builds n events, the i-th from f(i).
func repeat(n int, f func(i int) auditv1.Event) []auditv1.Event {
	out := make([]auditv1.Event, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

func authnUser(name string, groups ...string) authnv1.UserInfo {
	return authnv1.UserInfo{Username: name, Groups: groups}
}
