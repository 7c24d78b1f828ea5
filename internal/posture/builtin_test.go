package posture

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func builtinEngine(t testing.TB) *Engine {
	t.Helper()
	e, err := Compile(Builtin())
	if err != nil {
		t.Fatalf("Compile(Builtin()): %v", err)
	}
	return e
}

func evaluate(t testing.TB, e *Engine, in *Input) []Finding {
	t.Helper()
	got, err := e.Evaluate(context.Background(), in)
	if err != nil {
		t.Fatalf("Evaluate: %v", err)
	}
	return got
}

func TestCleanInputHasNoFindings(t *testing.T) {
	got := evaluate(t, builtinEngine(t), cleanInput())
	if diff := cmp.Diff([]Finding(nil), got); diff != "" {
		t.Errorf("findings on the clean input (-want +got):\n%s", diff)
	}
}

var (
	web         = Resource{Kind: "Deployment", Namespace: "app", Name: "web"}
	apiServer   = Resource{Kind: "Pod", Namespace: "kube-system", Name: "kube-apiserver-cp1"}
	ctrlManager = Resource{Kind: "Pod", Namespace: "kube-system", Name: "kube-controller-manager-cp1"}
	scheduler   = Resource{Kind: "Pod", Namespace: "kube-system", Name: "kube-scheduler-cp1"}
	etcd        = Resource{Kind: "Pod", Namespace: "kube-system", Name: "etcd-cp1"}
	node1       = Resource{Kind: "Node", Name: "node1"}
	mallory     = Resource{Kind: "User", Name: "mallory"}
	ciSA        = Resource{Kind: "ServiceAccount", Namespace: "ci", Name: "deployer"}
)

// grantMallory binds a new ClusterRole with rules to User mallory.
func grantMallory(rules ...rbacv1.PolicyRule) func(*Input) {
	return func(in *Input) {
		in.ClusterRoles = append(in.ClusterRoles, clusterRole("mallory", nil, rules...))
		in.ClusterRoleBindings = append(in.ClusterRoleBindings, clusterRoleBinding("mallory", "mallory", user("mallory")))
	}
}

func flag(component, f string) func(*Input) {
	return func(in *Input) { setFlag(in, component, f) }
}

func kubelet(path []string, v any) func(*Input) {
	return func(in *Input) {
		m := in.NodeFacts[0].Kubelet
		for _, p := range path[:len(path)-1] {
			m = m[p].(map[string]any)
		}
		if v == nil {
			delete(m, path[len(path)-1])
			return
		}
		m[path[len(path)-1]] = v
	}
}

func file(suffix string, change func(*FileFact)) func(*Input) {
	return func(in *Input) {
		for i := range in.NodeFacts[0].Files {
			if strings.HasSuffix(in.NodeFacts[0].Files[i].Path, suffix) {
				change(&in.NodeFacts[0].Files[i])
			}
		}
	}
}

func containerSC(change func(*corev1.SecurityContext)) func(*Input) {
	return func(in *Input) { change(webContainer(in).SecurityContext) }
}

func podSC(change func(*corev1.PodSecurityContext)) func(*Input) {
	return func(in *Input) { change(webSpec(in).SecurityContext) }
}

func podSpec(change func(*corev1.PodSpec)) func(*Input) {
	return func(in *Input) { change(webSpec(in)) }
}

