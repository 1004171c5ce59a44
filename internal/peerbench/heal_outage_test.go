package peerbench_test

// BenchmarkHealOutage: a loopback downstream fails every request (503) for an outage
// period and then recovers. Calls arrive at a fixed rate (open loop) for the outage and
// a recovery period after it, through four clients:
//
//   - none: one attempt per call;
//   - naive: up to 3 attempts per call, back to back;
//   - selfheal: heal.New (retry with backoff + breaker + bulkhead + timeout);
//   - selfheal-transport: heal.Transport (a breaker per host + retries), same settings;
//   - failsafe-go: the same policies as selfheal, configured alike.
//
// Metrics: success (share of calls that succeeded), attempts/call (requests the
// downstream received during the outage per call started during it), first-ok-ms
// (from the recovery to the first call that succeeded) and full-ok-ms (from the
// recovery to the end of the last call that failed: after it, every call succeeded).
//
// Periods are short so that the benchmark stays fast at -benchtime 1x.

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

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/bulkhead"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/failsafe-go/failsafe-go/timeout"

	"github.com/selfheal-go/selfheal/breaker"
	"github.com/selfheal-go/selfheal/heal"
	"github.com/selfheal-go/selfheal/retry"
)

const (
	healOutage   = 200 * time.Millisecond // the downstream fails for this long
	healAfter    = 300 * time.Millisecond // calls keep coming for this long after
	healInterval = time.Millisecond       // one call every interval
	healOpenFor  = 50 * time.Millisecond  // breakers' open duration
)

// healDownstream fails until recoverAt and counts the requests it gets during the
// outage.
type healDownstream struct {
	recoverAt    atomic.Int64 // unix ns
	outageReqs   atomic.Int64
	recoveryReqs atomic.Int64
}

func (d *healDownstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if time.Now().UnixNano() < d.recoverAt.Load() {
		d.outageReqs.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	d.recoveryReqs.Add(1)
	_, _ = io.WriteString(w, "ok")
}

var errHealStatus = errors.New("downstream failed")

// healGet is one attempt: an error for a transport failure or a 5xx.
func healGet(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return errHealStatus
	}
	return nil
}

type healResult struct {
	calls, ok, outageCalls int64
	outageReqs             int64
	firstOK, fullOK        time.Duration
}

// healScenario runs one outage against call and measures it.
func healScenario(b *testing.B, d *healDownstream, call func(ctx context.Context) error) healResult {
	b.Helper()
	start := time.Now()
	recoverAt := start.Add(healOutage)
	d.recoverAt.Store(recoverAt.UnixNano())
	d.outageReqs.Store(0)
	d.recoveryReqs.Store(0)

	var (
		mu       sync.Mutex
		res      healResult
		firstOK  time.Time
		lastFail time.Time
		wg       sync.WaitGroup
	)
	tick := time.NewTicker(healInterval)
	defer tick.Stop()
	end := recoverAt.Add(healAfter)
	for now := time.Now(); now.Before(end); now = <-tick.C {
		inOutage := now.Before(recoverAt)
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			err := call(ctx)
			done := time.Now()
			mu.Lock()
			defer mu.Unlock()
			res.calls++
			if inOutage {
				res.outageCalls++
			}
			if err == nil {
				res.ok++
				if !done.Before(recoverAt) && (firstOK.IsZero() || done.Before(firstOK)) {
					firstOK = done
				}
			} else if done.After(lastFail) {
				lastFail = done
			}
		})
	}
	wg.Wait()
	res.outageReqs = d.outageReqs.Load()
	if !firstOK.IsZero() {
		res.firstOK = firstOK.Sub(recoverAt)
	} else {
		res.firstOK = healAfter
	}
	res.fullOK = max(lastFail.Sub(recoverAt), 0)
	return res
}

func BenchmarkHealOutage(b *testing.B) {
	d := &healDownstream{}
	srv := httptest.NewServer(d)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	defer client.CloseIdleConnections()
	url := srv.URL

	variants := []struct {
		name string
		make func(b *testing.B) func(ctx context.Context) error
	}{
		{"none", func(*testing.B) func(context.Context) error {
			return func(ctx context.Context) error { return healGet(ctx, client, url) }
		}},
		{"naive", func(*testing.B) func(context.Context) error {
			return func(ctx context.Context) error {
				var err error
				for range 3 {
					if err = healGet(ctx, client, url); err == nil {
						return nil
					}
				}
				return err
			}
		}},
		{"selfheal", func(b *testing.B) func(context.Context) error {
			p, err := heal.New(heal.Config{
				Retry:    &retry.Config{MaxAttempts: 3, Backoff: retry.Exponential(retry.ExponentialConfig{InitialDelay: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond})},
				Breaker:  &breaker.Config{ConsecutiveFailures: 5, OpenDuration: healOpenFor},
				Timeout:  &heal.TimeoutConfig{Timeout: time.Second},
				Bulkhead: &heal.BulkheadConfig{MaxConcurrent: 100},
			})
			if err != nil {
				b.Fatal(err)
			}
			return func(ctx context.Context) error {
				return p.Do(ctx, func(ctx context.Context) error { return healGet(ctx, client, url) })
			}
		}},
		{"selfheal-transport", func(b *testing.B) func(context.Context) error {
			tr, err := heal.NewTransport(heal.TransportConfig{
				Base:    client.Transport,
				Breaker: breaker.GroupConfig{Breaker: breaker.Config{ConsecutiveFailures: 5, OpenDuration: healOpenFor}},
				Retry:   retry.Config{MaxAttempts: 3, Backoff: retry.Exponential(retry.ExponentialConfig{InitialDelay: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond})},
			})
			if err != nil {
				b.Fatal(err)
			}
			hc := &http.Client{Transport: tr}
			return func(ctx context.Context) error { return healGet(ctx, hc, url) }
		}},
		{"failsafe-go", func(*testing.B) func(context.Context) error {
			rp := retrypolicy.NewBuilder[any]().WithMaxAttempts(3).WithBackoff(10*time.Millisecond, 100*time.Millisecond).
				WithJitterFactor(0.5).AbortOnErrors(circuitbreaker.ErrOpen).Build()
			cb := circuitbreaker.NewBuilder[any]().WithFailureThreshold(5).WithDelay(healOpenFor).Build()
			ex := failsafe.With[any](rp, cb, bulkhead.New[any](100), timeout.New[any](time.Second))
			return func(ctx context.Context) error {
				return ex.WithContext(ctx).RunWithExecution(func(e failsafe.Execution[any]) error {
					return healGet(e.Context(), client, url)
				})
			}
		}},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			call := v.make(b)
			var sum healResult
			n := 0
			for b.Loop() {
				r := healScenario(b, d, call)
				sum.calls += r.calls
				sum.ok += r.ok
				sum.outageCalls += r.outageCalls
				sum.outageReqs += r.outageReqs
				sum.firstOK += r.firstOK
				sum.fullOK += r.fullOK
				n++
			}
			if sum.calls == 0 || sum.outageCalls == 0 {
				b.Fatalf("no calls: %+v", sum)
			}
			b.ReportMetric(float64(sum.ok)/float64(sum.calls), "success")
			b.ReportMetric(float64(sum.outageReqs)/float64(sum.outageCalls), "attempts/call")
			b.ReportMetric(float64(sum.firstOK.Milliseconds())/float64(n), "first-ok-ms")
			b.ReportMetric(float64(sum.fullOK.Milliseconds())/float64(n), "full-ok-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
