package nodedetect

import (
	"hash/maphash"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/rulestate"
	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
)

// Bounds of the download correlation.
const (
	// maxDownloadsPerContainer bounds the remembered output files of one
	// container; the oldest are forgotten first.
	maxDownloadsPerContainer = 16
	// maxSourceBytes bounds the remembered command line of a downloader.
	maxSourceBytes = 200
	// clockSkew is how much earlier than its download an exec may be
	// stamped and still count: events of different CPUs are not strictly
	// ordered.
	clockSkew = 2 * time.Second
)

// download is a file a downloader wrote. The path is kept as a keyed hash,
// so that hostile 4 KiB paths cost no more memory than short ones.
type download struct {
	path     uint64 // hash of the cleaned path
	relative bool
	at       time.Time
	source   string
}

// containerDownloads is what the engine remembers of the downloaders that
// ran in one container (or on one node's host).
type containerDownloads struct {
	files      []download // oldest first
	lastRun    time.Time  // of the latest downloader, with or without known output
	lastSource string
}

// downloads correlates downloaders with the programs executed after them.
type downloads struct {
	seed   maphash.Seed
	window time.Duration
	byCtr  *rulestate.LRU[*containerDownloads]
}

func newDownloads(max int, window time.Duration) *downloads {
	return &downloads{seed: maphash.MakeSeed(), window: window, byCtr: rulestate.NewLRU[*containerDownloads](max)}
}

// scopeKey is the container id, or the node for host processes.
func scopeKey(ev *wire.Event, node string) string {
	if ev.Container != nil {
		return "c/" + ev.Container.ID
	}
	return "h/" + node
}

func (d *downloads) hash(p string) uint64 { return maphash.String(d.seed, p) }

// observe judges an exec event: whether its program (or the script an
// interpreter runs) is a recent download in the same scope, or a drifted
// binary run soon after a downloader, and, if it is a downloader itself,
// remembers what it writes. It returns the verdict and the downloader's
// command line.
func (d *downloads) observe(ev *wire.Event, node string) (bool, string) {
	key := scopeKey(ev, node)
	t := ev.Time
	d.byCtr.Expire(key, func(c *containerDownloads) bool { return t.Sub(c.lastRun) > d.window })
	var hit bool
	var source string
	if e, ok := d.byCtr.Get(key); ok {
		hit, source = d.match(e.Val, &ev.Process, t)
	}
	outputs, isDownloader := downloadOutputs(ev.Process.Args, ev.Process.Exe)
	if isDownloader {
		d.record(key, outputs, t, clipSource(ev.Process.Args))
	}
	return hit, source
}

func (d *downloads) match(c *containerDownloads, p *wire.Process, t time.Time) (bool, string) {
	recent := func(at time.Time) bool { return t.Sub(at) <= d.window && at.Sub(t) <= clockSkew }
	candidates := []string{p.Exe}
	if s := scriptArg(p); s != "" {
		candidates = append(candidates, s)
	}
	for i := len(c.files) - 1; i >= 0; i-- {
		f := c.files[i]
		if !recent(f.at) {
			continue
		}
		for _, cand := range candidates {
			if d.sameFile(f, cand) {
				return true, f.source
			}
		}
	}
	if p.Drift && recent(c.lastRun) {
		return true, c.lastSource
	}
	return false, ""
}

// sameFile compares a download with an executed path. A relative output
// path (the downloader's working directory is unknown) matches any path
// ending in it.
func (d *downloads) sameFile(f download, p string) bool {
	if p == "" {
		return false
	}
	p = path.Clean(p)
	if !f.relative {
		return path.IsAbs(p) && d.hash(p) == f.path
	}
	if d.hash(strings.TrimPrefix(p, "./")) == f.path {
		return true
	}
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && d.hash(p[i+1:]) == f.path {
			return true
		}
	}
	return false
}