var hostPathVolume = corev1.Volume{Name: "root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}

// builtinCases breaks the clean input for one check at a time. want is the
// one resource the check must then report, with evidence when given.
var builtinCases = map[string]struct {
	breakIt  func(*Input)
	want     Resource
	evidence []string
}{
	"CIS-1.2.1":  {breakIt: flag("kube-apiserver", "!--anonymous-auth"), want: apiServer, evidence: []string{"--anonymous-auth=true (default)"}},
	"CIS-1.2.2":  {breakIt: flag("kube-apiserver", "--token-auth-file=/etc/tokens.csv"), want: apiServer},
	"CIS-1.2.3":  {breakIt: flag("kube-apiserver", "--enable-admission-plugins=NodeRestriction,EventRateLimit,AlwaysPullImages"), want: apiServer},
	"CIS-1.2.4":  {breakIt: flag("kube-apiserver", "!--kubelet-client-key"), want: apiServer, evidence: []string{"--kubelet-client-key is not set"}},
	"CIS-1.2.5":  {breakIt: flag("kube-apiserver", "!--kubelet-certificate-authority"), want: apiServer},
	"CIS-1.2.6":  {breakIt: flag("kube-apiserver", "--authorization-mode=AlwaysAllow,Node,RBAC"), want: apiServer},
	"CIS-1.2.7":  {breakIt: flag("kube-apiserver", "--authorization-mode=RBAC"), want: apiServer},
	"CIS-1.2.8":  {breakIt: flag("kube-apiserver", "--authorization-mode=Node"), want: apiServer},
	"CIS-1.2.9":  {breakIt: flag("kube-apiserver", "--enable-admission-plugins=NodeRestriction,AlwaysPullImages,DenyServiceExternalIPs"), want: apiServer},
	"CIS-1.2.10": {breakIt: flag("kube-apiserver", "--enable-admission-plugins=NodeRestriction,EventRateLimit,AlwaysPullImages,DenyServiceExternalIPs,AlwaysAdmit"), want: apiServer},
	"CIS-1.2.11": {breakIt: flag("kube-apiserver", "--enable-admission-plugins=NodeRestriction,EventRateLimit,DenyServiceExternalIPs"), want: apiServer},
	"CIS-1.2.12": {breakIt: flag("kube-apiserver", "--disable-admission-plugins=ServiceAccount"), want: apiServer},
	"CIS-1.2.13": {breakIt: flag("kube-apiserver", "--disable-admission-plugins=NamespaceLifecycle"), want: apiServer},
	"CIS-1.2.14": {breakIt: flag("kube-apiserver", "--enable-admission-plugins=EventRateLimit,AlwaysPullImages,DenyServiceExternalIPs"), want: apiServer},
	"CIS-1.2.15": {breakIt: flag("kube-apiserver", "--profiling=true"), want: apiServer, evidence: []string{"--profiling=true"}},
	"CIS-1.2.16": {breakIt: flag("kube-apiserver", "!--audit-log-path"), want: apiServer},
	"CIS-1.2.17": {breakIt: flag("kube-apiserver", "--audit-log-maxage=7"), want: apiServer, evidence: []string{"--audit-log-maxage=7"}},
	"CIS-1.2.18": {breakIt: flag("kube-apiserver", "!--audit-log-maxbackup"), want: apiServer, evidence: []string{"--audit-log-maxbackup=(not set)"}},
	"CIS-1.2.19": {breakIt: flag("kube-apiserver", "--audit-log-maxsize=ten"), want: apiServer},
	"CIS-1.2.21": {breakIt: flag("kube-apiserver", "--service-account-lookup=false"), want: apiServer},
	"CIS-1.2.22": {breakIt: flag("kube-apiserver", "!--service-account-key-file"), want: apiServer},
	"CIS-1.2.23": {breakIt: flag("kube-apiserver", "!--etcd-certfile"), want: apiServer, evidence: []string{"--etcd-certfile is not set"}},
	"CIS-1.2.24": {breakIt: flag("kube-apiserver", "!--tls-cert-file"), want: apiServer},
	"CIS-1.2.25": {breakIt: flag("kube-apiserver", "!--client-ca-file"), want: apiServer},
	"CIS-1.2.26": {breakIt: flag("kube-apiserver", "!--etcd-cafile"), want: apiServer},
	"CIS-1.2.27": {breakIt: flag("kube-apiserver", "!--encryption-provider-config"), want: apiServer},
	"CIS-1.2.29": {breakIt: flag("kube-apiserver", "--tls-cipher-suites=TLS_AES_128_GCM_SHA256,TLS_RSA_WITH_RC4_128_SHA"), want: apiServer, evidence: []string{"weak cipher suite TLS_RSA_WITH_RC4_128_SHA"}},
	"CIS-1.2.30": {breakIt: flag("kube-apiserver", "!--service-account-extend-token-expiration"), want: apiServer},
	"CIS-1.3.1":  {breakIt: flag("kube-controller-manager", "!--terminated-pod-gc-threshold"), want: ctrlManager},
	"CIS-1.3.2":  {breakIt: flag("kube-controller-manager", "--profiling"), want: ctrlManager},
	"CIS-1.3.3":  {breakIt: flag("kube-controller-manager", "!--use-service-account-credentials"), want: ctrlManager},
	"CIS-1.3.4":  {breakIt: flag("kube-controller-manager", "!--service-account-private-key-file"), want: ctrlManager},
	"CIS-1.3.5":  {breakIt: flag("kube-controller-manager", "!--root-ca-file"), want: ctrlManager},
	"CIS-1.3.6":  {breakIt: flag("kube-controller-manager", "--feature-gates=Foo=true,RotateKubeletServerCertificate=false"), want: ctrlManager},
	"CIS-1.3.7":  {breakIt: flag("kube-controller-manager", "--bind-address=0.0.0.0"), want: ctrlManager, evidence: []string{"--bind-address=0.0.0.0"}},
	"CIS-1.4.1":  {breakIt: flag("kube-scheduler", "!--profiling"), want: scheduler},
	"CIS-1.4.2":  {breakIt: flag("kube-scheduler", "--bind-address=0.0.0.0"), want: scheduler},
	"CIS-2.1":    {breakIt: flag("etcd", "!--key-file"), want: etcd},
	"CIS-2.2":    {breakIt: flag("etcd", "--client-cert-auth=false"), want: etcd},
	"CIS-2.3":    {breakIt: flag("etcd", "--auto-tls=true"), want: etcd},
	"CIS-2.4":    {breakIt: flag("etcd", "!--peer-cert-file"), want: etcd},
	"CIS-2.5":    {breakIt: flag("etcd", "!--peer-client-cert-auth"), want: etcd},
	"CIS-2.6":    {breakIt: flag("etcd", "--peer-auto-tls"), want: etcd},
	"CIS-2.7":    {breakIt: flag("etcd", "!--trusted-ca-file"), want: etcd},

	"CIS-4.1.1":  {breakIt: file("10-kubeadm.conf", func(f *FileFact) { f.Mode = 0o644 }), want: node1, evidence: []string{"/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf: mode 644"}},
	"CIS-4.1.2":  {breakIt: file("10-kubeadm.conf", func(f *FileFact) { f.Owner = "admin" }), want: node1},
	"CIS-4.1.5":  {breakIt: file("kubelet.conf", func(f *FileFact) { f.Mode = 0o640 }), want: node1},
	"CIS-4.1.6":  {breakIt: file("kubelet.conf", func(f *FileFact) { f.Group = "wheel" }), want: node1, evidence: []string{"/etc/kubernetes/kubelet.conf: owned by root:wheel"}},
	"CIS-4.1.9":  {breakIt: file("config.yaml", func(f *FileFact) { f.Mode = 0o666 }), want: node1},
	"CIS-4.1.10": {breakIt: file("config.yaml", func(f *FileFact) { f.Owner = "nobody" }), want: node1},
	"CIS-4.2.1":  {breakIt: kubelet([]string{"authentication", "anonymous", "enabled"}, true), want: node1, evidence: []string{"authentication.anonymous.enabled=true"}},
	"CIS-4.2.2":  {breakIt: kubelet([]string{"authorization", "mode"}, "AlwaysAllow"), want: node1},
	"CIS-4.2.3":  {breakIt: kubelet([]string{"authentication", "x509", "clientCAFile"}, nil), want: node1},
	"CIS-4.2.4":  {breakIt: kubelet([]string{"readOnlyPort"}, int64(10255)), want: node1, evidence: []string{"readOnlyPort=10255"}},
	"CIS-4.2.5":  {breakIt: kubelet([]string{"streamingConnectionIdleTimeout"}, "0s"), want: node1},
	"CIS-4.2.6":  {breakIt: kubelet([]string{"makeIPTablesUtilChains"}, false), want: node1},
	"CIS-4.2.10": {breakIt: kubelet([]string{"rotateCertificates"}, false), want: node1},
	"CIS-4.2.14": {breakIt: kubelet([]string{"seccompDefault"}, nil), want: node1},

	"CIS-5.1.1": {breakIt: func(in *Input) {
		in.ClusterRoleBindings = append(in.ClusterRoleBindings, clusterRoleBinding("ops-admin", "cluster-admin", group("ops")))
	}, want: Resource{Kind: "ClusterRoleBinding", Name: "ops-admin"}, evidence: []string{"binds cluster-admin to Group ops"}},
	"CIS-5.1.2": {
		breakIt:  grantMallory(rule([]string{"list"}, []string{""}, []string{"secrets"})),
		want:     mallory,
		evidence: []string{"list secrets cluster-wide via ClusterRoleBinding mallory -> ClusterRole mallory"},
	},
	"CIS-5.1.3": {breakIt: func(in *Input) {
		in.Roles = append(in.Roles, &rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "wild"},
			Rules:      []rbacv1.PolicyRule{rule([]string{"*"}, []string{"apps"}, []string{"deployments"})},
		})
	}, want: Resource{Kind: "Role", Namespace: "app", Name: "wild"}, evidence: []string{"rule verbs=[*] apiGroups=[apps] resources=[deployments]"}},
	"CIS-5.1.4": {breakIt: grantMallory(rule([]string{"create"}, []string{""}, []string{"pods"})), want: mallory},
	"CIS-5.1.5": {
		breakIt:  func(in *Input) { in.ServiceAccounts[0].AutomountServiceAccountToken = nil },
		want:     Resource{Kind: "ServiceAccount", Namespace: "app", Name: "default"},
		evidence: []string{"automountServiceAccountToken is not false"},
	},
	"CIS-5.1.6": {
		breakIt:  podSpec(func(s *corev1.PodSpec) { s.AutomountServiceAccountToken = nil }),
		want:     web,
		evidence: []string{"automountServiceAccountToken not set on the pod or on service account web"},
	},
	"CIS-5.1.7": {breakIt: func(in *Input) {
		in.ClusterRoleBindings = append(in.ClusterRoleBindings, clusterRoleBinding("masters-view", "reader", group("system:masters")))
	}, want: Resource{Kind: "ClusterRoleBinding", Name: "masters-view"}},
	"CIS-5.1.8": {
		breakIt:  grantMallory(rule([]string{"impersonate"}, []string{""}, []string{"users", "groups"})),
		want:     mallory,
		evidence: []string{"impersonate users cluster-wide via ClusterRoleBinding mallory -> ClusterRole mallory", "impersonate groups cluster-wide via ClusterRoleBinding mallory -> ClusterRole mallory"},
	},
	"CIS-5.1.9":  {breakIt: grantMallory(rule([]string{"create"}, []string{""}, []string{"persistentvolumes"})), want: mallory},
	"CIS-5.1.10": {breakIt: grantMallory(rule([]string{"get"}, []string{""}, []string{"nodes/proxy"})), want: mallory},
	"CIS-5.1.11": {breakIt: grantMallory(rule([]string{"update"}, []string{"certificates.k8s.io"}, []string{"*/approval"})), want: mallory},
	"CIS-5.1.12": {breakIt: grantMallory(rule([]string{"patch"}, []string{"admissionregistration.k8s.io"}, []string{"mutatingwebhookconfigurations"})), want: mallory},
	"CIS-5.1.13": {breakIt: grantMallory(rule([]string{"create"}, []string{""}, []string{"serviceaccounts/token"})), want: mallory},
	"CIS-5.2.1": {
		breakIt:  func(in *Input) { in.Namespaces[0].Labels = nil },
		want:     Resource{Kind: "Namespace", Name: "app"},
		evidence: []string{"no pod-security.kubernetes.io/enforce label"},
	},
	"CIS-5.2.2": {breakIt: containerSC(func(sc *corev1.SecurityContext) { sc.Privileged = ptr(true) }), want: web, evidence: []string{"container app: securityContext.privileged=true"}},
	"CIS-5.2.3": {breakIt: podSpec(func(s *corev1.PodSpec) { s.HostPID = true }), want: web, evidence: []string{"spec.hostPID=true"}},
	"CIS-5.2.4": {breakIt: podSpec(func(s *corev1.PodSpec) { s.HostIPC = true }), want: web},
	"CIS-5.2.5": {breakIt: podSpec(func(s *corev1.PodSpec) { s.HostNetwork = true }), want: web},
	"CIS-5.2.6": {breakIt: containerSC(func(sc *corev1.SecurityContext) { sc.AllowPrivilegeEscalation = ptr(true) }), want: web},
	"CIS-5.2.7": {breakIt: func(in *Input) {
		webSpec(in).SecurityContext.RunAsNonRoot = nil
		webSpec(in).SecurityContext.RunAsUser = nil
	}, want: web, evidence: []string{"container app: runAsNonRoot not true and no runAsUser"}},
	"CIS-5.2.8": {
		breakIt:  containerSC(func(sc *corev1.SecurityContext) { sc.Capabilities.Drop = []corev1.Capability{"SYS_ADMIN"} }),
		want:     web,
		evidence: []string{"container app: NET_RAW not dropped"},
	},
	"CIS-5.2.9": {
		breakIt:  containerSC(func(sc *corev1.SecurityContext) { sc.Capabilities.Add = []corev1.Capability{"NET_ADMIN"} }),
		want:     web,
		evidence: []string{"container app: capabilities.add=[NET_ADMIN]"},
	},
	"CIS-5.2.10": {breakIt: podSC(func(sc *corev1.PodSecurityContext) {
		sc.WindowsOptions = &corev1.WindowsSecurityContextOptions{HostProcess: ptr(true)}
	}), want: web},
	"CIS-5.2.11": {breakIt: podSpec(func(s *corev1.PodSpec) { s.Volumes = append(s.Volumes, hostPathVolume) }), want: web, evidence: []string{"volume root: hostPath /"}},
	"CIS-5.2.12": {breakIt: func(in *Input) {
		webContainer(in).Ports = []corev1.ContainerPort{{ContainerPort: 80}, {ContainerPort: 443, HostPort: 443}}
	}, want: web, evidence: []string{"container app: hostPort 443"}},
	"CIS-5.3.2": {breakIt: func(in *Input) { in.NetworkPolicies = in.NetworkPolicies[1:] }, want: Resource{Kind: "Namespace", Name: "app"}, evidence: []string{"no NetworkPolicy; 1 workloads, 1 pods"}},
	"CIS-5.4.1": {breakIt: func(in *Input) {
		webContainer(in).Env = []corev1.EnvVar{
			{Name: "MODE", Value: "prod"},
			{Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}},
		}
		webContainer(in).EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "api-keys"}}}}
	}, want: web, evidence: []string{"container app: env DB_PASSWORD from secret db", "container app: envFrom secret api-keys"}},
	"CIS-5.6.2": {breakIt: podSC(func(sc *corev1.PodSecurityContext) { sc.SeccompProfile = nil }), want: web, evidence: []string{"container app: seccompProfile not set"}},
	"CIS-5.6.3": {breakIt: func(in *Input) {
		webSpec(in).SecurityContext = nil
		c := corev1.Container{Name: "sidecar", Image: "x"}
		webSpec(in).InitContainers = []corev1.Container{c}
		// The hardened app container keeps its own securityContext.
	}, want: web, evidence: []string{"initContainer sidecar: no securityContext on container or pod"}},
	"CIS-5.6.4": {breakIt: func(in *Input) {
		d := deployment("default", "legacy", hardenedPodSpec("web", hardenedContainer("app")))
		in.Deployments = append(in.Deployments, d)
	}, want: Resource{Kind: "Deployment", Namespace: "default", Name: "legacy"}},

	"PSS-BASELINE-HOST-PROCESS": {breakIt: containerSC(func(sc *corev1.SecurityContext) {
		sc.WindowsOptions = &corev1.WindowsSecurityContextOptions{HostProcess: ptr(true)}
	}), want: web, evidence: []string{"container app: securityContext.windowsOptions.hostProcess=true"}},
	"PSS-BASELINE-HOST-NAMESPACES": {breakIt: podSpec(func(s *corev1.PodSpec) { s.HostNetwork, s.HostIPC = true, true }), want: web, evidence: []string{"spec.hostNetwork=true", "spec.hostIPC=true"}},
	"PSS-BASELINE-PRIVILEGED":      {breakIt: containerSC(func(sc *corev1.SecurityContext) { sc.Privileged = ptr(true) }), want: web},
	"PSS-BASELINE-CAPABILITIES": {
		breakIt:  containerSC(func(sc *corev1.SecurityContext) { sc.Capabilities.Add = []corev1.Capability{"CHOWN", "SYS_ADMIN"} }),
		want:     web,
		evidence: []string{"container app: capabilities.add SYS_ADMIN"},
	},
	"PSS-BASELINE-HOST-PATH": {breakIt: podSpec(func(s *corev1.PodSpec) { s.Volumes = append(s.Volumes, hostPathVolume) }), want: web},
	"PSS-BASELINE-HOST-PORTS": {breakIt: func(in *Input) {
		webContainer(in).Ports = []corev1.ContainerPort{{ContainerPort: 53, HostPort: 53}}
	}, want: web},
	"PSS-BASELINE-APPARMOR": {breakIt: func(in *Input) {
		in.Deployments[0].Spec.Template.Annotations = map[string]string{"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}
		webContainer(in).SecurityContext.AppArmorProfile = &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeLocalhost}
	}, want: web, evidence: []string{"annotation container.apparmor.security.beta.kubernetes.io/app=unconfined"}},
	"PSS-BASELINE-SELINUX": {breakIt: podSC(func(sc *corev1.PodSecurityContext) {
		sc.SELinuxOptions = &corev1.SELinuxOptions{Type: "spc_t", Level: "s0:c1"}
	}), want: web, evidence: []string{"pod: seLinuxOptions.type=spc_t"}},
	"PSS-BASELINE-PROC-MOUNT": {breakIt: containerSC(func(sc *corev1.SecurityContext) { sc.ProcMount = ptr(corev1.UnmaskedProcMount) }), want: web},
	"PSS-BASELINE-SECCOMP": {
		breakIt: containerSC(func(sc *corev1.SecurityContext) {
			sc.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
		}),
		want:     web,
		evidence: []string{"container app: securityContext.seccompProfile.type=Unconfined"},
	},
	"PSS-BASELINE-SYSCTLS": {breakIt: podSC(func(sc *corev1.PodSecurityContext) {
		sc.Sysctls = []corev1.Sysctl{{Name: "net.ipv4.tcp_syncookies", Value: "1"}, {Name: "kernel.msgmax", Value: "1"}}
	}), want: web, evidence: []string{"spec.securityContext.sysctls: kernel.msgmax"}},
	"PSS-RESTRICTED-VOLUME-TYPES": {breakIt: podSpec(func(s *corev1.PodSpec) {
		s.Volumes = append(s.Volumes, corev1.Volume{Name: "nfs", VolumeSource: corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "nfs", Path: "/x"}}})
	}), want: web, evidence: []string{"volume nfs: nfs"}},
	"PSS-RESTRICTED-PRIVILEGE-ESCALATION": {
		breakIt:  containerSC(func(sc *corev1.SecurityContext) { sc.AllowPrivilegeEscalation = nil }),
		want:     web,
		evidence: []string{"container app: securityContext.allowPrivilegeEscalation is not false"},
	},
	"PSS-RESTRICTED-RUN-AS-NON-ROOT": {
		breakIt:  containerSC(func(sc *corev1.SecurityContext) { sc.RunAsNonRoot = ptr(false) }),
		want:     web,
		evidence: []string{"container app: runAsNonRoot =false"},
	},
	"PSS-RESTRICTED-RUN-AS-USER": {
		breakIt:  containerSC(func(sc *corev1.SecurityContext) { sc.RunAsUser = ptr(int64(0)); sc.RunAsNonRoot = nil }),
		want:     web,
		evidence: []string{"container app: securityContext.runAsUser=0"},
	},
	"PSS-RESTRICTED-SECCOMP": {
		breakIt: containerSC(func(sc *corev1.SecurityContext) {
			sc.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
		}),
		want:     web,
		evidence: []string{"container app: seccompProfile type=Unconfined"},
	},
	"PSS-RESTRICTED-CAPABILITIES": {
		breakIt: containerSC(func(sc *corev1.SecurityContext) {
			sc.Capabilities.Add = []corev1.Capability{"NET_BIND_SERVICE", "CHOWN"}
		}),
		want:     web,
		evidence: []string{"container app: capabilities.add CHOWN"},
	},

	"RBAC-CLUSTER-ADMIN-SERVICE-ACCOUNT": {breakIt: func(in *Input) {
		in.ClusterRoleBindings = append(in.ClusterRoleBindings, clusterRoleBinding("ci-admin", "cluster-admin", serviceAccount("ci", "deployer")))
	}, want: ciSA, evidence: []string{"* * cluster-wide via ClusterRoleBinding ci-admin -> ClusterRole cluster-admin"}},
	"RBAC-SECRETS-CLUSTER-WIDE": {breakIt: grantMallory(rule([]string{"watch"}, []string{"*"}, []string{"secrets"})), want: mallory},
	"RBAC-WORKLOADS-PRIVILEGED-NAMESPACE": {breakIt: func(in *Input) {
		in.ClusterRoles = append(in.ClusterRoles, clusterRole("deployer", nil, rule([]string{"create", "update"}, []string{"apps"}, []string{"daemonsets"})))
		in.RoleBindings = append(in.RoleBindings, roleBinding("kube-system", "deployer", "ClusterRole", "deployer", serviceAccount("ci", "deployer")))
	}, want: ciSA, evidence: []string{"create daemonsets in namespace kube-system via RoleBinding kube-system/deployer -> ClusterRole deployer"}},
	"RBAC-WILDCARD": {
		breakIt:  grantMallory(rule([]string{"get"}, []string{"*"}, []string{"*"})),
		want:     mallory,
		evidence: []string{"verbs=[get] apiGroups=[*] resources=[*] cluster-wide via ClusterRoleBinding mallory -> ClusterRole mallory"},
	},
	"RBAC-POD-EXEC": {breakIt: grantMallory(rule([]string{"create"}, []string{""}, []string{"pods/exec"})), want: mallory},
}

