package auditlog

import (
	"encoding/json"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

func object(s string) *runtime.Unknown {
	if s == "" {
		return nil
	}
	return &runtime.Unknown{Raw: []byte(s), ContentType: runtime.ContentTypeJSON}
}

func event(group, resource, subresource, req, resp string) Event {
	return Event{
		Level: auditv1.LevelRequestResponse, AuditID: "a1", Stage: auditv1.StageResponseComplete, Verb: "create",
		ObjectRef:      &auditv1.ObjectReference{APIGroup: group, Resource: resource, Subresource: subresource, Namespace: "ns", Name: "x"},
		RequestObject:  object(req),
		ResponseObject: object(resp),
	}
}

// nested is a List holding a Secret under depth arrays.
func nested(depth int) string {
	return `{"kind":"List","apiVersion":"v1","items":` + strings.Repeat("[", depth) +
		`{"kind":"Secret","apiVersion":"v1","data":{"k":"ZGVlcA=="}}` + strings.Repeat("]", depth) + `}`
}

func TestRedact(t *testing.T) {
	const secret = `{"kind":"Secret","apiVersion":"v1","metadata":{"name":"db","namespace":"ns"},"type":"Opaque","data":{"password":"U0VDUkVULURBVEE="},"stringData":{"p":"SECRET-STRING"}}`
	tests := []struct {
		name     string
		event    Event
		want     bool     // Redact's result
		gone     []string // must not survive
		kept     []string // must survive
		dropReq  bool     // request object dropped entirely
		dropResp bool
	}{
		{
			name:  "secret create",
			event: event("", "secrets", "", secret, secret),
			want:  true, gone: []string{"U0VDUkVULURBVEE=", "SECRET-STRING", `"data"`, `"stringData"`},
			kept: []string{`"name":"db"`, `"type":"Opaque"`},
		},
		{
			name: "secret list",
			event: event("", "secrets", "", "", `{"kind":"SecretList","apiVersion":"v1","metadata":{"resourceVersion":"7"},"items":[`+
				`{"metadata":{"name":"a"},"data":{"k":"U0VDUkVUMQ=="},"type":"kubernetes.io/service-account-token"},{"metadata":{"name":"b"},"stringData":{"k":"SECRET2"}}]}`),
			want: true, gone: []string{"U0VDUkVUMQ==", "SECRET2"},
			kept: []string{`"name":"a"`, `"name":"b"`, `"resourceVersion":"7"`, "kubernetes.io/service-account-token"},
		},
		{
			name:  "configmap",
			event: event("", "configmaps", "", `{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"c"},"data":{"k":"CM-VALUE"},"binaryData":{"b":"QklOLVZBTFVF"}}`, ""),
			want:  true, gone: []string{"CM-VALUE", "QklOLVZBTFVF"}, kept: []string{`"name":"c"`},
		},
		{
			name: "last-applied annotation of a secret",
			event: event("", "secrets", "", `{"kind":"Secret","apiVersion":"v1","metadata":{"name":"s","annotations":{"kubectl.kubernetes.io/last-applied-configuration":`+
				`"{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"s\"},\"stringData\":{\"password\":\"APPLIED-VALUE\"}}\n","team":"db"}},"data":{"password":"QVBQTElFRA=="}}`, ""),
			want: true, gone: []string{"APPLIED-VALUE", "QVBQTElFRA=="}, kept: []string{`"team":"db"`, `\"name\":\"s\"`},
		},
		{
			name: "secret in a list in a last-applied annotation of another resource",
			event: event("apps", "deployments", "", `{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"d","annotations":{"kubectl.kubernetes.io/last-applied-configuration":`+
				`"{\"kind\":\"List\",\"items\":[{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"data\":{\"k\":\"TkVTVEVELVNFQ1JFVA==\"}}]}"}},"spec":{"replicas":2}}`, ""),
			want: true, gone: []string{"TkVTVEVELVNFQ1JFVA=="}, kept: []string{`"replicas":2`},
		},
		{
			name: "token review",
			event: event("authentication.k8s.io", "tokenreviews", "", `{"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","spec":{"token":"REVIEWED-TOKEN","audiences":["api"]}}`,
				`{"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","spec":{"token":"REVIEWED-TOKEN"},"status":{"authenticated":true,"user":{"username":"alice"}}}`),
			want: true, gone: []string{"REVIEWED-TOKEN"}, kept: []string{`"username":"alice"`, `"audiences":["api"]`},
		},
		{
			name: "token request",
			event: event("", "serviceaccounts", "token", `{"kind":"TokenRequest","apiVersion":"authentication.k8s.io/v1","spec":{"audiences":["api"],"expirationSeconds":3600}}`,
				`{"kind":"TokenRequest","apiVersion":"authentication.k8s.io/v1","metadata":{"name":"robot"},"spec":{"audiences":["api"]},"status":{"token":"eyJhbGciOiJSUzI1NiJ9.ISSUED.TOKEN","expirationTimestamp":"2030-01-01T00:00:00Z"}}`),
			want: true, gone: []string{"ISSUED.TOKEN"}, kept: []string{`"expirationSeconds":3600`, "2030-01-01T00:00:00Z"},
		},
		{
			name: "pod env values stay",
			event: event("", "pods", "", `{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"nginx","env":[{"name":"MODE","value":"ENV-VALUE-STAYS"},`+
				`{"name":"PW","valueFrom":{"secretKeyRef":{"name":"db","key":"password"}}}],"volumes":[{"name":"s","secret":{"secretName":"db"}}]}]}}`, ""),
			want: false, kept: []string{"ENV-VALUE-STAYS", `"secretName":"db"`},
		},
		{
			name:  "owner reference to a secret stays",
			event: event("", "pods", "", `{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","ownerReferences":[{"apiVersion":"v1","kind":"Secret","name":"owner","uid":"u1"}]}}`, ""),
			want:  false, kept: []string{`"name":"owner"`, `"uid":"u1"`},
		},
		{
			name:  "escaped kind in another resource",
			event: event("", "pods", "", `{"kind":"\u0053ecret","apiVersion":"v1","data":{"k":"RVNDQVBFRA=="}}`, ""),
			want:  true, gone: []string{"RVNDQVBFRA=="},
		},
		{
			name:  "json patch to a secret",
			event: event("", "secrets", "", `[{"op":"add","path":"/data/token","value":"UEFUQ0hFRA=="},{"op":"remove","path":"/data/old"}]`, ""),
			want:  true, gone: []string{"UEFUQ0hFRA=="}, kept: []string{`"path":"/data/token"`, `"op":"remove"`},
		},
		{
			name:  "merge patch to a configmap",
			event: event("", "configmaps", "", `{"data":{"k":"MERGED-VALUE"},"metadata":{"labels":{"app":"web"}}}`, ""),
			want:  true, gone: []string{"MERGED-VALUE"}, kept: []string{`"app":"web"`},
		},
		{
			name: "table of secrets with objects",
			event: event("", "secrets", "", "", `{"kind":"Table","apiVersion":"meta.k8s.io/v1","columnDefinitions":[{"name":"Name","type":"string"}],`+
				`"rows":[{"cells":["db","Opaque",1],"object":{"kind":"Secret","apiVersion":"v1","metadata":{"name":"db"},"data":{"k":"VEFCTEVE"}}}]}`),
			want: true, gone: []string{"VEFCTEVE"}, kept: []string{`"cells":["db","Opaque",1]`, `"columnDefinitions"`},
		},
		{
			name:  "secret delete status stays",
			event: event("", "secrets", "", "", `{"kind":"Status","apiVersion":"v1","status":"Success","details":{"name":"db","kind":"secrets"}}`),
			want:  false, kept: []string{`"status":"Success"`},
		},
		{
			name: "credential annotations",
			event: func() Event {
				e := event("", "pods", "", "", "")
				e.Annotations = map[string]string{
					"example.com/authorization":     "Bearer SOMEBEARERTOKEN123",
					"example.com/forwarded":         "saw Basic QUxBRERJTjpPUEVOU0VTQU1F in a header",
					"example.com/jwt":               "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.SIGNATUREVALUE",
					"authorization.k8s.io/decision": "allow",
					"authorization.k8s.io/reason":   `RBAC: allowed by ClusterRoleBinding "basic-user" of ClusterRole "basic-user"`,
				}
				return e
			}(),
			want: true, gone: []string{"SOMEBEARERTOKEN123", "QUxBRERJTjpPUEVOU0VTQU1F", "SIGNATUREVALUE"},
			kept: []string{`"authorization.k8s.io/decision":"allow"`, `ClusterRole \"basic-user\"`, "in a header"},
		},
		{
			name:  "invalid JSON in a secret",
			event: event("", "secrets", "", `{"kind":"Secret","data":{"k":"VU5URVJNSU5BVEVE"`, `{"data":`),
			want:  true, gone: []string{"VU5URVJNSU5BVEVE"},
			dropReq: true, dropResp: true,
		},
		{
			name:    "invalid JSON elsewhere",
			event:   event("", "pods", "", `not json at all`, ""),
			want:    true,
			dropReq: true,
		},
		{
			name: "protobuf secret",
			event: func() Event {
				e := event("", "secrets", "", "x", "")
				e.RequestObject.ContentType = "application/vnd.kubernetes.protobuf"
				return e
			}(),
			want: true, dropReq: true,
		},
		{
			name:  "deeply nested secret",
			event: event("", "pods", "", nested(5000), ""),
			want:  true, gone: []string{"ZGVlcA=="},
			dropReq: true,
		},
		{
			name:  "nested within limits",
			event: event("", "pods", "", nested(50), ""),
			want:  true, gone: []string{"ZGVlcA=="}, kept: []string{`"kind":"Secret"`},
		},
		{
			name:    "huge object",
			event:   event("", "pods", "", `{"kind":"Pod","x":"`+strings.Repeat("A", MaxObjectSize)+`"}`, ""),
			want:    true,
			dropReq: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.event
			if got := Redact(&e); got != tt.want {
				t.Errorf("Redact() = %v, want %v", got, tt.want)
			}
			out, err := json.Marshal(e)
			if err != nil {
				t.Fatalf("marshalling the redacted event: %v", err)
			}
			for _, s := range tt.gone {
				if strings.Contains(string(out), s) {
					t.Errorf("%q survived redaction", s)
				}
			}
			for _, s := range tt.kept {
				if !strings.Contains(string(out), s) {
					t.Errorf("%q was removed; event: %.2000s", s, out)
				}
			}
			if got := e.RequestObject == nil && tt.event.RequestObject != nil; got != tt.dropReq {
				t.Errorf("request object dropped = %v, want %v", got, tt.dropReq)
			}
			if got := e.ResponseObject == nil && tt.event.ResponseObject != nil; got != tt.dropResp {
				t.Errorf("response object dropped = %v, want %v", got, tt.dropResp)
			}
			if tt.want && e.Annotations[RedactedAnnotation] == "" {
				t.Errorf("redacted event lacks %s", RedactedAnnotation)
			}
			if Redact(&e) {
				t.Errorf("a second Redact removed more")
			}
		})
	}
}

