package peerbench_test

// Retry benchmarks: selfheal/retry against cenkalti/backoff v4 and failsafe-go, in the
// same run.
//
//	go test -run '^$' -bench 'Retry' -benchmem -count 5 ./internal/peerbench/
//
// BenchmarkRetrySuccess*: the call succeeds on the first attempt, the policy is reused.
// BenchmarkRetryStorm: a loopback HTTP downstream fails every call for the whole storm;
// the metric attempts/call is the load amplification seen by the downstream.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/failsafe-go/failsafe-go"
	fsbudget "github.com/failsafe-go/failsafe-go/budget"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/selfheal-go/selfheal/internal/peerbench"
	"github.com/selfheal-go/selfheal/retry"
)

func retryOK(context.Context) error { return nil }

func retryOKData() (int, error) { return 1, nil }

func retryPolicy(b *testing.B, cfg retry.Config) *retry.Policy {
	b.Helper()
	p, err := retry.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

func retryFailsafe() failsafe.Executor[any] {
	rp := retrypolicy.NewBuilder[any]().WithMaxAttempts(3).WithBackoff(100*time.Millisecond, 10*time.Second).Build()
	return failsafe.With[any](rp)
}

func BenchmarkRetrySuccess(b *testing.B) {
	ctx := context.Background()
	b.Run("selfheal", func(b *testing.B) {
		p := retryPolicy(b, retry.Config{})
		b.ReportAllocs()
		for b.Loop() {
			if err := p.Do(ctx, retryOK); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("selfheal-sdk", func(b *testing.B) {
		// With the OpenTelemetry SDK installed: the attempts counter is read at
		// collection, so a call costs what it costs without an SDK.
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		defer func() { _ = mp.Shutdown(ctx) }()
		p := retryPolicy(b, retry.Config{MeterProvider: mp})
		b.ReportAllocs()
		for b.Loop() {
			if err := p.Do(ctx, retryOK); err != nil {
				b.Fatal(err)
			}
		}
	})
	// With the SDK's metrics and tracing installed and the caller's span sampled out
	// (the common case in production: no attempt span is started), and sampled in
	// (a first attempt that succeeds starts no span).
	for _, sampled := range []bool{false, true} {
		name := map[bool]string{false: "selfheal-sdk-sampled-out", true: "selfheal-sdk-sampled"}[sampled]
		b.Run(name, func(b *testing.B) {
			mp, tp, sctx := peerbench.SDKProviders(b, sampled)
			p := retryPolicy(b, retry.Config{MeterProvider: mp, TracerProvider: tp})
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Do(sctx, retryOK); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("selfheal-call", func(b *testing.B) {
		p := retryPolicy(b, retry.Config{})
		fn := func(context.Context) (int, error) { return 1, nil }
		b.ReportAllocs()
		for b.Loop() {
			if _, err := retry.Call(ctx, p, fn); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("backoff-reused", func(b *testing.B) {
		bo := backoff.NewExponentialBackOff()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := backoff.RetryWithData(retryOKData, bo); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("backoff-new", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := backoff.RetryWithData(retryOKData, backoff.NewExponentialBackOff()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("failsafe", func(b *testing.B) {
		ex := retryFailsafe()
		fn := func() error { return nil }
		b.ReportAllocs()
		for b.Loop() {
			if err := ex.Run(fn); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkRetrySuccessParallel(b *testing.B) {
	ctx := context.Background()
	b.Run("selfheal", func(b *testing.B) {
		p := retryPolicy(b, retry.Config{})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = p.Do(ctx, retryOK)
			}
		})
	})
	b.Run("backoff-reused", func(b *testing.B) {
		// An ExponentialBackOff is not safe for concurrent use: one per goroutine.
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			bo := backoff.NewExponentialBackOff()
			for pb.Next() {
				_, _ = backoff.RetryWithData(retryOKData, bo)
			}
		})
	})
	b.Run("failsafe", func(b *testing.B) {
		ex := retryFailsafe()
		fn := func() error { return nil }
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = ex.Run(fn)
			}
		})
	})
}

// retryDownstream is a loopback HTTP server that fails every call while down.
type retryDownstream struct {
	srv    *httptest.Server
	client *http.Client
	hits   atomic.Int64
	down   atomic.Bool
}

func newRetryDownstream(b *testing.B) *retryDownstream {
	d := &retryDownstream{}
	d.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		d.hits.Add(1)
		if d.down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	d.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.Cleanup(func() {
		d.client.CloseIdleConnections()
		d.srv.Close()
	})
	return d
}

var errRetryUnavailable = errors.New("503 Service Unavailable")

func (d *retryDownstream) get(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.srv.URL, nil)
	if err != nil {
		return err
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable {
		return errRetryUnavailable
	}
	return nil
}

const (
	retryStormCalls   = 1000 // logical calls per storm (one benchmark iteration)
	retryStormClients = 8    // concurrent callers
)

// storm runs one outage: retryStormCalls logical calls from retryStormClients
// goroutines while the downstream fails everything, and returns the downstream's hits.
func (d *retryDownstream) storm(call func(context.Context) error) int64 {
	d.down.Store(true)
	defer d.down.Store(false)
	before := d.hits.Load()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range retryStormClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= retryStormCalls {
				_ = call(context.Background())
			}
		}()
	}
	wg.Wait()
	return d.hits.Load() - before
}

func BenchmarkRetryStorm(b *testing.B) {
	const maxAttempts = 3
	tiny := retry.Config{MaxAttempts: maxAttempts, Backoff: retry.Exponential(retry.ExponentialConfig{InitialDelay: 20 * time.Microsecond, MaxDelay: 100 * time.Microsecond})}

	run := func(b *testing.B, call func(d *retryDownstream) func(context.Context) error) {
		d := newRetryDownstream(b)
		fn := call(d)
		var hits int64
		n := 0
		for b.Loop() {
			hits += d.storm(fn)
			n++
		}
		b.ReportMetric(float64(hits)/float64(n*retryStormCalls), "attempts/call")
	}

	b.Run("selfheal-budget20", func(b *testing.B) {
		// One budget for the whole benchmark, as a service would share one per downstream:
		// 20% of calls, a floor of 1 retry a second over the default 10s window.
		budget, err := retry.NewBudget(retry.BudgetConfig{Ratio: 0.2, MinPerSecond: 1})
		if err != nil {
			b.Fatal(err)
		}
		cfg := tiny
		cfg.Budget = budget
		p := retryPolicy(b, cfg)
		run(b, func(d *retryDownstream) func(context.Context) error {
			return func(ctx context.Context) error { return p.Do(ctx, d.get) }
		})
	})
	b.Run("selfheal-nobudget", func(b *testing.B) {
		p := retryPolicy(b, tiny)
		run(b, func(d *retryDownstream) func(context.Context) error {
			return func(ctx context.Context) error { return p.Do(ctx, d.get) }
		})
	})
	b.Run("failsafe-budget20", func(b *testing.B) {
		// failsafe-go's budget bounds concurrent retries to 20% of executions in flight
		// (at least 3), not retries over a time window.
		rp := retrypolicy.NewBuilder[any]().WithMaxAttempts(maxAttempts).
			WithBackoff(20*time.Microsecond, 100*time.Microsecond).
			WithBudget(fsbudget.NewBuilder().WithMaxRate(0.2).Build()).Build()
		ex := failsafe.With[any](rp)
		run(b, func(d *retryDownstream) func(context.Context) error {
			return func(ctx context.Context) error { return ex.Run(func() error { return d.get(ctx) }) }
		})
	})
	b.Run("backoff", func(b *testing.B) {
		run(b, func(d *retryDownstream) func(context.Context) error {
			return func(ctx context.Context) error {
				bo := backoff.WithMaxRetries(backoff.NewExponentialBackOff(
					backoff.WithInitialInterval(20*time.Microsecond), backoff.WithMaxInterval(100*time.Microsecond)), maxAttempts-1)
				return backoff.Retry(func() error { return d.get(ctx) }, backoff.WithContext(bo, ctx))
			}
		})
	})
}
