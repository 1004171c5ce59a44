package frontdoor

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/selfheal-go/selfheal/heal"
)

// Backend is one instance the front door may send a request to.
type Backend struct {
	ID   string
	Addr string // host:port
}

// Config configures a FrontDoor. Backends is required; every other zero field means
// the documented default.
type Config struct {
	// Backends returns the ready instances; it is called for every request and may
	// be called concurrently.
	Backends func() []Backend
	// Attempts is the number of instances an idempotent request may try; <= 0
	// means 3. Other requests get one attempt.
	Attempts int
	// AttemptTimeout bounds the wait for an instance's response headers; <= 0 means
	// 5 s. An attempt that times out counts as failed (retried when the request is
	// idempotent, else answered 504).
	AttemptTimeout time.Duration
	// ResponseTimeout bounds a whole request: every attempt and the copy of the
	// response body; <= 0 means 30 s. A request that runs out of it before the
	// response started is answered 504; one whose body is cut short is aborted (the
	// client sees a broken connection, not a short body that looks complete).
	ResponseTimeout time.Duration
	// EjectFor keeps an instance that failed a request out of rotation; <= 0 means
	// 1 s.
	EjectFor time.Duration
	// MaxBody is the largest request body buffered for a retry; bigger bodies get
	// one attempt. <= 0 means 1 MiB.
	MaxBody int64
	// MaxRequestBody is the largest request body forwarded at all; a bigger one is
	// answered 413. <= 0 means 10 MiB.
	MaxRequestBody int64
	// Transport sends the requests; nil means a transport of the front door's own.
	Transport http.RoundTripper
	// Logger receives retries and failures; nil means no logging.
	Logger *slog.Logger
}

// Stats counts what a FrontDoor did.
type Stats struct {
	Requests  int64 // requests received
	Retries   int64 // attempts beyond the first
	Failures  int64 // requests answered 502 or 503 by the front door itself
	NoBackend int64 // requests that found no ready instance
	Ejections int64 // times an instance was taken out of rotation after a failed attempt
}

// BackendStats counts what the front door saw of one backend since it first sent
// it a request (or since it was last forgotten, see [FrontDoor.Forget]):
// attempts, the attempts that failed (no response in time, or a 5xx), and the
// total time to their response headers.
type BackendStats struct {
	Requests, Errors int64
	Latency          time.Duration
}

type backendCounters struct {
	addr                    string // the backend's address, to forget its state by address too
	requests, errors, nanos atomic.Int64
}

// FrontDoor is an http.Handler. It is safe for concurrent use; create it with New.
type FrontDoor struct {
	cfg      Config
	tr       http.RoundTripper
	own      *http.Transport
	log      *slog.Logger
	rr       atomic.Uint64
	inflight sync.Map // addr -> *atomic.Int64
	ejected  sync.Map // addr -> time.Time (until)
	backends sync.Map // Backend.ID -> *backendCounters
	stats    struct{ requests, retries, failures, nobackend, ejections atomic.Int64 }
}

