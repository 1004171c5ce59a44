package health

import (
	"crypto/subtle"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// HandlerConfig configures the HTTP handlers. The zero value serves every caller the
// status alone.
type HandlerConfig struct {
	// Authorize decides whether a request may see details: ?verbose listings, the
	// outputs of failing checks, observed values and the service metadata of the
	// document. Nil means nobody: anonymous callers get the status alone, never a
	// dependency's error text. [BearerToken] and [LoopbackOnly] are ready-made.
	// It may be called concurrently.
	Authorize func(*http.Request) bool
}

func (c HandlerConfig) authorized(req *http.Request) bool {
	return c.Authorize != nil && c.Authorize(req)
}

// BearerToken returns an authorizer that accepts requests carrying the header
// "Authorization: Bearer <token>", comparing in constant time. An empty token
// accepts nobody.
func BearerToken(token string) func(*http.Request) bool {
	want := []byte(token)
	return func(req *http.Request) bool {
		if len(want) == 0 {
			return false
		}
		h := req.Header.Get("Authorization")
		const prefix = "Bearer "
		if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
			return false
		}
		return subtle.ConstantTimeCompare([]byte(h[len(prefix):]), want) == 1
	}
}

// LoopbackOnly is an authorizer that accepts requests from a loopback address
// (127.0.0.0/8, ::1), judged by the connection's remote address. Behind a reverse
// proxy on the same machine every connection is local, so LoopbackOnly refuses
// requests that carry a Forwarded, X-Forwarded-For or X-Real-Ip header (proxies add
// them; a caller can only lose access by adding one). Proxies that add none make
// every caller look local: use [BearerToken] there.
func LoopbackOnly(req *http.Request) bool {
	for _, h := range []string{"Forwarded", "X-Forwarded-For", "X-Real-Ip"} {
		if _, ok := req.Header[h]; ok {
			return false
		}
	}
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		host = req.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	return err == nil && addr.Unmap().IsLoopback()
}

// AnyOf returns an authorizer that accepts a request when one of authorizers does,
// asking them in order: for example AnyOf(LoopbackOnly, BearerToken(token)).
func AnyOf(authorizers ...func(*http.Request) bool) func(*http.Request) bool {
	authorizers = append([]func(*http.Request) bool(nil), authorizers...)
	return func(req *http.Request) bool {
		for _, a := range authorizers {
			if a != nil && a(req) {
				return true
			}
		}
		return false
	}
}

// Handler returns one handler for every endpoint, at these paths ([Registry.Mount]
// registers it under each of them; or strip a prefix with [http.StripPrefix]):
//
//	/livez, /readyz, /startupz           probes: 200 "ok" or 503; ?verbose, ?exclude=name
//	/livez/<name>, /readyz/<name>, ...   one check of that probe: 200, 503 or 404
//	/health                              the health document (application/health+json)
//
// Other paths get 404; methods other than GET and HEAD get 405.
func (r *Registry) Handler(cfg HandlerConfig) http.Handler {
	return &muxHandler{
		live:  r.ProbeHandler(Liveness, cfg).(*probeHandler),
		ready: r.ProbeHandler(Readiness, cfg).(*probeHandler),
		start: r.ProbeHandler(Startup, cfg).(*probeHandler),
		doc:   r.DocumentHandler(cfg).(*documentHandler),
	}
}

// paths are the patterns [Registry.Mount] registers: every path [Registry.Handler]
// serves.
var paths = [...]string{"/livez", "/livez/", "/readyz", "/readyz/", "/startupz", "/startupz/", "/health"}

// Mount registers [Registry.Handler](cfg) on mux under every path it serves: the
// probes /livez, /readyz and /startupz, one check of each (/readyz/<name>, ...),
// and the health document /health. It is the one call a service needs:
//
//	mux := http.NewServeMux()
//	reg.Mount(mux, health.HandlerConfig{Authorize: health.LoopbackOnly})
//
// Like [http.ServeMux.Handle], it panics when mux already has a handler for one of
// those patterns. To serve under a prefix, mount on a mux of its own and hand that
// to [http.StripPrefix].
func (r *Registry) Mount(mux *http.ServeMux, cfg HandlerConfig) {
	h := r.Handler(cfg)
	for _, p := range paths {
		mux.Handle(p, h)
	}
}

type muxHandler struct {
	live, ready, start *probeHandler
	doc                *documentHandler
}