func (d *downloads) record(key string, outputs []string, t time.Time, source string) {
	e, ok := d.byCtr.Get(key)
	if !ok {
		e, _ = d.byCtr.Add(key, &containerDownloads{})
	}
	c := e.Val
	if t.After(c.lastRun) {
		c.lastRun, c.lastSource = t, source
	}
	for _, o := range outputs {
		o = path.Clean(o)
		if len(c.files) == maxDownloadsPerContainer {
			c.files = slices.Delete(c.files, 0, 1)
		}
		c.files = append(c.files, download{path: d.hash(strings.TrimPrefix(o, "./")), relative: !path.IsAbs(o), at: t, source: source})
	}
}

func clipSource(args []string) string {
	return clipString(strings.Join(args, " "), maxSourceBytes)
}

// interpreters run the script named by their first operand.
var interpreters = []string{"sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "python", "python2", "python3", "perl", "ruby", "php", "node", "lua"}

// scriptArg is the script an interpreter was asked to run ("sh /tmp/x"),
// or "" when it runs inline code (-c, -e) or reads stdin.
func scriptArg(p *wire.Process) string {
	name := baseName(p.Exe)
	if !slices.Contains(interpreters, strings.TrimRight(name, "0123456789.")) && !slices.Contains(interpreters, name) {
		return ""
	}
	for _, a := range p.Args[min(1, len(p.Args)):] {
		switch {
		case a == "-c" || a == "-e" || a == "-E" || a == "-r" || a == "-m" || a == "-" || a == "--":
			return ""
		case strings.HasPrefix(a, "-"):
			continue
		}
		return a
	}
	return ""
}

// downloadOutputs recognises a downloader by its program and arguments and
// returns the files it will write, when they can be told from the
// arguments. A downloader whose output cannot be told (a script one-liner,
// output to stdout) still counts, with no outputs.
func downloadOutputs(args []string, exe string) (outputs []string, ok bool) {
	tool := baseName(exe)
	if len(args) > 0 && (tool == "busybox" || tool == "" || baseName(args[0]) != tool && baseName(args[0]) == "wget") {
		// busybox applets run as "busybox wget …" or through an applet
		// link, where argv[0] names the applet.
		if t := baseName(args[0]); t != "busybox" {
			tool = t
		} else if len(args) > 1 {
			tool, args = args[1], args[1:]
		}
	}
	if len(args) > 0 {
		args = args[1:]
	}
	switch tool {
	case "curl":
		return curlOutputs(args), true
	case "wget":
		return wgetOutputs(args), true
	case "fetch":
		return fetchOutputs(args), true
	case "aria2c":
		return aria2Outputs(args), true
	case "tftp":
		return tftpOutputs(args), true
	case "scp":
		return scpOutputs(args), true
	}
	if isScriptDownloader(tool, args) {
		return nil, true
	}
	return nil, false
}

// options is how to walk one tool's command line: which short and long
// options take a value.
type options struct {
	shortValue string
	longValue  []string
}

// walk calls f for every option with its value, and for every operand with
// an empty name. Short options may be bundled ("-sSLo file").
func (o options) walk(args []string, f func(name, value string)) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := func() string {
			if i+1 < len(args) {
				i++
				return args[i]
			}
			return ""
		}
		switch {
		case a == "--":
			for _, rest := range args[i+1:] {
				f("", rest)
			}
			return
		case strings.HasPrefix(a, "--"):
			name, value, hasValue := strings.Cut(a[2:], "=")
			if !hasValue && slices.Contains(o.longValue, name) {
				value = next()
			}
			f("--"+name, value)
		case len(a) > 1 && a[0] == '-':
			for j := 1; j < len(a); j++ {
				c := a[j]
				if strings.IndexByte(o.shortValue, c) < 0 {
					f("-"+string(c), "")
					continue
				}
				value := a[j+1:]
				if value == "" {
					value = next()
				}
				f("-"+string(c), value)
				break
			}
		default:
			f("", a)
		}
	}
}