// New returns a FrontDoor.
func New(cfg Config) (*FrontDoor, error) {
	if cfg.Backends == nil {
		return nil, errors.New("frontdoor: Config.Backends is required")
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 3
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = 5 * time.Second
	}
	if cfg.EjectFor <= 0 {
		cfg.EjectFor = time.Second
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 1 << 20
	}
	if cfg.MaxRequestBody <= 0 {
		cfg.MaxRequestBody = 10 << 20
	}
	cfg.MaxBody = min(cfg.MaxBody, cfg.MaxRequestBody)
	if cfg.ResponseTimeout <= 0 {
		cfg.ResponseTimeout = 30 * time.Second
	}
	f := &FrontDoor{cfg: cfg, tr: cfg.Transport, log: cfg.Logger}
	if f.tr == nil {
		f.own = &http.Transport{
			DialContext:           (&net.Dialer{Timeout: time.Second}).DialContext,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       30 * time.Second,
			ResponseHeaderTimeout: cfg.AttemptTimeout,
		}
		f.tr = f.own
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	return f, nil
}

// CloseIdleConnections closes the idle connections of the front door's own
// transport.
func (f *FrontDoor) CloseIdleConnections() {
	if f.own != nil {
		f.own.CloseIdleConnections()
	}
}

// Stats returns the counters.
func (f *FrontDoor) Stats() Stats {
	return Stats{Requests: f.stats.requests.Load(), Retries: f.stats.retries.Load(),
		Failures: f.stats.failures.Load(), NoBackend: f.stats.nobackend.Load(), Ejections: f.stats.ejections.Load()}
}

// BackendStats returns the counters of every backend the front door sent a
// request to and did not forget since, by Backend.ID. The counters only grow
// until then: a caller that wants a rate takes the difference of two calls.
func (f *FrontDoor) BackendStats() map[string]BackendStats {
	out := map[string]BackendStats{}
	f.backends.Range(func(k, v any) bool {
		c := v.(*backendCounters)
		out[k.(string)] = BackendStats{Requests: c.requests.Load(), Errors: c.errors.Load(), Latency: time.Duration(c.nanos.Load())}
		return true
	})
	return out
}

// Forget drops what the front door keeps of the backends ids (their counters, and
// the in-flight count and ejection of their addresses): a caller whose backends
// come and go calls it for those that went, so that the front door's memory is
// bounded by the backends that are, not by every one there ever was. A request
// still in flight to a forgotten backend counts it again when it ends; forget it
// again then. Unknown ids are ignored.
func (f *FrontDoor) Forget(ids ...string) {
	for _, id := range ids {
		v, ok := f.backends.LoadAndDelete(id)
		if !ok {
			continue
		}
		addr := v.(*backendCounters).addr
		// An address another backend uses now (a port reused) keeps its state.
		shared := false
		f.backends.Range(func(_, o any) bool {
			shared = o.(*backendCounters).addr == addr
			return !shared
		})
		if !shared {
			f.inflight.Delete(addr)
			f.ejected.Delete(addr)
		}
	}
}

// track makes sure b has counters (before its address gets any other state).
func (f *FrontDoor) track(b Backend) *backendCounters {
	v, ok := f.backends.Load(b.ID)
	if !ok {
		v, _ = f.backends.LoadOrStore(b.ID, &backendCounters{addr: b.Addr})
	}
	return v.(*backendCounters)
}

func (f *FrontDoor) observe(b Backend, failed bool, d time.Duration) {
	c := f.track(b)
	c.requests.Add(1)
	if failed {
		c.errors.Add(1)
	}
	c.nanos.Add(int64(d))
}

func (f *FrontDoor) counter(addr string) *atomic.Int64 {
	if c, ok := f.inflight.Load(addr); ok {
		return c.(*atomic.Int64)
	}
	c, _ := f.inflight.LoadOrStore(addr, new(atomic.Int64))
	return c.(*atomic.Int64)
}

// pick returns the backend with the fewest requests in flight among those not
// tried yet and not ejected (ejected ones only when nothing else is left).
func (f *FrontDoor) pick(bs []Backend, tried map[string]bool) (Backend, bool) {
	now := time.Now()
	start := int(f.rr.Add(1))
	best, bestN, found := Backend{}, int64(0), false
	for pass := 0; pass < 2 && !found; pass++ {
		for i := range bs {
			b := bs[(start+i)%len(bs)]
			if tried[b.Addr] {
				continue
			}
			if pass == 0 {
				if until, ok := f.ejected.Load(b.Addr); ok && now.Before(until.(time.Time)) {
					continue
				}
			}
			var n int64
			if c, ok := f.inflight.Load(b.Addr); ok {
				n = c.(*atomic.Int64).Load()
			}
			if !found || n < bestN {
				best, bestN, found = b, n, true
			}
		}
	}
	return best, found
}

// hopHeaders are the hop-by-hop headers of RFC 9110 section 7.6.1 and their
// older kin: they describe one connection, and a proxy drops them.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// removeHopHeaders deletes from h the headers that Connection names (RFC 9110
// section 7.6.1: "a proxy ... MUST remove any header fields listed in the
// Connection header field") and the hop-by-hop headers.
func removeHopHeaders(h http.Header) {
	for _, v := range h.Values("Connection") {
		for name := range strings.SplitSeq(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
}

// errAttemptTimeout is the cause of an attempt's context when AttemptTimeout ran
// out before the response headers came.
var errAttemptTimeout = errors.New("frontdoor: attempt timed out")

// ServeHTTP proxies r. It refuses CONNECT (405): the front door forwards requests
// to a service, it opens no tunnels.
func (f *FrontDoor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.stats.requests.Add(1)
	if r.Method == http.MethodConnect {
		w.Header().Set("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
		http.Error(w, "frontdoor: CONNECT is not forwarded", http.StatusMethodNotAllowed)
		return
	}
	if r.ContentLength > f.cfg.MaxRequestBody {
		http.Error(w, "frontdoor: request body too large", http.StatusRequestEntityTooLarge)
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, f.cfg.MaxRequestBody)
	}
	ctx, cancel := context.WithTimeout(r.Context(), f.cfg.ResponseTimeout)
	defer cancel()
	attempts := 1
	var body []byte
	if heal.DefaultIdempotent(r) {
		attempts = f.cfg.Attempts
		if r.Body != nil && r.Body != http.NoBody {
			b, err := io.ReadAll(io.LimitReader(r.Body, f.cfg.MaxBody+1))
			if err != nil {
				f.bodyError(w, err)
				return
			}
			if int64(len(b)) > f.cfg.MaxBody {
				// Too big to replay: one attempt with what was read plus the rest.
				attempts = 1
				r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b), r.Body))
			} else {
				body = b
			}
		}
	}
	tried := map[string]bool{}
	var lastErr error
	for attempt := 0; attempt < attempts; attempt++ {
		bs := f.cfg.Backends()
		b, ok := f.pick(bs, tried)
		if !ok {
			break
		}
		tried[b.Addr] = true
		if attempt > 0 {
			f.stats.retries.Add(1)
		}
		actx, acancel := context.WithCancelCause(ctx)
		timer := time.AfterFunc(f.cfg.AttemptTimeout, func() { acancel(errAttemptTimeout) })
		out := r.Clone(actx)
		out.RequestURI = ""
		out.URL.Scheme = "http"
		out.URL.Host = b.Addr
		out.Host = r.Host
		if body != nil {
			out.Body = io.NopCloser(bytes.NewReader(body))
			out.ContentLength = int64(len(body))
		}
		removeHopHeaders(out.Header)
		if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			// Append to what the client sent, in one field: the last address is
			// the one the front door saw, the ones before it are the client's claim.
			if prior := out.Header.Values("X-Forwarded-For"); len(prior) > 0 {
				ip = strings.Join(prior, ", ") + ", " + ip
			}
			out.Header.Set("X-Forwarded-For", ip)
		}
		f.track(b)
		c := f.counter(b.Addr)
		c.Add(1)
		sent := time.Now()
		resp, err := f.tr.RoundTrip(out)
		if !timer.Stop() && err == nil {
			// The attempt timed out as the headers came: its body is cut off.
			resp.Body.Close()
			err = errAttemptTimeout
		}
		if r.Context().Err() == nil {
			f.observe(b, err != nil || resp.StatusCode >= 500, time.Since(sent))
		}
		if err != nil {
			c.Add(-1)
			if context.Cause(actx) == errAttemptTimeout {
				err = errAttemptTimeout
			}
			acancel(nil)
			if r.Context().Err() != nil {
				return // the client went away
			}
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				f.bodyError(w, err)
				return
			}
			f.ejected.Store(b.Addr, time.Now().Add(f.cfg.EjectFor))
			f.stats.ejections.Add(1)
			f.log.Debug("attempt failed", "backend", b.ID, "addr", b.Addr, "err", err)
			lastErr = err
			if ctx.Err() != nil {
				break // ResponseTimeout: no time for another attempt
			}
			continue
		}
		retryable := resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusServiceUnavailable ||
			resp.StatusCode == http.StatusGatewayTimeout
		if retryable && attempt+1 < attempts && len(bs) > len(tried) {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			c.Add(-1)
			acancel(nil)
			f.log.Debug("attempt answered "+resp.Status, "backend", b.ID)
			lastErr = nil
			continue
		}
		err = f.copy(w, resp)
		resp.Body.Close()
		c.Add(-1)
		acancel(nil)
		if err != nil && r.Context().Err() == nil {
			f.log.Debug("response body cut short", "backend", b.ID, "addr", b.Addr, "err", err)
			if r.Context().Value(http.ServerContextKey) != nil {
				panic(http.ErrAbortHandler) // the client must not take a short body for a whole one
			}
		}
		return
	}
	if len(tried) == 0 {
		f.stats.nobackend.Add(1)
		f.stats.failures.Add(1)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "frontdoor: no ready instance", http.StatusServiceUnavailable)
		return
	}
	f.stats.failures.Add(1)
	// The body names no instance: addresses and errors are for the log, not for
	// clients.
	f.log.Warn("every attempt failed", "attempts", len(tried), "err", lastErr)
	if errors.Is(lastErr, errAttemptTimeout) || errors.Is(lastErr, context.DeadlineExceeded) {
		http.Error(w, "frontdoor: no instance answered in time", http.StatusGatewayTimeout)
		return
	}
	http.Error(w, "frontdoor: no instance could answer", http.StatusBadGateway)
}

// bodyError answers a request whose body could not be read: 413 when it is
// larger than MaxRequestBody, else 400.
func (f *FrontDoor) bodyError(w http.ResponseWriter, err error) {
	f.stats.failures.Add(1)
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		http.Error(w, "frontdoor: request body too large", http.StatusRequestEntityTooLarge)
		return
	}
	http.Error(w, "frontdoor: reading the request body failed", http.StatusBadRequest)
}

// copy writes resp to w, without hop-by-hop headers, and returns the error that
// cut the body short, if any.
func (f *FrontDoor) copy(w http.ResponseWriter, resp *http.Response) error {
	h := w.Header()
	for k, vs := range resp.Header {
		h[k] = append([]string(nil), vs...)
	}
	removeHopHeaders(h)
	w.WriteHeader(resp.StatusCode)
	_, err := io.Copy(w, resp.Body)
	return err
}