func TestBuiltinChecks(t *testing.T) {
	e := builtinEngine(t)
	clean := evaluate(t, e, cleanInput())
	for _, c := range e.Checks() {
		t.Run(c.ID, func(t *testing.T) {
			tc, ok := builtinCases[c.ID]
			if !ok {
				t.Fatalf("no test case for built-in check %s", c.ID)
			}
			for _, f := range clean {
				if f.CheckID == c.ID {
					t.Errorf("clean input fails: %+v", f)
				}
			}
			in := cleanInput()
			tc.breakIt(in)
			var got []Finding
			for _, f := range evaluate(t, e, in) {
				if f.CheckID == c.ID {
					got = append(got, f)
				}
			}
			if len(got) != 1 {
				t.Fatalf("got %d findings for %s, want 1: %+v", len(got), c.ID, got)
			}
			if diff := cmp.Diff(tc.want, got[0].Resource); diff != "" {
				t.Errorf("resource (-want +got):\n%s", diff)
			}
			if len(got[0].Evidence) == 0 {
				t.Errorf("finding has no evidence")
			}
			if tc.evidence != nil {
				if diff := cmp.Diff(tc.evidence, got[0].Evidence); diff != "" {
					t.Errorf("evidence (-want +got):\n%s", diff)
				}
			}
			if got[0].Title != c.Title || got[0].Severity != c.Severity || got[0].Remediation == "" || len(got[0].Frameworks) == 0 {
				t.Errorf("finding does not carry the check's metadata: %+v", got[0])
			}
		})
	}
	for id := range builtinCases {
		if !containsCheck(e.Checks(), id) {
			t.Errorf("test case for unknown check %s", id)
		}
	}
}

