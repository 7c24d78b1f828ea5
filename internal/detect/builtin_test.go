package detect

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

func newBuiltinEngine(t testing.TB) *Engine {
	t.Helper()
	e, err := Compile(Builtin(), Options{})
	if err != nil {
		t.Fatalf("Compile(Builtin()): %v", err)
	}
	return e
}

type ruleCase struct {
	rule   string
	name   string
	events []auditv1.Event
	fires  bool
}

func one(e auditv1.Event) []auditv1.Event { return []auditv1.Event{e} }

func builtinCases() []ruleCase {
	spread := func(i int) eventOption { return at(t0.Add(time.Duration(i) * time.Second)) }
	return []ruleCase{
		{"pod-exec", "kubectl exec into an app pod", one(exec("app", "web")), true},
		{"pod-exec", "websocket exec logged as get", one(exec("app", "web", func(e *auditv1.Event) { e.Verb = "get" })), true},
		{"pod-exec", "exec refused", one(exec("app", "web", stage(auditv1.StageResponseComplete), code(403))), false},
		{"pod-exec", "exec into kube-system is the other rule", one(exec("kube-system", "etcd-cp-1")), false},
		{"pod-exec-kube-system", "exec into etcd", one(exec("kube-system", "etcd-cp-1")), true},
		{"pod-exec-kube-system", "exec into an app pod", one(exec("app", "web")), false},
		{"pod-attach", "attach", one(ev("create", "pods/attach", in("app", "web"), stage(auditv1.StageResponseStarted), code(101))), true},
		{"pod-attach", "attach refused", one(ev("create", "pods/attach", in("app", "web"), code(403))), false},
		{"pod-portforward", "port-forward", one(ev("create", "pods/portforward", in("app", "db"), stage(auditv1.StageResponseStarted), code(101))), true},
		{"pod-portforward", "reading the pod", one(ev("get", "pods", in("app", "db"))), false},
		{"ephemeral-container", "kubectl debug", one(ev("patch", "pods/ephemeralcontainers", in("app", "web"), request(podJSON(`,"ephemeralContainers":[{"name":"debugger","image":"busybox"}]`, "")))), true},
		{"ephemeral-container", "kubelet updating pod status", one(ev("patch", "pods/status", in("app", "web"), by(node1))), false},
		{"node-proxy", "kubelet run through the proxy", one(ev("create", "nodes/proxy", named("node-1"), uri("/api/v1/nodes/node-1/proxy/run/kube-system/etcd-cp-1/etcd?cmd=id"))), true},
		{"node-proxy", "prometheus scraping kubelet metrics", one(ev("get", "nodes/proxy", named("node-1"), by(prometheus), uri("/api/v1/nodes/node-1/proxy/metrics/cadvisor"))), false},
		{"kubectl-from-pod", "kubectl run from a pod", one(ev("create", "pods", in("app", "x"), by(webPod), request(podJSON("", "")))), true},
		{"kubectl-from-pod", "a controller in a pod creating pods", one(ev("create", "deployments", in("app", "x"), by(argoCD), agent("argocd-application-controller/v2.14"), request(deploymentJSON("", "")))), false},
		{"privileged-container", "privileged deployment", one(ev("create", "deployments", in("app", "web"), apiGroup("apps"), request(deploymentJSON("", `,"securityContext":{"privileged":true}`)))), true},
		{"privileged-container", "hardened deployment", one(ev("create", "deployments", in("app", "web"), apiGroup("apps"), request(deploymentJSON("", `,"securityContext":{"privileged":false,"runAsNonRoot":true}`)))), false},
		{"privileged-container", "pod of a privileged deployment created by its controller", one(ev("create", "pods", in("app", "web-1"), by(rsCtrl), request(podJSON("", `,"securityContext":{"privileged":true}`)))), false},
		{"host-pid-ipc", "hostPID pod", one(ev("create", "pods", in("app", "web"), request(podJSON(`,"hostPID":true`, "")))), true},
		{"host-pid-ipc", "ordinary pod", one(ev("create", "pods", in("app", "web"), request(podJSON(`,"hostPID":false`, "")))), false},
		{"host-network", "hostNetwork daemonset", one(ev("create", "daemonsets", in("app", "agent"), request(deploymentJSON(`,"hostNetwork":true`, "")))), true},
		{"host-network", "ordinary daemonset", one(ev("create", "daemonsets", in("app", "agent"), request(deploymentJSON("", "")))), false},
		{"hostpath-root", "hostPath /", one(ev("create", "pods", in("app", "web"), request(podJSON(hostPathJSON("/"), "")))), true},
		{"hostpath-root", "hostPath /data", one(ev("create", "pods", in("app", "web"), request(podJSON(hostPathJSON("/data"), "")))), false},
		{"hostpath-runtime-socket", "docker.sock", one(ev("create", "pods", in("ci", "builder"), request(podJSON(hostPathJSON("/var/run/docker.sock"), "")))), true},
		{"hostpath-runtime-socket", "containerd socket in a CronJob", one(ev("create", "cronjobs", in("ci", "builder"), request(cronJobJSON(hostPathJSON("/run/containerd/containerd.sock"))))), true},
		{"hostpath-runtime-socket", "log directory", one(ev("create", "pods", in("ci", "builder"), request(podJSON(hostPathJSON("/var/log"), "")))), false},
		{"hostpath-sensitive", "kubernetes PKI", one(ev("create", "pods", in("app", "web"), request(podJSON(hostPathJSON("/etc/kubernetes/pki/"), "")))), true},
		{"hostpath-sensitive", "kubelet directory", one(ev("create", "deployments", in("app", "web"), request(deploymentJSON(hostPathJSON("/var/lib/kubelet"), "")))), true},
		{"hostpath-sensitive", "log directory", one(ev("create", "pods", in("app", "web"), request(podJSON(hostPathJSON("/var/log/app"), "")))), false},
		{"workload-in-kube-system", "daemonset in kube-system", one(ev("create", "daemonsets", in("kube-system", "kube-proxy-x"), request(deploymentJSON("", "")))), true},
		{"workload-in-kube-system", "mirror pod created by a kubelet", one(ev("create", "pods", in("kube-system", "etcd-cp-1"), by(node1), request(podJSON("", "")))), false},
		{"cronjob-created", "cronjob", one(ev("create", "cronjobs", in("app", "nightly"), request(cronJobJSON("")))), true},
		{"cronjob-created", "cronjob status update by the controller", one(ev("update", "cronjobs/status", in("app", "nightly"), by(saUser("kube-system", "cronjob-controller", "")))), false},
		{"exposed-service-kube-system", "NodePort dashboard", one(ev("create", "services", in("kube-system", "dashboard"), request(`{"spec":{"type":"NodePort","ports":[{"port":443}]}}`))), true},
		{"exposed-service-kube-system", "ClusterIP service", one(ev("create", "services", in("kube-system", "dashboard"), request(`{"spec":{"type":"ClusterIP"}}`))), false},
		{"cluster-admin-binding", "cluster-admin to a user", one(ev("create", "clusterrolebindings", named("b"), request(bindingJSON("ClusterRoleBinding", "cluster-admin", `{"kind":"User","name":"mallory"}`)))), true},
		{"cluster-admin-binding", "view to a group", one(ev("create", "clusterrolebindings", named("b"), request(bindingJSON("ClusterRoleBinding", "view", groupSubject)))), false},
		{"clusterrolebinding-to-serviceaccount", "edit to a service account", one(ev("create", "clusterrolebindings", named("b"), request(bindingJSON("ClusterRoleBinding", "edit", saSubject)))), true},
		{"clusterrolebinding-to-serviceaccount", "edit to a group", one(ev("create", "clusterrolebindings", named("b"), request(bindingJSON("ClusterRoleBinding", "edit", groupSubject)))), false},
		{"wildcard-role", "all verbs", one(ev("create", "clusterroles", named("r"), request(roleJSON(`["*"]`, `["pods"]`)))), true},
		{"wildcard-role", "read-only role", one(ev("create", "clusterroles", named("r"), request(roleJSON(`["get","list"]`, `["pods"]`)))), false},
		{"rbac-escalation-verbs", "bind", one(ev("update", "roles", in("app", "r"), request(roleJSON(`["bind"]`, `["roles"]`)))), true},
		{"rbac-escalation-verbs", "read-only role", one(ev("update", "roles", in("app", "r"), request(roleJSON(`["get"]`, `["roles"]`)))), false},
		{"impersonation", "acting as bob", one(ev("list", "pods", in("app", ""), impersonating(bob))), true},
		{"impersonation", "no impersonation", one(ev("list", "pods", in("app", ""))), false},
		{"impersonation-privileged", "system:masters", one(ev("list", "secrets", in("app", ""), impersonating(authnUser("x", "system:masters")))), true},
		{"impersonation-privileged", "a node", one(ev("get", "secrets", in("app", "s"), impersonating(node1))), true},
		{"impersonation-privileged", "acting as bob", one(ev("list", "pods", in("app", ""), impersonating(bob))), false},
		{"csr-approval", "approved by a user", one(ev("update", "certificatesigningrequests/approval", named("csr-x"))), true},
		{"csr-approval", "approved by the controller", one(ev("update", "certificatesigningrequests/approval", named("csr-x"), by(csrCtrl))), false},
		{"serviceaccount-token-request", "kubectl create token", one(ev("create", "serviceaccounts/token", in("kube-system", "clusterrole-aggregation-controller"))), true},
		{"serviceaccount-token-request", "kubelet projecting a token", one(ev("create", "serviceaccounts/token", in("app", "web"), by(node1))), false},
		{"serviceaccount-token-secret-created", "legacy token secret", one(ev("create", "secrets", in("app", "t"), request(`{"type":"kubernetes.io/service-account-token","metadata":{"annotations":{"kubernetes.io/service-account.name":"web"}}}`))), true},
		{"serviceaccount-token-secret-created", "opaque secret", one(ev("create", "secrets", in("app", "t"), request(`{"type":"Opaque"}`))), false},
		{"secrets-read-by-serviceaccount", "pod lists secrets", one(ev("list", "secrets", in("app", ""), by(webPod))), true},
		{"secrets-read-by-serviceaccount", "admin reads a secret", one(ev("get", "secrets", in("app", "db"))), false},
		{"secrets-read-by-serviceaccount", "kubelet reads a secret", one(ev("get", "secrets", in("app", "db"), by(node1))), false},
		{"serviceaccount-token-secret-read", "token secret read", one(ev("get", "secrets", in("kube-system", "legacy-token"), response(`{"type":"kubernetes.io/service-account-token","data":{"token":"<redacted>"}}`))), true},
		{"serviceaccount-token-secret-read", "token secret in a list", one(ev("list", "secrets", in("kube-system", ""), response(`{"items":[{"type":"Opaque"},{"type":"kubernetes.io/service-account-token"}]}`))), true},
		{"serviceaccount-token-secret-read", "opaque secret read", one(ev("get", "secrets", in("app", "db"), response(`{"type":"Opaque"}`))), false},
		{"admission-control-changed", "webhook deleted", one(ev("delete", "validatingwebhookconfigurations", named("bulwark"), apiGroup("admissionregistration.k8s.io"))), true},
		{"admission-control-changed", "webhook read", one(ev("get", "validatingwebhookconfigurations", named("bulwark"))), false},
		{"events-deleted", "events deleted", one(ev("deletecollection", "events", in("app", ""))), true},
		{"events-deleted", "kubelet recording an event", one(ev("create", "events", in("app", "web.1"), by(node1))), false},
		{"anonymous-request-allowed", "anonymous lists pods", one(ev("list", "pods", in("default", ""), by(anonymous))), true},
		{"anonymous-request-allowed", "anonymous health check", one(ev("get", "", by(anonymous), uri("/readyz?verbose"))), false},
		{"anonymous-request-allowed", "anonymous refused", one(ev("list", "pods", in("default", ""), by(anonymous), code(403))), false},
		{"forbidden-burst", "20 refusals in 20s", repeat(20, func(i int) auditv1.Event {
			return ev("list", "secrets", in("ns-"+string(rune('a'+i)), ""), by(webPod), code(403), spread(i))
		}), true},
		{"forbidden-burst", "20 refusals over 20 minutes", repeat(20, func(i int) auditv1.Event {
			return ev("list", "secrets", in("app", ""), by(webPod), code(403), spread(i*60))
		}), false},
		{"mass-delete", "20 pods deleted in 20s", repeat(20, func(i int) auditv1.Event {
			return ev("delete", "pods", in("app", "web-"+string(rune('a'+i))), spread(i))
		}), true},
		{"mass-delete", "controller scaling down", repeat(20, func(i int) auditv1.Event {
			return ev("delete", "pods", in("app", "web-"+string(rune('a'+i))), by(rsCtrl), spread(i))
		}), false},
		{"delete-collection", "kubectl delete secrets --all", one(ev("deletecollection", "secrets", in("app", ""))), true},
		{"delete-collection", "namespace controller cleaning up", one(ev("deletecollection", "secrets", in("app", ""), by(nsCtrl))), false},
	}
}