func TestRedactNil(t *testing.T) {
	if Redact(nil) {
		t.Error("Redact(nil) = true")
	}
	e := event("", "secrets", "", "null", "")
	if Redact(&e) {
		t.Error("Redact removed something from a null object")
	}
}

// FuzzRedact feeds arbitrary bytes as the objects of events of every
// resource kind: Redact must not panic, must leave a marshallable event
// and must leave secret resources only their metadata.
func FuzzRedact(f *testing.F) {
	f.Add(uint8(1), []byte(`{"kind":"Secret","apiVersion":"v1","data":{"k":"dg=="}}`), []byte(`{"kind":"SecretList","items":[{"data":{}}]}`))
	f.Add(uint8(0), []byte(`{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"kind\":\"Secret\",\"data\":{}}"}}}`), []byte(`[1,2,{"kind":"ConfigMap"}]`))
	f.Add(uint8(2), []byte(`{"spec":{"token":"t"}}`), []byte(`{"kind":"TokenReview","spec":{"Token":"t"}}`))
	f.Add(uint8(3), []byte(`{"status":{"token":"t"}}`), []byte(`{"kind":"\u0054okenRequest","status":{"token":"t"}}`))
	f.Add(uint8(1), []byte(`[{"op":"add","path":"/data/x","value":"v"},7]`), []byte(`{"kind":"Table","rows":[{"object":{"data":1}},3]}`))
	f.Add(uint8(0), []byte(`{"a":`), []byte(`"\ud800"`))
	refs := []*auditv1.ObjectReference{
		{Resource: "pods"},
		{Resource: "secrets"},
		{APIGroup: "authentication.k8s.io", Resource: "tokenreviews"},
		{Resource: "serviceaccounts", Subresource: "token"},
		{Resource: "configmaps"},
		nil,
	}
	f.Fuzz(func(t *testing.T, ref uint8, req, resp []byte) {
		e := Event{ObjectRef: refs[int(ref)%len(refs)]}
		if len(req) > 0 {
			e.RequestObject = &runtime.Unknown{Raw: req}
		}
		if len(resp) > 0 {
			e.ResponseObject = &runtime.Unknown{Raw: resp}
		}
		Redact(&e)
		if _, err := json.Marshal(e); err != nil {
			t.Fatalf("redacted event does not marshal: %v", err)
		}
		if classify(e.ObjectRef) == secretResource {
			for _, o := range []*runtime.Unknown{e.RequestObject, e.ResponseObject} {
				if o == nil {
					continue
				}
				var m map[string]json.RawMessage
				if json.Unmarshal(o.Raw, &m) != nil || m["kind"] != nil && string(m["kind"]) == `"Status"` {
					continue
				}
				for k := range m {
					switch k {
					case "apiVersion", "kind", "metadata", "type", "immutable", "items", "rows", "columnDefinitions":
					default:
						t.Fatalf("secret object kept field %q", k)
					}
				}
			}
		}
		if Redact(&e) {
			t.Fatalf("a second Redact removed more")
		}
	})
}