var curlOptions = options{
	shortValue: "oOdHAuXebcxmTFwKrCEyYzUDQtP",
	longValue: []string{
		"output", "data", "data-binary", "data-raw", "data-urlencode", "data-ascii", "json", "header", "user-agent",
		"user", "request", "referer", "cookie", "cookie-jar", "proxy", "max-time", "connect-timeout", "upload-file",
		"form", "form-string", "write-out", "config", "range", "continue-at", "retry", "retry-delay", "retry-max-time",
		"cert", "key", "cacert", "capath", "resolve", "connect-to", "output-dir", "limit-rate", "interface",
		"dns-servers", "proxy-user", "url", "dump-header", "stderr", "trace", "trace-ascii", "quote", "telnet-option",
		"max-filesize", "max-redirs", "ciphers", "pinnedpubkey", "noproxy", "oauth2-bearer", "aws-sigv4",
		"create-file-mode", "expect100-timeout", "keepalive-time", "local-port", "unix-socket",
		"abstract-unix-socket", "ftp-port", "mail-from", "mail-rcpt", "variable", "preproxy", "proxy-header",
		"time-cond", "speed-limit", "speed-time", "cert-type", "key-type", "pass", "engine", "tls-max",
	},
}

// curlOptions lists "O" as taking no value; see curlOutputs.
func curlOutputs(args []string) []string {
	opts := curlOptions
	opts.shortValue = strings.ReplaceAll(opts.shortValue, "O", "")
	var outs, urls []string
	var dir string
	remoteName := false
	opts.walk(args, func(name, value string) {
		switch name {
		case "-o", "--output":
			if value != "-" && value != "" {
				outs = append(outs, value)
			}
		case "-O", "--remote-name", "--remote-name-all":
			remoteName = true
		case "--output-dir":
			dir = value
		case "--url", "":
			urls = append(urls, value)
		}
	})
	if remoteName {
		for _, u := range urls {
			if n := urlBase(u, ""); n != "" {
				outs = append(outs, n)
			}
		}
	}
	return inDir(dir, outs)
}

var wgetOptions = options{
	shortValue: "OoaiPUetTwQBlARDXIY",
	longValue: []string{
		"output-document", "output-file", "append-output", "input-file", "directory-prefix", "user-agent",
		"execute", "tries", "timeout", "wait", "quota", "base", "level", "accept", "reject", "domains",
		"exclude-directories", "include-directories", "header", "user", "password", "http-user",
		"http-password", "post-data", "post-file", "body-data", "body-file", "method", "referer",
		"load-cookies", "save-cookies", "ca-certificate", "certificate", "private-key", "bind-address",
		"proxy-user", "proxy-password", "limit-rate", "dns-timeout", "connect-timeout", "read-timeout",
		"waitretry", "restrict-file-names", "default-page", "proxy",
	},
}

func wgetOutputs(args []string) []string {
	var outs, urls []string
	var dir string
	explicit := false
	wgetOptions.walk(args, func(name, value string) {
		switch name {
		case "-O", "--output-document":
			explicit = true
			if value != "-" && value != "" {
				outs = append(outs, value)
			}
		case "-P", "--directory-prefix":
			dir = value
		case "":
			urls = append(urls, value)
		}
	})
	if explicit {
		return outs
	}
	for _, u := range urls {
		outs = append(outs, urlBase(u, "index.html"))
	}
	return inDir(dir, outs)
}

func fetchOutputs(args []string) []string {
	var outs, urls []string
	options{shortValue: "oBNST"}.walk(args, func(name, value string) {
		switch name {
		case "-o", "--output":
			if value != "-" && value != "" {
				outs = append(outs, value)
			}
		case "":
			urls = append(urls, value)
		}
	})
	if len(outs) > 0 {
		return outs
	}
	for _, u := range urls {
		if n := urlBase(u, ""); n != "" {
			outs = append(outs, n)
		}
	}
	return outs
}