func TestBuiltinRules(t *testing.T) {
	for _, c := range builtinCases() {
		t.Run(c.rule+"/"+c.name, func(t *testing.T) {
			e := newBuiltinEngine(t)
			alerts := e.Process(context.Background(), c.events)
			fired := slices.ContainsFunc(alerts, func(a Alert) bool { return a.RuleID == c.rule })
			if fired != c.fires {
				t.Errorf("rule %s fired = %v, want %v; alerts: %v", c.rule, fired, c.fires, ruleIDs(alerts))
			}
			if e.rule(c.rule).errors != 0 {
				t.Errorf("rule %s had %d evaluation errors", c.rule, e.rule(c.rule).errors)
			}
		})
	}
}

// TestBuiltinRulesCovered keeps every built-in rule tested both ways.
func TestBuiltinRulesCovered(t *testing.T) {
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, c := range builtinCases() {
		if c.fires {
			fires[c.rule] = true
		} else {
			quiet[c.rule] = true
		}
	}
	rules := Builtin()
	if len(rules) < 25 {
		t.Errorf("%d built-in rules, want at least 25", len(rules))
	}
	for _, r := range rules {
		if !fires[r.ID] || !quiet[r.ID] {
			t.Errorf("rule %s: want a case that fires it and one that does not", r.ID)
		}
		if r.Description == "" || r.Remediation == "" || r.Output == "" {
			t.Errorf("rule %s: description, remediation and output are required of built-in rules", r.ID)
		}
	}
}

