package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// Keys of the runtime checks in the health document.
const (
	KeyGoroutines = "runtime:goroutines"
	KeyHeap       = "runtime:heap"
)

// HTTPConfig configures [HTTPGet]. URL is required; every other field's zero value
// means its documented default.
type HTTPConfig struct {
	// URL to GET. Required.
	URL string
	// Client sends the request. Nil (the default) means a client that does not
	// follow redirects (a redirect to a login page is not health).
	Client *http.Client
	// MinStatus and MaxStatus bound the accepted status codes, inclusive. Zero means
	// 200 (MinStatus) and 299 (MaxStatus). Other values must be HTTP status codes
	// (100 to 599), with MinStatus <= MaxStatus.
	MinStatus, MaxStatus int
	// Header is added to the request. Nil (the default): none.
	Header http.Header
}

var noRedirectClient = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// HTTPGet returns a check that GETs cfg.URL and passes when the status code is in
// [MinStatus, MaxStatus]. The body is discarded (at most 64 KiB of it is read so the
// connection can be reused).
//
// Errors: a *[ConfigError] (matching [ErrInvalidConfig]) when URL is empty or does
// not parse, a status bound is not an HTTP status code, or the status range is empty.
func HTTPGet(cfg HTTPConfig) (CheckFunc, error) {
	if cfg.URL == "" {
		return nil, &ConfigError{Field: "HTTPConfig.URL", Reason: "must not be empty"}
	}
	if _, err := http.NewRequest(http.MethodGet, cfg.URL, nil); err != nil {
		return nil, &ConfigError{Field: "HTTPConfig.URL", Reason: err.Error()}
	}
	if cfg.MinStatus != 0 && (cfg.MinStatus < 100 || cfg.MinStatus > 599) {
		return nil, &ConfigError{Field: "HTTPConfig.MinStatus", Reason: fmt.Sprintf("%d is not an HTTP status code (100-599)", cfg.MinStatus)}
	}
	if cfg.MaxStatus != 0 && (cfg.MaxStatus < 100 || cfg.MaxStatus > 599) {
		return nil, &ConfigError{Field: "HTTPConfig.MaxStatus", Reason: fmt.Sprintf("%d is not an HTTP status code (100-599)", cfg.MaxStatus)}
	}
	if cfg.MinStatus == 0 {
		cfg.MinStatus = 200
	}
	if cfg.MaxStatus == 0 {
		cfg.MaxStatus = 299
	}
	if cfg.MinStatus > cfg.MaxStatus {
		return nil, &ConfigError{Field: "HTTPConfig.MaxStatus", Reason: fmt.Sprintf("%d is below MinStatus %d", cfg.MaxStatus, cfg.MinStatus)}
	}
	client := cfg.Client
	if client == nil {
		client = noRedirectClient
	}
	header := cfg.Header.Clone()
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.URL, nil)
		if err != nil {
			return err
		}
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode < cfg.MinStatus || resp.StatusCode > cfg.MaxStatus {
			return fmt.Errorf("health: GET %s: status %d, want %d-%d", cfg.URL, resp.StatusCode, cfg.MinStatus, cfg.MaxStatus)
		}
		return nil
	}, nil
}

