package posture

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The fixtures build a small cluster that passes every built-in check;
// tests break one thing at a time.

func ptr[T any](v T) *T { return &v }

func hardenedContainer(name string) corev1.Container {
	return corev1.Container{
		Name:  name,
		Image: "registry.example/app:1",
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			ReadOnlyRootFilesystem:   ptr(true),
		},
	}
}

func hardenedPodSpec(sa string, containers ...corev1.Container) corev1.PodSpec {
	return corev1.PodSpec{
		ServiceAccountName:           sa,
		AutomountServiceAccountToken: ptr(false),
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:   ptr(true),
			RunAsUser:      ptr(int64(1000)),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Containers: containers,
		Volumes: []corev1.Volume{{
			Name:         "config",
			VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "web"}}},
		}},
	}
}

func namespace(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func deployment(ns, name string, spec corev1.PodSpec) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
			Spec:       spec,
		}},
	}
}

func controllerRef(kind, name string) []metav1.OwnerReference {
	return []metav1.OwnerReference{{Kind: kind, Name: name, Controller: ptr(true), APIVersion: "apps/v1"}}
}

// controlPlanePod is a kubeadm mirror pod with a hardened pod spec, so that
// workload checks stay quiet about it.
func controlPlanePod(component string, flags ...string) *corev1.Pod {
	c := hardenedContainer(component)
	c.Command = append([]string{component}, flags...)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "kube-system", Name: component + "-cp1",
			Labels:          map[string]string{"component": component, "tier": "control-plane"},
			OwnerReferences: []metav1.OwnerReference{{Kind: "Node", Name: "cp1", Controller: ptr(true), APIVersion: "v1"}},
		},
		Spec: hardenedPodSpec("default", c),
	}
}

var goodAPIServerFlags = []string{
	"--anonymous-auth=false",
	"--authorization-mode=Node,RBAC",
	"--enable-admission-plugins=NodeRestriction,EventRateLimit,AlwaysPullImages,DenyServiceExternalIPs",
	"--kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt",
	"--kubelet-client-key=/etc/kubernetes/pki/apiserver-kubelet-client.key",
	"--kubelet-certificate-authority=/etc/kubernetes/pki/ca.crt",
	"--profiling=false",
	"--audit-log-path=/var/log/apiserver/audit.log",
	"--audit-log-maxage=30",
	"--audit-log-maxbackup=10",
	"--audit-log-maxsize=100",
	"--service-account-key-file=/etc/kubernetes/pki/sa.pub",
	"--etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt",
	"--etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key",
	"--etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt",
	"--tls-cert-file=/etc/kubernetes/pki/apiserver.crt",
	"--tls-private-key-file=/etc/kubernetes/pki/apiserver.key",
	"--client-ca-file=/etc/kubernetes/pki/ca.crt",
	"--encryption-provider-config=/etc/kubernetes/enc.yaml",
	"--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_AES_128_GCM_SHA256",
	"--service-account-extend-token-expiration=false",
}

var goodControllerManagerFlags = []string{
	"--terminated-pod-gc-threshold=10",
	"--profiling=false",
	"--use-service-account-credentials=true",
	"--service-account-private-key-file=/etc/kubernetes/pki/sa.key",
	"--root-ca-file=/etc/kubernetes/pki/ca.crt",
	"--bind-address=127.0.0.1",
}

var goodSchedulerFlags = []string{"--profiling=false", "--bind-address=127.0.0.1"}

var goodEtcdFlags = []string{
	"--cert-file=/etc/kubernetes/pki/etcd/server.crt",
	"--key-file=/etc/kubernetes/pki/etcd/server.key",
	"--client-cert-auth=true",
	"--peer-cert-file=/etc/kubernetes/pki/etcd/peer.crt",
	"--peer-key-file=/etc/kubernetes/pki/etcd/peer.key",
	"--peer-client-cert-auth=true",
	"--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt",
}

func goodKubelet() map[string]any {
	return map[string]any{
		"authentication": map[string]any{
			"anonymous": map[string]any{"enabled": false},
			"x509":      map[string]any{"clientCAFile": "/etc/kubernetes/pki/ca.crt"},
		},
		"authorization":                  map[string]any{"mode": "Webhook"},
		"readOnlyPort":                   int64(0),
		"streamingConnectionIdleTimeout": "4h0m0s",
		"makeIPTablesUtilChains":         true,
		"rotateCertificates":             true,
		"seccompDefault":                 true,
	}
}

func goodFiles() []FileFact {
	return []FileFact{
		{Path: "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf", Mode: 0o600, Owner: "root", Group: "root"},
		{Path: "/etc/kubernetes/kubelet.conf", Mode: 0o600, Owner: "root", Group: "root"},
		{Path: "/var/lib/kubelet/config.yaml", Mode: 0o600, Owner: "root", Group: "root"},
	}
}

func clusterRole(name string, labels map[string]string, rules ...rbacv1.PolicyRule) *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Rules: rules}
}

