package nodedetect

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/interpreter"
	"golang.org/x/net/publicsuffix"

	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
)

// object is a value of one of the view's object types. Fields are
// converted when a rule first reads them and kept for the other rules
// judging the same event.
type object struct {
	typ   *objType
	cache []ref.Val
	get   func(i int) ref.Val
}

func newObject(typ *objType, get func(i int) ref.Val) *object {
	return &object{typ: typ, cache: make([]ref.Val, len(typ.fields)), get: get}
}

func (o *object) field(i int) ref.Val {
	if v := o.cache[i]; v != nil {
		return v
	}
	v := o.get(i)
	o.cache[i] = v
	return v
}

func (o *object) reset() { clear(o.cache) }

// Get and IsSet serve rules that reach an object through dyn.
func (o *object) Get(key ref.Val) ref.Val {
	k, ok := key.(types.String)
	if !ok {
		return types.NewErr("no such key: %v", key)
	}
	for i, f := range o.typ.fields {
		if f == string(k) {
			return o.field(i)
		}
	}
	return types.NewErr("no such field: %s", k)
}

func (o *object) IsSet(field ref.Val) ref.Val {
	k, ok := field.(types.String)
	if !ok {
		return types.NewErr("no such key: %v", field)
	}
	_, found := o.typ.ftypes[string(k)]
	return types.Bool(found)
}

func (o *object) ConvertToNative(t reflect.Type) (any, error) {
	if reflect.TypeOf(o).AssignableTo(t) {
		return o, nil
	}
	return nil, fmt.Errorf("type conversion error from %s to %s", o.typ.typ.TypeName(), t)
}

func (o *object) ConvertToType(t ref.Type) ref.Val {
	switch {
	case t == types.TypeType:
		return o.typ.typ
	case t.TypeName() == o.typ.typ.TypeName():
		return o
	}
	return types.NewErr("type conversion error from %s to %s", o.typ.typ.TypeName(), t.TypeName())
}

func (o *object) Equal(other ref.Val) ref.Val { return types.Bool(other == ref.Val(o)) }
func (o *object) Type() ref.Type              { return o.typ.typ }
func (o *object) Value() any                  { return o }

var (
	_ traits.Indexer     = (*object)(nil)
	_ traits.FieldTester = (*object)(nil)
)

// procData is what a process object shows.
type procData struct {
	p *wire.Process
	// downloaded and source come from the engine's correlation; they are
	// set on the event's own process only.
	downloaded bool
	source     string
}

func (d *procData) get(i int) ref.Val {
	p := d.p
	switch i {
	case pPID:
		return types.Int(p.PID)
	case pPPID:
		return types.Int(p.PPID)
	case pUID:
		return types.Int(p.UID)
	case pComm:
		return types.String(p.Comm)
	case pExe:
		return types.String(p.Exe)
	case pName:
		return types.String(processName(p))
	case pArgs:
		return types.NewStringList(types.DefaultTypeAdapter, nonNil(p.Args))
	case pArgsTruncated:
		return types.Bool(p.ArgsTruncated)
	case pCmdline:
		return types.String(strings.Join(p.Args, " "))
	case pDrift:
		return types.Bool(p.Drift)
	case pStdin:
		return types.String(p.Stdin)
	case pStdout:
		return types.String(p.Stdout)
	case pStderr:
		return types.String(p.Stderr)
	case pRemote:
		return types.String(p.Remote)
	case pDownloaded:
		return types.Bool(d.downloaded)
	case pDownloadSource:
		return types.String(d.source)
	}
	return types.NewErr("no such field")
}

