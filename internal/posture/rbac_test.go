package posture

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
)

func TestGrantedRuleAllows(t *testing.T) {
	tests := []struct {
		name                  string
		rule                  grantedRule
		verb, group, resource string
		want                  bool
	}{
		{"exact", grantedRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"secrets"}}, "get", "", "secrets", true},
		{"other verb", grantedRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"secrets"}}, "list", "", "secrets", false},
		{"other group", grantedRule{Verbs: []string{"get"}, APIGroups: []string{"apps"}, Resources: []string{"secrets"}}, "get", "", "secrets", false},
		{"wildcard verb", grantedRule{Verbs: []string{"*"}, APIGroups: []string{""}, Resources: []string{"secrets"}}, "delete", "", "secrets", true},
		{"wildcard group", grantedRule{Verbs: []string{"get"}, APIGroups: []string{"*"}, Resources: []string{"secrets"}}, "get", "", "secrets", true},
		{"wildcard resource covers subresources", grantedRule{Verbs: []string{"create"}, APIGroups: []string{""}, Resources: []string{"*"}}, "create", "", "pods/exec", true},
		{"resource does not cover subresource", grantedRule{Verbs: []string{"create"}, APIGroups: []string{""}, Resources: []string{"pods"}}, "create", "", "pods/exec", false},
		{"subresource does not cover resource", grantedRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods/log"}}, "get", "", "pods", false},
		{"star slash subresource", grantedRule{Verbs: []string{"update"}, APIGroups: []string{"*"}, Resources: []string{"*/approval"}}, "update", "certificates.k8s.io", "certificatesigningrequests/approval", true},
		{"star slash needs a subresource", grantedRule{Verbs: []string{"update"}, APIGroups: []string{"*"}, Resources: []string{"*/scale"}}, "update", "apps", "deployments", false},
		{"resourceNames restrict", grantedRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"tls"}}, "get", "", "secrets", false},
		{"asking for a wildcard needs a wildcard", grantedRule{Verbs: []string{"get", "list"}, APIGroups: []string{""}, Resources: []string{"pods"}}, "*", "", "pods", false},
		{"non-resource rule", grantedRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/metrics"}}, "get", "", "secrets", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.rule.allows(tc.verb, tc.group, tc.resource); got != tc.want {
				t.Errorf("allows(%q, %q, %q) = %v, want %v", tc.verb, tc.group, tc.resource, got, tc.want)
			}
		})
	}
}

// TestRBACFunctions runs allows, allowsIn and grants through CEL, including
// on lists a check filtered itself.
func TestRBACFunctions(t *testing.T) {
	in := &Input{
		ClusterRoles: []*rbacv1.ClusterRole{
			clusterRole("secret-reader", nil, rule([]string{"get", "list"}, []string{""}, []string{"secrets"})),
			clusterRole("pod-creator", nil, rule([]string{"create"}, []string{""}, []string{"pods"})),
		},
		ClusterRoleBindings: []*rbacv1.ClusterRoleBinding{
			clusterRoleBinding("bob-secrets", "secret-reader", user("bob")),
			clusterRoleBinding("bob-missing", "does-not-exist", user("bob")),
		},
		RoleBindings: []*rbacv1.RoleBinding{
			roleBinding("team", "bob-pods", "ClusterRole", "pod-creator", user("bob")),
		},
	}
	tests := []struct {
		expr string
		want []string
	}{
		{`allows(rules, "list", "", "secrets") ? ["yes"] : []`, []string{"yes"}},
		{`allowsIn(rules, "create", "", "pods", "team") ? ["yes"] : []`, []string{"yes"}},
		{`allowsIn(rules, "create", "", "pods", "other") ? ["yes"] : []`, nil},
		{`allowsIn(rules, "create", "", "pods", "") ? ["yes"] : []`, nil},
		{`allowsIn(rules, "get", "", "secrets", "") ? ["yes"] : []`, []string{"yes"}},
		{`grants(rules, "create", "", "pods")`, []string{"create pods in namespace team via RoleBinding team/bob-pods -> ClusterRole pod-creator"}},
		{`grantsIn(rules, "create", "", "pods", "")`, nil},
		{`grants(rules.filter(r, r.namespace == ""), "get", "", "secrets")`, []string{"get secrets cluster-wide via ClusterRoleBinding bob-secrets -> ClusterRole secret-reader"}},
		{`grants([{"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "namespace": "x"}], "get", "", "secrets")`, []string{"get secrets in namespace x"}},
		{`bindings.map(b, b.name + " exists=" + string(b.roleExists))`, []string{"bob-secrets exists=true", "bob-missing exists=false", "bob-pods exists=true"}},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			e, err := Compile([]Check{userCheck("T", "subject", tc.expr)})
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.Evaluate(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			var ev []string
			if len(got) > 0 {
				ev = got[0].Evidence
			}
			if diff := cmp.Diff(tc.want, ev); diff != "" {
				t.Errorf("evidence (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDefaultBindingsAreExpected: Kubernetes' own bootstrap grants do not
// count in nonDefaultRules, but a user binding of the same subject does.
func TestDefaultBindingsAreExpected(t *testing.T) {
	in := cleanInput()
	e, err := Compile([]Check{userCheck("T", "subject", `nonDefaultRules.map(r, r.bindingName)`), userCheck("U", "subject", `rules.map(r, r.bindingName)`)})
	if err != nil {
		t.Fatal(err)
	}
	in.ClusterRoleBindings = append(in.ClusterRoleBindings, clusterRoleBinding("extra", "reader", serviceAccount("kube-system", "token-cleaner")))
	got, err := e.Evaluate(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Check    string
		Resource Resource
		Evidence []string
	}
	var rows []row
	for _, f := range got {
		rows = append(rows, row{f.CheckID, f.Resource, f.Evidence})
	}
	tokenCleaner := Resource{Kind: "ServiceAccount", Namespace: "kube-system", Name: "token-cleaner"}
	want := []row{
		{"T", Resource{Kind: "ServiceAccount", Namespace: "app", Name: "web"}, []string{"web"}},
		{"T", tokenCleaner, []string{"extra"}},
		{"T", Resource{Kind: "User", Name: "alice"}, []string{"readers"}},
		{"U", Resource{Kind: "Group", Name: "system:masters"}, []string{"cluster-admin"}},
		{"U", Resource{Kind: "ServiceAccount", Namespace: "app", Name: "web"}, []string{"web"}},
		{"U", tokenCleaner, []string{"system:controller:token-cleaner", "extra"}},
		{"U", Resource{Kind: "User", Name: "alice"}, []string{"readers"}},
	}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("rules per subject (-want +got):\n%s", diff)
	}
}