func TestBuiltinAlertFields(t *testing.T) {
	e := newBuiltinEngine(t)
	got := e.Process(context.Background(), one(exec("app", "web", auditID("exec-1"), func(ev *auditv1.Event) {
		ev.SourceIPs = []string{"203.0.113.9", "10.0.0.7"}
	})))
	want := []Alert{{
		RuleID: "pod-exec", Title: "Command executed in a pod", Severity: "MEDIUM",
		Technique: Technique{ID: "T1609", Name: "Container Administration Command"},
		Summary:   "alice@example.com ran [sh -c id] in pod app/web",
		Actor:     "alice@example.com", Groups: admin.Groups,
		SourceIP: "10.0.0.7", UserAgent: "kubectl/v1.34.1 (linux/amd64) kubernetes/abc123",
		Verb: "create", Resource: "pods", Subresource: "exec", Namespace: "app", Name: "web",
		Events: []string{"exec-1"}, Count: 1, FirstAt: t0, LastAt: t0,
		Key: "pod-exec|alice@example.com|create|pods/exec|app/web",
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Process() mismatch (-want +got):\n%s", diff)
	}
}

// ordinaryStream is what a quiet cluster logs: reads by people and
// controllers, status updates, leases, events, scheduling, pods created by
// controllers, watches starting.
func ordinaryStream(n int) []auditv1.Event {
	mk := []func(i int) auditv1.Event{
		func(i int) auditv1.Event { return ev("get", "pods", in("app", "web")) },
		func(i int) auditv1.Event { return ev("list", "pods", in("app", "")) },
		func(i int) auditv1.Event {
			return ev("watch", "pods", in("app", ""), stage(auditv1.StageResponseStarted), code(200))
		},
		func(i int) auditv1.Event { return ev("watch", "configmaps", in("app", ""), by(argoCD)) },
		func(i int) auditv1.Event {
			return ev("update", "leases", in("kube-system", "kube-controller-manager"), by(kcm), apiGroup("coordination.k8s.io"))
		},
		func(i int) auditv1.Event {
			return ev("update", "leases", in("kube-node-lease", "node-1"), by(node1), apiGroup("coordination.k8s.io"))
		},
		func(i int) auditv1.Event { return ev("patch", "pods/status", in("app", "web-1"), by(node1)) },
		func(i int) auditv1.Event {
			return ev("update", "deployments/status", in("app", "web"), by(saUser("kube-system", "deployment-controller", "")))
		},
		func(i int) auditv1.Event { return ev("create", "events", in("app", "web.17a"), by(node1)) },
		func(i int) auditv1.Event { return ev("create", "pods/binding", in("app", "web-1"), by(scheduler)) },
		func(i int) auditv1.Event {
			return ev("create", "pods", in("app", "web-1"), by(rsCtrl), request(podJSON("", `,"securityContext":{"runAsNonRoot":true}`)))
		},
		func(i int) auditv1.Event { return ev("get", "secrets", in("app", "db"), by(node1)) },
		func(i int) auditv1.Event { return ev("get", "configmaps", in("app", "cfg"), by(webPod)) },
		func(i int) auditv1.Event {
			return ev("list", "deployments", in("app", ""), by(argoCD), apiGroup("apps"))
		},
		func(i int) auditv1.Event {
			return ev("patch", "deployments", in("app", "web"), request(`{"spec":{"replicas":3}}`), apiGroup("apps"))
		},
		func(i int) auditv1.Event {
			return ev("create", "serviceaccounts/token", in("app", "web"), by(node1))
		},
		func(i int) auditv1.Event {
			return ev("get", "pods", in("app", "web"), stage(auditv1.StageRequestReceived))
		},
		func(i int) auditv1.Event { return ev("get", "", uri("/healthz"), by(anonymous)) },
		func(i int) auditv1.Event { return ev("get", "", uri("/apis"), agent("kubectl/v1.34.1")) },
		func(i int) auditv1.Event {
			return ev("list", "nodes", by(saUser("kube-system", "node-controller", "")))
		},
	}
	return repeat(n, func(i int) auditv1.Event {
		e := mk[i%len(mk)](i)
		e.StageTimestamp.Time = t0.Add(time.Duration(i) * time.Millisecond)
		return e
	})
}

func TestOrdinaryStreamIsQuiet(t *testing.T) {
	e := newBuiltinEngine(t)
	if got := e.Process(context.Background(), ordinaryStream(2000)); len(got) != 0 {
		t.Errorf("Process(ordinary stream) = %d alerts, want none: %v", len(got), ruleIDs(got))
	}
	if got := e.Flush(t0.Add(time.Hour)); len(got) != 0 {
		t.Errorf("Flush() = %v, want none", ruleIDs(got))
	}
	for _, r := range e.rules {
		if r.errors != 0 {
			t.Errorf("rule %s had %d evaluation errors", r.ID, r.errors)
		}
	}
}

func ruleIDs(alerts []Alert) []string {
	out := make([]string, len(alerts))
	for i, a := range alerts {
		out[i] = a.RuleID
	}
	return out
}

func (e *Engine) rule(id string) *compiledRule {
	for _, r := range e.rules {
		if r.ID == id {
			return r
		}
	}
	panic("no rule " + id)
}