// processName is the base name of the executable, or the command name when
// the sensor did not know the path.
func processName(p *wire.Process) string {
	if n := baseName(p.Exe); n != "" {
		return n
	}
	return p.Comm
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

var (
	noProcess   wire.Process
	noContainer wire.Container
	noDNS       wire.DNSQuery
)

// view is the activation of every rule: the variables of one event. The
// engine reuses one view (it serialises Process), so judging an event
// allocates only for the fields rules read.
type view struct {
	ev                *wire.Event
	nodeName, cluster string
	node, clust       ref.Val

	event, process, parent, container, dns, remote *object
	proc, par                                      procData
	ctr                                            *wire.Container
	q                                              *wire.DNSQuery
	// ancestors holds MaxAncestors objects; ancList the list of the first
	// len(ev.Ancestors) of them, built when a rule reads it.
	ancestors []*object
	ancData   []procData
	ancVals   []ref.Val
	ancList   ref.Val
	addr      netip.AddrPort
	addrOK    bool
}

func newView() *view {
	v := &view{}
	v.event = newObject(eventType, v.eventField)
	v.process = newObject(processType, v.proc.get)
	v.parent = newObject(processType, v.par.get)
	v.container = newObject(containerType, v.containerField)
	v.dns = newObject(dnsType, v.dnsField)
	v.remote = newObject(remoteType, v.remoteField)
	v.ancData = make([]procData, wire.MaxAncestors)
	v.ancestors = make([]*object, wire.MaxAncestors)
	for i := range v.ancestors {
		v.ancestors[i] = newObject(processType, v.ancData[i].get)
	}
	v.ancVals = make([]ref.Val, 0, wire.MaxAncestors)
	return v
}

// reset points the view at ev. Ancestors beyond wire.MaxAncestors (which
// Validate refuses) are not shown.
func (v *view) reset(ev *wire.Event, node, cluster string, downloaded bool, source string) {
	v.ev = ev
	// Converting a string to a ref.Val allocates; the node and cluster
	// rarely change between events.
	if v.node == nil || v.nodeName != node {
		v.nodeName, v.node = node, types.String(node)
	}
	if v.clust == nil || v.cluster != cluster {
		v.cluster, v.clust = cluster, types.String(cluster)
	}
	for _, o := range []*object{v.event, v.process, v.parent, v.container, v.dns, v.remote} {
		o.reset()
	}
	v.proc = procData{p: &ev.Process, downloaded: downloaded, source: source}
	v.par = procData{p: &noProcess}
	if len(ev.Ancestors) > 0 {
		v.par.p = &ev.Ancestors[0]
	}
	v.ctr = ev.Container
	if v.ctr == nil {
		v.ctr = &noContainer
	}
	v.q = ev.DNS
	if v.q == nil {
		v.q = &noDNS
	}
	v.ancList = nil
	v.addr, v.addrOK = netip.AddrPort{}, false
	if ev.Remote != "" {
		v.addr, v.addrOK = parseAddrPort(ev.Remote)
	}
}

func parseAddrPort(s string) (netip.AddrPort, bool) {
	ap, err := netip.ParseAddrPort(s)
	return ap, err == nil
}

var noEvent wire.Event

// clear drops the references to the caller's event.
func (v *view) clear() {
	v.reset(&noEvent, v.nodeName, v.cluster, false, "")
	for i := range v.ancData {
		v.ancData[i].p = &noProcess
	}
}

// ResolveName makes the view its own activation.
func (v *view) ResolveName(name string) (any, bool) {
	switch name {
	case "event":
		return v.event, true
	case "process":
		return v.process, true
	case "parent":
		return v.parent, true
	case "ancestors":
		return v.ancestorList(), true
	case "container":
		return v.container, true
	case "inContainer":
		return types.Bool(v.ev.Container != nil), true
	case "dns":
		return v.dns, true
	case "remote":
		return v.remote, true
	case "node":
		return v.node, true
	case "cluster":
		return v.clust, true
	}
	return nil, false
}

func (v *view) Parent() interpreter.Activation { return nil }

var _ interpreter.Activation = (*view)(nil)

func (v *view) ancestorList() ref.Val {
	if v.ancList != nil {
		return v.ancList
	}
	n := min(len(v.ev.Ancestors), len(v.ancestors))
	v.ancVals = v.ancVals[:0]
	for i := range n {
		v.ancData[i] = procData{p: &v.ev.Ancestors[i]}
		v.ancestors[i].reset()
		v.ancVals = append(v.ancVals, v.ancestors[i])
	}
	v.ancList = types.NewRefValList(types.DefaultTypeAdapter, v.ancVals)
	return v.ancList
}

func (v *view) eventField(i int) ref.Val {
	switch i {
	case eKind:
		return types.String(v.ev.Kind)
	case eTime:
		return types.Timestamp{Time: v.ev.Time}
	}
	return types.NewErr("no such field")
}

func (v *view) containerField(i int) ref.Val {
	c := v.ctr
	switch i {
	case cID:
		return types.String(c.ID)
	case cName:
		return types.String(c.Name)
	case cPod:
		return types.String(c.Pod)
	case cNamespace:
		return types.String(c.Namespace)
	case cImage:
		return types.String(c.Image)
	case cDigest:
		return types.String(c.Digest)
	}
	return types.NewErr("no such field")
}

func (v *view) dnsField(i int) ref.Val {
	q := v.q
	switch i {
	case dName:
		return types.String(q.Name)
	case dType:
		return types.String(q.Type)
	case dServer:
		return types.String(q.Server)
	case dTLD:
		name := strings.TrimSuffix(q.Name, ".")
		return types.String(name[strings.LastIndexByte(name, '.')+1:])
	case dDomain, dSubdomain:
		domain, sub := splitDomain(q.Name)
		if i == dDomain {
			return types.String(domain)
		}
		return types.String(sub)
	}
	return types.NewErr("no such field")
}

// splitDomain splits a name into its registrable domain (public suffix
// plus one label, "example.co.uk") and the labels left of it ("a.b").
// A name that is itself a public suffix has neither.
func splitDomain(name string) (domain, sub string) {
	name = strings.TrimSuffix(name, ".")
	domain, err := publicsuffix.EffectiveTLDPlusOne(name)
	if err != nil {
		return "", ""
	}
	return domain, strings.TrimSuffix(strings.TrimSuffix(name, domain), ".")
}

func (v *view) remoteField(i int) ref.Val {
	switch i {
	case rIP:
		if !v.addrOK {
			return types.String("")
		}
		return types.String(v.addr.Addr().String())
	case rPort:
		return types.Int(v.addr.Port())
	case rPublic:
		return types.Bool(v.addrOK && isPublic(v.addr.Addr()))
	}
	return types.NewErr("no such field")
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// isPublic reports whether an address is routed on the internet: not
// private, loopback, link-local, carrier-grade NAT or multicast.
func isPublic(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsGlobalUnicast() && !a.IsPrivate() && !cgnat.Contains(a)
}