func (m *muxHandler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	p := req.URL.Path
	if p == "/health" {
		m.doc.ServeHTTP(w, req)
		return
	}
	var h *probeHandler
	switch {
	case strings.HasPrefix(p, "/livez"):
		h, p = m.live, p[len("/livez"):]
	case strings.HasPrefix(p, "/readyz"):
		h, p = m.ready, p[len("/readyz"):]
	case strings.HasPrefix(p, "/startupz"):
		h, p = m.start, p[len("/startupz"):]
	default:
		http.NotFound(w, req)
		return
	}
	switch {
	case p == "":
		h.serve(w, req, "")
	case len(p) > 1 && p[0] == '/' && !strings.Contains(p[1:], "/"):
		h.serve(w, req, p[1:])
	default:
		http.NotFound(w, req)
	}
}

// ProbeHandler returns the handler of one probe (kind is one of [Liveness],
// [Readiness] and [Startup]; any other value means Readiness): 200 "ok" when all its
// checks pass or warn, 503 otherwise. Query parameters: ?verbose lists every check as
// "[+]name ok" or "[-]name failed" (to authorized callers; others get the short
// answer); ?exclude=name leaves a check out ("[+]name excluded: ok") and may repeat,
// and names that match no check of the probe get the line
// `warn: some health checks cannot be excluded: no matches for "x"`. A query longer
// than 16 KiB, with more than 64 exclude parameters, or that does not parse gets 400
// with a text/plain reason. When the request has a path value "name" (a
// [http.ServeMux] pattern such as "GET /readyz/{name}"), it answers for that one
// check, 404 when the probe has no such check.
func (r *Registry) ProbeHandler(kind Kind, cfg HandlerConfig) http.Handler {
	switch kind {
	case Liveness, Readiness, Startup:
	default:
		kind = Readiness
	}
	name := kind.probeName()
	return &probeHandler{
		reg:    r,
		kind:   kind,
		cfg:    cfg,
		failed: []byte(name + " check failed"),
		passed: []byte(name + " check passed"),
	}
}

type probeHandler struct {
	reg    *Registry
	kind   Kind
	cfg    HandlerConfig
	failed []byte
	passed []byte
}

var (
	okBody       = []byte("ok")
	textPlain    = []string{"text/plain; charset=utf-8"}
	healthJSON   = []string{ContentType}
	noStore      = []string{"no-store"}
	nosniff      = []string{"nosniff"}
	allowGetHead = []string{"GET, HEAD"}
)

func (h *probeHandler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	h.serve(w, req, req.PathValue("name"))
}

// Limits on the query of a probe request. A longer query, or more exclude
// parameters, is answered 400 Bad Request, saying which limit it passed: no check
// name is longer than 200 bytes, so neither limit stands in the way of a real
// request.
const (
	maxQueryBytes = 16 << 10
	maxExcludes   = 64
)

// badRequest answers 400 with a text/plain reason.
func badRequest(w http.ResponseWriter, reason string) {
	hdr := w.Header()
	hdr["Content-Type"] = textPlain
	hdr["Cache-Control"] = noStore
	hdr["X-Content-Type-Options"] = nosniff
	w.WriteHeader(http.StatusBadRequest)
	w.Write([]byte("health: bad request: " + reason + "\n"))
}

func (h *probeHandler) serve(w http.ResponseWriter, req *http.Request, only string) {
	if !allowMethod(w, req) {
		return
	}
	var verbose bool
	var exclude map[string]bool // name -> matched a check of this probe
	if raw := req.URL.RawQuery; raw != "" {
		if len(raw) > maxQueryBytes {
			badRequest(w, "query longer than "+strconv.Itoa(maxQueryBytes)+" bytes")
			return
		}
		q, err := url.ParseQuery(raw)
		if err != nil {
			badRequest(w, "malformed query: "+err.Error())
			return
		}
		_, verbose = q["verbose"]
		if xs := q["exclude"]; len(xs) > 0 && only == "" {
			if len(xs) > maxExcludes {
				badRequest(w, "more than "+strconv.Itoa(maxExcludes)+" exclude parameters")
				return
			}
			exclude = make(map[string]bool, len(xs))
			for _, x := range xs {
				exclude[x] = false
			}
		}
	}
	r := h.reg
	set := r.set.Load()
	var skip func(string) bool
	switch {
	case only != "":
		e := set.byName[only]
		if e == nil || e.c.Kinds&h.kind == 0 {
			http.NotFound(w, req)
			return
		}
		skip = func(name string) bool { return name != only }
	case exclude != nil:
		for x := range exclude {
			if e := set.byName[x]; e != nil && e.c.Kinds&h.kind != 0 {
				exclude[x] = true
			}
		}
		skip = func(name string) bool { return exclude[name] }
	}
	var buf [32]*result
	es, rs := r.collect(req.Context(), set, h.kind, skip, buf[:0])
	st := StatusPass
	for _, res := range rs {
		st = worse(st, res.statusFor(h.kind))
	}
	draining := h.kind == Readiness && only == "" && r.draining.Load()
	code := http.StatusOK
	if st == StatusFail || draining {
		code = http.StatusServiceUnavailable
	}

	hdr := w.Header()
	hdr["Content-Type"] = textPlain
	hdr["Cache-Control"] = noStore
	hdr["X-Content-Type-Options"] = nosniff
	if !verbose && code == http.StatusOK {
		w.WriteHeader(code)
		w.Write(okBody)
		return
	}
	if !h.cfg.authorized(req) {
		w.WriteHeader(code)
		if code == http.StatusOK {
			w.Write(okBody)
		} else {
			w.Write(h.failed)
		}
		return
	}
	// Authorized: the Kubernetes-style listing, also for a failure without ?verbose.
	// Excluded checks keep their place ("[+]name excluded: ok"); exclude names that
	// match no check of this probe get one warning line, as kube-apiserver prints it.
	var b []byte
	j := 0
	for _, e := range set.list {
		if j < len(es) && es[j] == e {
			b = appendCheckLine(b, e.c.Name, rs[j], h.kind)
			j++
		} else if exclude[e.c.Name] && e.c.Kinds&h.kind != 0 {
			b = append(b, "[+]"...)
			b = append(b, e.c.Name...)
			b = append(b, " excluded: ok\n"...)
		}
	}
	var unmatched []string
	for x, matched := range exclude {
		if !matched {
			unmatched = append(unmatched, x)
		}
	}
	if len(unmatched) > 0 {
		slices.Sort(unmatched)
		b = append(b, "warn: some health checks cannot be excluded: no matches for "...)
		for i, x := range unmatched {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendQuote(b, x)
		}
		b = append(b, '\n')
	}
	if draining {
		b = append(b, "[-]"+DrainingName+" failed: shutting down\n"...)
	}
	if code == http.StatusOK {
		b = append(b, h.passed...)
	} else {
		b = append(b, h.failed...)
	}
	w.WriteHeader(code)
	w.Write(b)
}

