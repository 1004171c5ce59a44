package frontdoor

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
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
	// 5 s.
	AttemptTimeout time.Duration
	// EjectFor keeps an instance that failed a request out of rotation; <= 0 means
	// 1 s.
	EjectFor time.Duration
	// MaxBody is the largest request body buffered for a retry; bigger bodies get
	// one attempt. <= 0 means 1 MiB.
	MaxBody int64
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
	stats    struct{ requests, retries, failures, nobackend atomic.Int64 }
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
		Failures: f.stats.failures.Load(), NoBackend: f.stats.nobackend.Load()}
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
			n := f.counter(b.Addr).Load()
			if !found || n < bestN {
				best, bestN, found = b, n, true
			}
		}
	}
	return best, found
}

var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// ServeHTTP proxies r.
func (f *FrontDoor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.stats.requests.Add(1)
	attempts := 1
	var body []byte
	if heal.DefaultIdempotent(r) {
		attempts = f.cfg.Attempts
		if r.Body != nil && r.Body != http.NoBody {
			b, err := io.ReadAll(io.LimitReader(r.Body, f.cfg.MaxBody+1))
			if err != nil {
				http.Error(w, "frontdoor: reading the request body: "+err.Error(), http.StatusBadRequest)
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
		out := r.Clone(r.Context())
		out.RequestURI = ""
		out.URL.Scheme = "http"
		out.URL.Host = b.Addr
		out.Host = r.Host
		if body != nil {
			out.Body = io.NopCloser(bytes.NewReader(body))
			out.ContentLength = int64(len(body))
		}
		for _, h := range hopHeaders {
			out.Header.Del(h)
		}
		if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			out.Header.Add("X-Forwarded-For", ip)
		}
		c := f.counter(b.Addr)
		c.Add(1)
		resp, err := f.tr.RoundTrip(out)
		if err != nil {
			c.Add(-1)
			if r.Context().Err() != nil {
				return // the client went away
			}
			f.ejected.Store(b.Addr, time.Now().Add(f.cfg.EjectFor))
			f.log.Debug("attempt failed", "backend", b.ID, "err", err)
			lastErr = err
			continue
		}
		retryable := resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusServiceUnavailable ||
			resp.StatusCode == http.StatusGatewayTimeout
		if retryable && attempt+1 < attempts && len(bs) > len(tried) {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			c.Add(-1)
			f.log.Debug("attempt answered "+resp.Status, "backend", b.ID)
			lastErr = nil
			continue
		}
		f.copy(w, resp)
		resp.Body.Close()
		c.Add(-1)
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
	msg := "frontdoor: every attempt failed"
	if lastErr != nil {
		msg += ": " + lastErr.Error()
	}
	code := http.StatusBadGateway
	if errors.Is(lastErr, context.DeadlineExceeded) {
		code = http.StatusGatewayTimeout
	}
	http.Error(w, msg, code)
}

func (f *FrontDoor) copy(w http.ResponseWriter, resp *http.Response) {
	h := w.Header()
	for k, vs := range resp.Header {
		h[k] = append([]string(nil), vs...)
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}