// TCPDial returns a check that opens a TCP connection to address ("host:port") and
// closes it. A nil dialer means a zero [net.Dialer].
func TCPDial(address string, dialer *net.Dialer) CheckFunc {
	if dialer == nil {
		dialer = &net.Dialer{}
	}
	return func(ctx context.Context) error {
		c, err := dialer.DialContext(ctx, "tcp", address)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// DNSLookup returns a check that resolves host and passes when it has at least one
// address. A nil resolver means [net.DefaultResolver].
func DNSLookup(host string, resolver *net.Resolver) CheckFunc {
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	return func(ctx context.Context) error {
		addrs, err := resolver.LookupHost(ctx, host)
		if err != nil {
			return err
		}
		if len(addrs) == 0 {
			return fmt.Errorf("health: %s resolves to no address", host)
		}
		return nil
	}
}

// Pinger is what [Ping] needs: *sql.DB (and *sql.Conn) implement it, as do many
// database clients. The health package imports no database driver.
type Pinger interface {
	PingContext(ctx context.Context) error
}

// Ping returns a check that passes when db.PingContext returns nil.
func Ping(db Pinger) CheckFunc {
	return func(ctx context.Context) error {
		return db.PingContext(ctx)
	}
}

// Goroutines returns a check that observes the number of goroutines (key
// [KeyGoroutines], unit "goroutines") and fails above limit; limit <= 0 means no
// limit. A goroutine leak shows as a count that only grows: register the check
// NonCritical to see it without failing probes.
func Goroutines(limit int) ObserveFunc {
	return func(context.Context) ([]Observation, error) {
		n := runtime.NumGoroutine()
		o := Observation{ComponentType: "system", ObservedValue: n, ObservedUnit: "goroutines", Status: StatusPass}
		if limit > 0 && n > limit {
			o.Status = StatusFail
			o.Output = fmt.Sprintf("%d goroutines, limit %d", n, limit)
		}
		return []Observation{o}, nil
	}
}

const heapMetric = "/memory/classes/heap/objects:bytes"

// Heap returns a check that observes the bytes occupied by heap objects (live and
// not yet swept; key [KeyHeap], unit "bytes") and fails above limit; limit 0 means no
// limit. It reads runtime/metrics, which, unlike runtime.ReadMemStats, does not stop
// the world.
func Heap(limit uint64) ObserveFunc {
	return func(context.Context) ([]Observation, error) {
		s := []metrics.Sample{{Name: heapMetric}}
		metrics.Read(s)
		if s[0].Value.Kind() != metrics.KindUint64 {
			return nil, fmt.Errorf("%w: runtime metric %s", ErrUnsupported, heapMetric)
		}
		n := s[0].Value.Uint64()
		o := Observation{ComponentType: "system", ObservedValue: n, ObservedUnit: "bytes", Status: StatusPass}
		if limit > 0 && n > limit {
			o.Status = StatusFail
			o.Output = fmt.Sprintf("heap %d bytes, limit %d", n, limit)
		}
		return []Observation{o}, nil
	}
}

// DiskFree returns a check that observes the bytes available to unprivileged users on
// the filesystem holding path (unit "bytes") and fails below minFree; minFree 0 means
// no minimum. On platforms without statfs it returns [ErrUnsupported].
func DiskFree(path string, minFree uint64) ObserveFunc {
	return func(context.Context) ([]Observation, error) {
		free, err := diskFree(path)
		if err != nil {
			return nil, err
		}
		o := Observation{ComponentID: path, ComponentType: "system", ObservedValue: free, ObservedUnit: "bytes", Status: StatusPass}
		if minFree > 0 && free < minFree {
			o.Status = StatusFail
			o.Output = fmt.Sprintf("%d bytes free on %s, minimum %d", free, path, minFree)
		}
		return []Observation{o}, nil
	}
}

// Heartbeat is a check for background jobs that must tick: the job calls
// [Heartbeat.Beat] on every iteration, and [Heartbeat.Check] fails when no beat came
// within the maximum interval. The clock starts at [NewHeartbeat], so a job that
// never beats fails after one interval.
//
// A Heartbeat is safe for concurrent use. The zero value is not usable.
type Heartbeat struct {
	max  time.Duration
	last atomic.Int64 // unix nanoseconds of the last beat
}

// NewHeartbeat returns a Heartbeat that fails after maxInterval without a beat.
// maxInterval <= 0 means one minute.
func NewHeartbeat(maxInterval time.Duration) *Heartbeat {
	if maxInterval <= 0 {
		maxInterval = time.Minute
	}
	h := &Heartbeat{max: maxInterval}
	h.Beat()
	return h
}

// Beat records a tick. It is cheap (one atomic store) and may be called from any
// goroutine.
func (h *Heartbeat) Beat() { h.last.Store(time.Now().UnixNano()) }

// Last returns the time of the last beat.
func (h *Heartbeat) Last() time.Time { return time.Unix(0, h.last.Load()) }

// ErrNoHeartbeat is the error of a [Heartbeat] check without a recent beat.
var ErrNoHeartbeat = errors.New("health: no heartbeat")

// Check is a [CheckFunc]: it fails with [ErrNoHeartbeat] when the last beat is older
// than the maximum interval.
func (h *Heartbeat) Check(context.Context) error {
	since := time.Since(h.Last())
	if since > h.max {
		return fmt.Errorf("%w for %v (max %v)", ErrNoHeartbeat, since.Round(time.Millisecond), h.max)
	}
	return nil
}

// Observe is an [ObserveFunc]: it reports the time since the last beat in seconds
// (unit "s") and fails as [Heartbeat.Check] does, so the document shows how late a
// job is, not only that it is.
func (h *Heartbeat) Observe(ctx context.Context) ([]Observation, error) {
	since := time.Since(h.Last())
	o := Observation{ObservedValue: since.Seconds(), ObservedUnit: "s", Status: StatusPass}
	if err := h.Check(ctx); err != nil {
		o.Status = StatusFail
		o.Output = err.Error()
	}
	return []Observation{o}, nil
}