func containsCheck(cs []Check, id string) bool {
	for _, c := range cs {
		if c.ID == id {
			return true
		}
	}
	return false
}

// TestMixedInput pins the complete, ordered finding set of a small cluster
// with a few problems.
func TestMixedInput(t *testing.T) {
	in := cleanInput()
	// A privileged DaemonSet-like bare pod with a hostPath volume.
	bad := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "debug"},
		Spec:       hardenedPodSpec("web", hardenedContainer("shell")),
	}
	bad.Spec.Containers[0].SecurityContext.Privileged = ptr(true)
	bad.Spec.Volumes = append(bad.Spec.Volumes, hostPathVolume)
	in.Pods = append(in.Pods, bad)
	// A Job owned by a CronJob is judged through the CronJob, which is clean.
	cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "nightly"}}
	cj.Spec.JobTemplate.Spec.Template.Spec = hardenedPodSpec("web", hardenedContainer("job"))
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "nightly-1", OwnerReferences: controllerRef("CronJob", "nightly")}}
	job.Spec.Template.Spec = hardenedPodSpec("web", hardenedContainer("job"))
	job.Spec.Template.Spec.HostPID = true
	in.CronJobs = append(in.CronJobs, cj)
	in.Jobs = append(in.Jobs, job)
	grantMallory(rule([]string{"list"}, []string{""}, []string{"secrets"}))(in)

	debug := Resource{Kind: "Pod", Namespace: "app", Name: "debug"}
	secretsEvidence := []string{"list secrets cluster-wide via ClusterRoleBinding mallory -> ClusterRole mallory"}
	want := []Finding{
		{CheckID: "CIS-5.1.2", Resource: mallory, Evidence: secretsEvidence},
		{CheckID: "CIS-5.2.11", Resource: debug, Evidence: []string{"volume root: hostPath /"}},
		{CheckID: "CIS-5.2.2", Resource: debug, Evidence: []string{"container shell: securityContext.privileged=true"}},
		{CheckID: "PSS-BASELINE-HOST-PATH", Resource: debug, Evidence: []string{"volume root: hostPath /"}},
		{CheckID: "PSS-BASELINE-PRIVILEGED", Resource: debug, Evidence: []string{"container shell: securityContext.privileged=true"}},
		{CheckID: "PSS-RESTRICTED-VOLUME-TYPES", Resource: debug, Evidence: []string{"volume root: hostPath"}},
		{CheckID: "RBAC-SECRETS-CLUSTER-WIDE", Resource: mallory, Evidence: secretsEvidence},
	}
	got := evaluate(t, builtinEngine(t), in)
	for i := range got {
		got[i].Title, got[i].Severity, got[i].Frameworks, got[i].Remediation = "", "", nil, ""
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	if !sort.SliceIsSorted(got, func(i, j int) bool { return got[i].CheckID < got[j].CheckID }) {
		t.Errorf("findings are not ordered by check id")
	}
}
