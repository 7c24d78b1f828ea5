package admission

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Container kinds, as the image variable's containerKind names them.
const (
	KindInitContainer      = "initContainer"
	KindContainer          = "container"
	KindEphemeralContainer = "ephemeralContainer"
)

// The objects below decode only what a review needs from request.object;
// everything else in the (caller-controlled) JSON is skipped.
type objectMeta struct {
	Name            string            `json:"name"`
	GenerateName    string            `json:"generateName"`
	Namespace       string            `json:"namespace"`
	Labels          map[string]string `json:"labels"`
	Annotations     map[string]string `json:"annotations"`
	OwnerReferences []struct {
		Kind       string `json:"kind"`
		Name       string `json:"name"`
		Controller *bool  `json:"controller"`
	} `json:"ownerReferences"`
}

type containerSpec struct {
	Name  string `json:"name"`
	Image string `json:"image"`
}

type podSpec struct {
	InitContainers      []containerSpec `json:"initContainers"`
	Containers          []containerSpec `json:"containers"`
	EphemeralContainers []containerSpec `json:"ephemeralContainers"`
}

type podTemplate struct {
	Metadata objectMeta `json:"metadata"`
	Spec     podSpec    `json:"spec"`
}

type podObject struct {
	Metadata objectMeta `json:"metadata"`
	Spec     podSpec    `json:"spec"`
}

type templateObject struct {
	Metadata objectMeta `json:"metadata"`
	Spec     struct {
		Template podTemplate `json:"template"`
	} `json:"spec"`
}

type cronJobObject struct {
	Metadata objectMeta `json:"metadata"`
	Spec     struct {
		JobTemplate struct {
			Metadata objectMeta `json:"metadata"`
			Spec     struct {
				Template podTemplate `json:"template"`
			} `json:"spec"`
		} `json:"jobTemplate"`
	} `json:"spec"`
}

// reviewedKinds maps group/kind of the workloads the webhook reviews.
var reviewedKinds = map[string]bool{
	"/Pod": true, "apps/Deployment": true, "apps/ReplicaSet": true, "apps/StatefulSet": true,
	"apps/DaemonSet": true, "batch/Job": true, "batch/CronJob": true,
}

// workloadObject is a decoded object: its metadata, the metadata of its
// pod template (for a Pod, the same) and its containers.
type workloadObject struct {
	meta, template objectMeta
	containers     []container
	controlled     bool // a Pod with a controller owner reference
}

type container struct {
	name, kind, image string
}

func decodeWorkload(kind string, raw []byte) (*workloadObject, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("decoding %s: request has no object", kind)
	}
	w := &workloadObject{}
	var spec *podSpec
	switch kind {
	case "Pod":
		var o podObject
		if err := json.Unmarshal(raw, &o); err != nil {
			return nil, fmt.Errorf("decoding Pod: %w", err)
		}
		w.meta, w.template, spec = o.Metadata, o.Metadata, &o.Spec
		for _, r := range o.Metadata.OwnerReferences {
			if r.Controller != nil && *r.Controller {
				w.controlled = true
			}
		}
	case "CronJob":
		var o cronJobObject
		if err := json.Unmarshal(raw, &o); err != nil {
			return nil, fmt.Errorf("decoding CronJob: %w", err)
		}
		w.meta, w.template, spec = o.Metadata, o.Spec.JobTemplate.Spec.Template.Metadata, &o.Spec.JobTemplate.Spec.Template.Spec
	default:
		var o templateObject
		if err := json.Unmarshal(raw, &o); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", kind, err)
		}
		w.meta, w.template, spec = o.Metadata, o.Spec.Template.Metadata, &o.Spec.Template.Spec
	}
	add := func(cs []containerSpec, k string) {
		for _, c := range cs {
			w.containers = append(w.containers, container{name: c.Name, kind: k, image: strings.TrimSpace(c.Image)})
		}
	}
	add(spec.InitContainers, KindInitContainer)
	add(spec.Containers, KindContainer)
	add(spec.EphemeralContainers, KindEphemeralContainer)
	return w, nil
}

// imageRef is a reference split into its parts, for Match when the
// provider could not say (an unknown image) and for messages.
type imageRef struct {
	registry, repository, tag, digest string
}

// parseReference splits an image reference the way container runtimes
// read it: docker.io is the default registry and "library/" the default
// namespace of single-name images on it.
func parseReference(ref string) imageRef {
	var r imageRef
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref, r.digest = ref[:i], ref[i+1:]
	}
	if i := strings.LastIndexByte(ref, ':'); i >= 0 && !strings.Contains(ref[i:], "/") {
		ref, r.tag = ref[:i], ref[i+1:]
	}
	first, rest, found := strings.Cut(ref, "/")
	if found && (strings.ContainsAny(first, ".:") || first == "localhost") {
		r.registry, r.repository = first, rest
	} else {
		r.registry, r.repository = "docker.io", ref
		if !found {
			r.repository = "library/" + ref
		}
	}
	if r.tag == "" && r.digest == "" {
		r.tag = "latest"
	}
	return r
}