func aria2Outputs(args []string) []string {
	var out, dir string
	var urls []string
	options{shortValue: "odsxkjUiT", longValue: []string{"out", "dir", "split", "max-connection-per-server", "input-file", "user-agent"}}.walk(args, func(name, value string) {
		switch name {
		case "-o", "--out":
			out = value
		case "-d", "--dir":
			dir = value
		case "":
			urls = append(urls, value)
		}
	})
	if out != "" {
		return inDir(dir, []string{out})
	}
	var outs []string
	for _, u := range urls {
		if n := urlBase(u, ""); n != "" {
			outs = append(outs, n)
		}
	}
	return inDir(dir, outs)
}

// tftpOutputs handles busybox and tftp-hpa style "tftp -g -r remote -l
// local host".
func tftpOutputs(args []string) []string {
	var remote, local string
	get := false
	options{shortValue: "rlbm"}.walk(args, func(name, value string) {
		switch name {
		case "-g":
			get = true
		case "-r":
			remote = value
		case "-l":
			local = value
		}
	})
	if !get {
		return nil
	}
	if local != "" {
		return []string{local}
	}
	if remote != "" {
		return []string{baseName(remote)}
	}
	return nil
}

// scpOutputs returns the destination of a copy from a remote host: the
// file itself, or the copied file's name in it when it is a directory.
func scpOutputs(args []string) []string {
	var operands []string
	options{shortValue: "cFiJlPoSD"}.walk(args, func(name, value string) {
		if name == "" {
			operands = append(operands, value)
		}
	})
	if len(operands) < 2 {
		return nil
	}
	dst := operands[len(operands)-1]
	if isRemote(dst) {
		return nil
	}
	outs := []string{dst}
	for _, src := range operands[:len(operands)-1] {
		if isRemote(src) {
			_, p, _ := strings.Cut(strings.TrimPrefix(src, "scp://"), ":")
			if b := baseName(p); b != "" {
				outs = append(outs, path.Join(dst, b))
			}
		}
	}
	return outs
}

// isRemote tells "host:path" and "scp://host/path" from a local path
// (which may contain a colon after a slash).
func isRemote(s string) bool {
	if strings.HasPrefix(s, "scp://") {
		return true
	}
	i := strings.IndexByte(s, ':')
	return i > 0 && !strings.Contains(s[:i], "/")
}

// scriptDownloadMarkers are what one-liners that fetch a URL contain.
var scriptDownloadMarkers = []string{
	"urllib", "urlopen", "requests.get", "http.client", "LWP::", "HTTP::Tiny", "Net::HTTP", "open-uri",
	"file_get_contents(\"http", "file_get_contents('http", "https.get(", "http.get(", "fetch(\"http", "fetch('http",
}

// isScriptDownloader recognises "python -c '…urlopen…'" and the like.
func isScriptDownloader(tool string, args []string) bool {
	base := strings.TrimRight(tool, "0123456789.")
	if !slices.Contains([]string{"python", "perl", "ruby", "php", "node"}, base) {
		return false
	}
	for i, a := range args {
		if (a == "-c" || a == "-e" || a == "-r") && i+1 < len(args) {
			code := args[i+1]
			for _, m := range scriptDownloadMarkers {
				if strings.Contains(code, m) {
					return true
				}
			}
		}
	}
	return false
}

// urlBase is the file name a URL's path ends in, without query or
// fragment, or def when it ends in a slash or has no path.
func urlBase(u, def string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	if _, rest, ok := strings.Cut(u, "://"); ok {
		u = rest
	}
	_, p, ok := strings.Cut(u, "/")
	if !ok || p == "" || strings.HasSuffix(p, "/") {
		return def
	}
	return baseName(p)
}

func inDir(dir string, files []string) []string {
	if dir == "" {
		return files
	}
	for i, f := range files {
		if !path.IsAbs(f) {
			files[i] = path.Join(dir, f)
		}
	}
	return files
}