func clusterRoleBinding(name, role string, subjects ...rbacv1.Subject) *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   subjects,
	}
}

func roleBinding(ns, name, roleKind, role string, subjects ...rbacv1.Subject) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: roleKind, Name: role},
		Subjects:   subjects,
	}
}

func user(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}
}

func group(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: name}
}

func serviceAccount(ns, name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}
}

func rule(verbs, groups, resources []string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: verbs, APIGroups: groups, Resources: resources}
}

func sa(ns, name string, automount *bool) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, AutomountServiceAccountToken: automount}
}

var bootstrapLabels = map[string]string{"kubernetes.io/bootstrapping": "rbac-defaults"}

// cleanInput is a small cluster on which no built-in check fails.
func cleanInput() *Input {
	web := deployment("app", "web", hardenedPodSpec("web", hardenedContainer("app")))
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "web-5d4f", OwnerReferences: controllerRef("Deployment", "web")},
		Spec:       appsv1.ReplicaSetSpec{Template: web.Spec.Template},
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "web-5d4f-x1", OwnerReferences: controllerRef("ReplicaSet", "web-5d4f")},
		Spec:       web.Spec.Template.Spec,
	}
	netpol := func(ns string) *networkingv1.NetworkPolicy {
		return &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default-deny"},
			Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}},
		}
	}
	return &Input{
		Namespaces: []*corev1.Namespace{
			namespace("app", map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}),
			namespace("kube-system", nil),
			namespace("empty", nil),
		},
		Pods: []*corev1.Pod{
			pod,
			controlPlanePod("kube-apiserver", goodAPIServerFlags...),
			controlPlanePod("kube-controller-manager", goodControllerManagerFlags...),
			controlPlanePod("kube-scheduler", goodSchedulerFlags...),
			controlPlanePod("etcd", goodEtcdFlags...),
		},
		Deployments:     []*appsv1.Deployment{web},
		ReplicaSets:     []*appsv1.ReplicaSet{rs},
		NetworkPolicies: []*networkingv1.NetworkPolicy{netpol("app"), netpol("kube-system")},
		ServiceAccounts: []*corev1.ServiceAccount{
			sa("app", "default", ptr(false)),
			sa("app", "web", nil),
			sa("kube-system", "default", ptr(false)),
		},
		ClusterRoles: []*rbacv1.ClusterRole{
			clusterRole("cluster-admin", bootstrapLabels, rule([]string{"*"}, []string{"*"}, []string{"*"})),
			clusterRole("system:controller:token-cleaner", bootstrapLabels,
				rule([]string{"get", "list", "watch", "delete"}, []string{""}, []string{"secrets"})),
			clusterRole("reader", nil, rule([]string{"get", "list", "watch"}, []string{""}, []string{"pods", "configmaps"})),
		},
		ClusterRoleBindings: []*rbacv1.ClusterRoleBinding{
			func() *rbacv1.ClusterRoleBinding {
				b := clusterRoleBinding("cluster-admin", "cluster-admin", group("system:masters"))
				b.Labels = bootstrapLabels
				return b
			}(),
			clusterRoleBinding("system:controller:token-cleaner", "system:controller:token-cleaner", serviceAccount("kube-system", "token-cleaner")),
			clusterRoleBinding("readers", "reader", user("alice")),
		},
		Roles: []*rbacv1.Role{{
			ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "web"},
			Rules:      []rbacv1.PolicyRule{rule([]string{"get"}, []string{""}, []string{"configmaps"})},
		}},
		RoleBindings: []*rbacv1.RoleBinding{roleBinding("app", "web", "Role", "web", serviceAccount("app", "web"))},
		NodeFacts:    []NodeFacts{{Node: "node1", Kubelet: goodKubelet(), Files: goodFiles()}},
	}
}

// webSpec returns the pod spec of the clean input's web Deployment.
func webSpec(in *Input) *corev1.PodSpec { return &in.Deployments[0].Spec.Template.Spec }

// webContainer returns its only container.
func webContainer(in *Input) *corev1.Container { return &webSpec(in).Containers[0] }

func setFlag(in *Input, component, flag string) {
	for _, p := range in.Pods {
		if p.Labels["component"] != component {
			continue
		}
		c := &p.Spec.Containers[0]
		name, _, _ := cutFlag(flag)
		var kept []string
		for _, a := range c.Command {
			if n, _, _ := cutFlag(a); n == name {
				continue
			}
			kept = append(kept, a)
		}
		c.Command = kept
		if flag[0] != '!' {
			c.Command = append(c.Command, flag)
		}
	}
}

// cutFlag splits "--a=b" (or "!--a", which setFlag reads as "remove --a").
func cutFlag(f string) (name, value string, ok bool) {
	if len(f) > 0 && f[0] == '!' {
		f = f[1:]
	}
	for i := 0; i < len(f); i++ {
		if f[i] == '=' {
			return f[:i], f[i+1:], true
		}
	}
	return f, "", false
}
