package peerbench_test

// Hot paths of issue 18, each with its peer or floor in the same run:
//
//	internal/peerbench/table.sh -bench 'RetryFailure|HealTransport|HealMiddlewareTimeout|Breaker'
//
// BenchmarkRetryFailure: two failed attempts then a success, no wait between them
// (a zero delay), so that only the bookkeeping of a failed attempt is measured. The
// failures return the caller's own preallocated error: every allocation counted is
// the policy's.
//
// BenchmarkHealTransport: a GET on a loopback server through a plain http.Client and
// through one whose transport is heal.Transport around the same kind of base.
//
// BenchmarkHealMiddlewareTimeout: a trivial handler, bare and behind heal.Middleware
// with MaxConcurrent and Timeout, called directly (no network).

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/selfheal-go/selfheal/heal"
	"github.com/selfheal-go/selfheal/internal/peerbench"
	"github.com/selfheal-go/selfheal/retry"
)

var errRetryFlaky = errors.New("flaky")

func BenchmarkRetryFailure(b *testing.B) {
	ctx := context.Background()
	b.Run("selfheal", func(b *testing.B) {
		p := retryPolicy(b, retry.Config{Backoff: retry.Constant(0)})
		b.ReportAllocs()
		for b.Loop() {
			n := 0
			if err := p.Do(ctx, func(context.Context) error {
				if n++; n < 3 {
					return errRetryFlaky
				}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("backoff", func(b *testing.B) {
		bo := backoff.WithMaxRetries(&backoff.ZeroBackOff{}, 2)
		b.ReportAllocs()
		for b.Loop() {
			n := 0
			if _, err := backoff.RetryWithData(func() (int, error) {
				if n++; n < 3 {
					return 0, errRetryFlaky
				}
				return 1, nil
			}, bo); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkHealTransport(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	base := func() *http.Transport { return &http.Transport{MaxIdleConnsPerHost: 64} }
	ht, err := heal.NewTransport(heal.TransportConfig{Base: base()})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		rt   http.RoundTripper
	}{
		{"plain", base()},
		{"selfheal", ht},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := &http.Client{Transport: bc.rt}
			defer c.CloseIdleConnections()
			get := func() {
				resp, err := c.Get(srv.URL)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			get() // the connection
			b.ReportAllocs()
			for b.Loop() {
				get()
			}
		})
	}
	// On a loaded machine the two sub-benchmarks above, a second apart, see
	// different loads. Here every iteration sends one request each way, each timed on
	// its own, so that both see the same load: the ratio is that of their sums.
	b.Run("alternating", func(b *testing.B) {
		plain, healed := &http.Client{Transport: base()}, &http.Client{Transport: ht}
		defer plain.CloseIdleConnections()
		get := func(c *http.Client) time.Duration {
			t := time.Now()
			resp, err := c.Get(srv.URL)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return time.Since(t)
		}
		get(plain)
		get(healed)
		var tp, th time.Duration
		for i := 0; b.Loop(); i++ {
			if i%2 == 0 { // either first, in turn
				tp += get(plain)
				th += get(healed)
			} else {
				th += get(healed)
				tp += get(plain)
			}
		}
		b.ReportMetric(float64(th)/float64(tp), "selfheal/plain")
	})
}

// cannedRT answers every request with the same empty 204, without a network: what
// heal.Transport adds to a round trip, with nothing else in the measure.
type cannedRT struct{}

func (cannedRT) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusNoContent, Status: "204 No Content", Body: http.NoBody, Request: req}, nil
}

func BenchmarkHealTransportOverhead(b *testing.B) {
	ht, err := heal.NewTransport(heal.TransportConfig{Base: cannedRT{}})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "http://svc.local/", nil)
	for _, bc := range []struct {
		name string
		rt   http.RoundTripper
	}{{"floor", cannedRT{}}, {"selfheal", ht}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				resp, err := bc.rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
		})
	}
	// With the SDK's metrics and tracing installed, the request's span (the
	// caller's) sampled out: no attempt span; and sampled: a client span per attempt,
	// its context injected into a copy of the request's headers.
	for _, sampled := range []bool{false, true} {
		name := map[bool]string{false: "selfheal-sdk-sampled-out", true: "selfheal-sdk-sampled"}[sampled]
		b.Run(name, func(b *testing.B) {
			mp, tp, sctx := peerbench.SDKProviders(b, sampled)
			ht, err := heal.NewTransport(heal.TransportConfig{Base: cannedRT{}, MeterProvider: mp, TracerProvider: tp})
			if err != nil {
				b.Fatal(err)
			}
			req := req.WithContext(sctx)
			b.ReportAllocs()
			for b.Loop() {
				resp, err := ht.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
		})
	}
}

func BenchmarkHealMiddlewareTimeout(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	m, err := heal.NewMiddleware(heal.MiddlewareConfig{MaxConcurrent: 1 << 16, Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{
		{"bare", h},
		{"selfheal", m.Wrap(h)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				bc.h.ServeHTTP(w, req)
			}
		})
	}
}
