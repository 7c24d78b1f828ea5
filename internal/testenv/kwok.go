package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// kwokStages are the lifecycle definitions kwok plays for fake nodes and
// their pods, from the stage directory hack/testbin.sh copies out of the
// kwok module: nodes become Ready and keep their lease, pods become Running,
// finish when their containers would, and go away when deleted.
var kwokStages = []string{
	"node/fast/node-initialize.yaml",
	"node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
	"pod/fast/pod-ready.yaml",
	"pod/fast/pod-complete.yaml",
	"pod/fast/pod-delete.yaml",
}

const kwokAnnotation = "kwok.x-k8s.io/node"

func (k *Kube) startKwok(ctx context.Context, s scope, logs, bin string) error {
	port, err := FreePort()
	if err != nil {
		return err
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, `apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
options:
  cidr: 10.244.0.0/16
  nodeIP: 127.0.0.1
  serverAddress: "127.0.0.1:%d"
  manageNodesWithAnnotationSelector: %s=fake
  nodeLeaseDurationSeconds: 40
  podPlayStageParallelism: 4
  nodePlayStageParallelism: 4
  nodeLeaseParallelism: 4
  podsOnNodeSyncParallelism: 4
`, port, kwokAnnotation)
	stageDir := filepath.Join(filepath.Dir(bin), "stage")
	for _, f := range kwokStages {
		data, err := os.ReadFile(filepath.Join(stageDir, f))
		if err != nil {
			return fmt.Errorf("%w: kwok stage %s: %w", errMissing, f, err)
		}
		cfg.WriteString("---\n")
		cfg.Write(data)
		cfg.WriteString("\n")
	}
	cfgPath := k.path("kwok.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o644); err != nil {
		return fmt.Errorf("writing kwok configuration: %w", err)
	}
	home := k.path("kwok-home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		return fmt.Errorf("creating kwok home: %w", err)
	}
	p, err := startProcess(logs, "kwok", processOptions{env: []string{"HOME=" + home}}, bin,
		"--kubeconfig", k.KubeconfigPath, "--config", cfgPath,
		"--manage-all-nodes=false", "--manage-nodes-with-annotation-selector="+kwokAnnotation+"=fake")
	if err != nil {
		return err
	}
	s.Cleanup(func() { p.Stop(10 * time.Second) })

	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse(strconv.Itoa(110)),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        KwokNode,
			Annotations: map[string]string{kwokAnnotation: "fake"},
			Labels:      map[string]string{"kubernetes.io/hostname": KwokNode, "kubernetes.io/os": "linux", "type": "kwok"},
		},
		Status: corev1.NodeStatus{Allocatable: capacity, Capacity: capacity},
	}
	if _, err := k.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating kwok node: %w", err)
	}
	return waitFor(ctx, "kwok node Ready", p, 200*time.Millisecond, func(ctx context.Context) (bool, error) {
		n, err := k.Client.CoreV1().Nodes().Get(ctx, KwokNode, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
}
