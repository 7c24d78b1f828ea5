package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	"github.com/bulwarkhq/bulwark/internal/auditlog"
	"github.com/bulwarkhq/bulwark/internal/detect"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// benchEventList is a webhook batch of n events as a busy cluster sends
// them: mostly controllers and users reading and updating, some pod
// creations with their bodies, a few attacks.
func benchEventList(n, batch int) []byte {
	at := metav1.NewMicroTime(time.Now())
	list := auditv1.EventList{TypeMeta: metav1.TypeMeta{Kind: "EventList", APIVersion: "audit.k8s.io/v1"}}
	pod := `{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web","namespace":"shop"},"spec":{"containers":[{"name":"app","image":"registry.example/app:1"}]}}`
	for i := range n {
		e := auditv1.Event{TypeMeta: metav1.TypeMeta{Kind: "Event", APIVersion: "audit.k8s.io/v1"}, Level: auditv1.LevelMetadata,
			AuditID: types.UID(fmt.Sprintf("b%d-%08d", batch, i)), Stage: auditv1.StageResponseComplete, RequestURI: "/api/v1/namespaces/shop/pods",
			Verb: "list", User: authnv1.UserInfo{Username: "system:kube-controller-manager", Groups: []string{"system:authenticated"}},
			SourceIPs: []string{"10.0.0.1"}, UserAgent: "kube-controller-manager/v1.34.0",
			ObjectRef:      &auditv1.ObjectReference{Resource: "pods", Namespace: "shop", APIVersion: "v1"},
			ResponseStatus: &metav1.Status{Code: 200}, RequestReceivedTimestamp: at, StageTimestamp: at}
		switch i % 20 {
		case 0:
			e.Verb, e.Level = "create", auditv1.LevelRequest
			e.User.Username, e.UserAgent = "alice", "kubectl/v1.34.0"
			e.RequestObject = &runtime.Unknown{Raw: []byte(pod)}
			e.ResponseStatus.Code = 201
		case 1:
			e.Verb, e.ObjectRef.Resource, e.ObjectRef.Subresource, e.ObjectRef.Name = "create", "pods", "exec", "web"
			e.User.Username = fmt.Sprintf("user-%d", i%7)
		case 2, 3, 4:
			e.Verb, e.ObjectRef.Name = "update", "web"
			e.ObjectRef.Subresource = "status"
		}
		list.Items = append(list.Items, e)
	}
	data, _ := json.Marshal(list)
	return data
}

// BenchmarkIngestBatch is the server's work for one audit webhook batch of
// 1,000 events: parse and redact, store in SQLite, judge with every
// built-in rule, save the alerts.
func BenchmarkIngestBatch(b *testing.B) {
	db, err := store.OpenSQLite(context.Background(), filepath.Join(b.TempDir(), "bulwark.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	p, err := New(Options{Store: db, Rules: detect.Builtin()})
	if err != nil {
		b.Fatal(err)
	}
	sink := p.Sink("bench")
	batches := make([][]byte, 0, 64)
	for i := range 64 {
		batches = append(batches, benchEventList(1000, i))
	}
	ctx := context.Background()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if i > 0 && i%len(batches) == 0 {
			// Fresh audit ids: a batch seen before is skipped as a resend.
			b.StopTimer()
			for j := range batches {
				batches[j] = benchEventList(1000, i+j)
			}
			b.StartTimer()
		}
		events, err := auditlog.ParseEventList(batches[i%len(batches)])
		if err != nil {
			b.Fatal(err)
		}
		if err := sink(ctx, events); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}
