package detect

import (
	"context"
	"testing"
	"time"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// benchStream is 10,000 events: the ordinary mix of reads, watches, status
// and lease updates and controller writes, with one attack in a hundred.
func benchStream() []auditv1.Event {
	events := ordinaryStream(10_000)
	attacks := []auditv1.Event{
		exec("app", "web"),
		ev("create", "deployments", in("app", "miner"), request(deploymentJSON(hostPathJSON("/"), `,"securityContext":{"privileged":true}`))),
		ev("create", "clusterrolebindings", named("b"), request(bindingJSON("ClusterRoleBinding", "cluster-admin", saSubject))),
		ev("list", "secrets", in("app", ""), by(webPod)),
		ev("list", "pods", in("default", ""), by(anonymous)),
		ev("list", "secrets", in("kube-system", ""), by(webPod), code(403)),
	}
	for i := 50; i < len(events); i += 100 {
		a := attacks[(i/100)%len(attacks)]
		a.StageTimestamp = events[i].StageTimestamp
		events[i] = a
	}
	return events
}

func BenchmarkProcess(b *testing.B) {
	events := benchStream()
	e := newBuiltinEngine(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Shift the stream so that every iteration sees new time and groups
		// and state age out as in a live cluster.
		shift := time.Duration(i) * time.Hour
		for j := range events {
			events[j].StageTimestamp.Time = t0.Add(shift + time.Duration(j)*time.Millisecond)
		}
		e.Process(ctx, events)
		e.Flush(t0.Add(shift + time.Hour))
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*len(events))/b.Elapsed().Seconds(), "events/s")
}