// appendCheckLine appends the verbose line of one check: "[+]name ok" or
// "[-]name failed: output".
func appendCheckLine(b []byte, name string, res *result, kind Kind) []byte {
	if res.statusFor(kind) != StatusFail {
		b = append(b, "[+]"...)
		b = append(b, name...)
		return append(b, " ok\n"...)
	}
	b = append(b, "[-]"...)
	b = append(b, name...)
	b = append(b, " failed"...)
	out := res.output
	if out == "" {
		out = firstOutput(res)
	}
	if out != "" {
		b = append(b, ": "...)
		b = appendOneLine(b, out)
	}
	return append(b, '\n')
}

func firstOutput(res *result) string {
	for _, c := range res.entries {
		if c.Output != "" && c.Status == StatusFail {
			return c.Output
		}
	}
	return ""
}

// appendOneLine appends s with line breaks turned into spaces.
func appendOneLine(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\n' || c == '\r' {
			c = ' '
		}
		b = append(b, c)
	}
	return b
}

func allowMethod(w http.ResponseWriter, req *http.Request) bool {
	if req.Method == http.MethodGet || req.Method == http.MethodHead {
		return true
	}
	w.Header()["Allow"] = allowGetHead
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

// DocumentHandler returns the handler of the health document: 200 for pass and warn,
// 503 for fail, Content-Type application/health+json. Authorized callers get the
// whole document; others get {"status":"..."} alone. The document is encoded once
// per change of the results, not per request.
func (r *Registry) DocumentHandler(cfg HandlerConfig) http.Handler {
	return &documentHandler{reg: r, cfg: cfg}
}

type documentHandler struct {
	reg *Registry
	cfg HandlerConfig
}

func (h *documentHandler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if !allowMethod(w, req) {
		return
	}
	var buf [32]*result
	es, rs := h.reg.collect(req.Context(), h.reg.set.Load(), AllKinds, nil, buf[:0])
	// What /livez and /readyz answer from the same results (see ProbesHeader).
	live, ready := StatusPass, StatusPass
	for i, e := range es {
		if e.c.Kinds&Liveness != 0 {
			live = worse(live, rs[i].statusFor(Liveness))
		}
		if e.c.Kinds&Readiness != 0 {
			ready = worse(ready, rs[i].statusFor(Readiness))
		}
	}
	if h.reg.draining.Load() {
		ready = StatusFail
	}
	d := h.reg.encoded()
	body := d.anon
	if h.cfg.authorized(req) {
		body = d.full
	}
	hdr := w.Header()
	hdr[ProbesHeader] = probesValues[[2]Status{live, ready}]
	hdr["Content-Type"] = healthJSON
	hdr["Cache-Control"] = noStore
	hdr["X-Content-Type-Options"] = nosniff
	if d.status == StatusFail {
		w.WriteHeader(http.StatusServiceUnavailable)
	} else {
		w.WriteHeader(http.StatusOK)
	}
	w.Write(body)
}
