package heal_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/breaker"
	"github.com/selfheal-go/selfheal/heal"
	"github.com/selfheal-go/selfheal/retry"
)

// logBuffer is a JSON slog handler writing to a buffer, at Debug.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// records parses the records written so far.
func (b *logBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var recs []map[string]any
	for line := range strings.Lines(b.buf.String()) {
		var r map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &r), line)
		recs = append(recs, r)
	}
	return recs
}

// keys returns the keys of a record besides time, level and msg, sorted.
func keys(r map[string]any) []string {
	var ks []string
	for k := range r {
		switch k {
		case "time", "level", "msg":
		default:
			ks = append(ks, k)
		}
	}
	slices.Sort(ks)
	return ks
}

// Each heal policy logs what it does to a call, once, at Debug, with the keys of
// its metrics (TELEMETRY.md's log records), and nothing for a call it leaves alone.
func TestPolicyLogs(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("boom")
	for _, tt := range []struct {
		name     string
		run      func(t *testing.T, l *slog.Logger)
		wantMsg  string
		wantKeys []string
		check    func(t *testing.T, r map[string]any)
	}{{
		name: "bulkhead",
		run: func(t *testing.T, l *slog.Logger) {
			b, err := heal.NewBulkhead(heal.BulkheadConfig{Name: "db", MaxConcurrent: 1, Logger: l})
			require.NoError(t, err)
			require.NoError(t, b.Do(ctx, ok))
			require.True(t, b.TryAcquire())
			assert.ErrorIs(t, b.Do(ctx, ok), heal.ErrBulkheadFull)
			b.Release()
		},
		wantMsg: "heal: bulkhead rejected", wantKeys: []string{"selfheal.policy.name"},
		check: func(t *testing.T, r map[string]any) { assert.Equal(t, "db", r["selfheal.policy.name"]) },
	}, {
		name: "ratelimit",
		run: func(t *testing.T, l *slog.Logger) {
			rl, err := heal.NewRateLimit(heal.RateLimitConfig{Name: "api", Rate: 0.001, Logger: l})
			require.NoError(t, err)
			require.NoError(t, rl.Do(ctx, ok))
			assert.ErrorIs(t, rl.Do(ctx, ok), heal.ErrRateLimited)
		},
		wantMsg: "heal: rate limit rejected", wantKeys: []string{"selfheal.policy.name", "selfheal.retry_after"},
		check: func(t *testing.T, r map[string]any) { assert.Greater(t, r["selfheal.retry_after"], 900.0) },
	}, {
		name: "ratelimit group",
		run: func(t *testing.T, l *slog.Logger) {
			g, err := heal.NewRateLimitGroup(heal.RateLimitGroupConfig{RateLimit: heal.RateLimitConfig{Name: "tenants", Rate: 0.001, Logger: l}})
			require.NoError(t, err)
			require.NoError(t, g.Do(ctx, "a", ok))
			assert.ErrorIs(t, g.Do(ctx, "a", ok), heal.ErrRateLimited)
		},
		wantMsg: "heal: rate limit rejected", wantKeys: []string{"selfheal.policy.name", "selfheal.retry_after"},
		check: func(t *testing.T, r map[string]any) { assert.Equal(t, "tenants/a", r["selfheal.policy.name"]) },
	}, {
		name: "adaptive limit",
		run: func(t *testing.T, l *slog.Logger) {
			al := heal.NewAdaptiveLimit(heal.AdaptiveLimitConfig{Name: "search", Logger: l})
			var toks []heal.LimitToken
			for range al.Limit() {
				tok, ok := al.Acquire(ctx)
				require.True(t, ok)
				toks = append(toks, tok)
			}
			assert.ErrorIs(t, al.Do(ctx, ok), heal.ErrLimitExceeded)
			for _, tok := range toks {
				tok.Release(ctx, false)
			}
		},
		wantMsg: "heal: limit rejected", wantKeys: []string{"selfheal.policy.name"},
	}, {
		name: "timeout",
		run: func(t *testing.T, l *slog.Logger) {
			to, err := heal.NewTimeout(heal.TimeoutConfig{Name: "slow", Timeout: time.Millisecond, Logger: l})
			require.NoError(t, err)
			require.NoError(t, to.Do(ctx, ok))
			assert.ErrorIs(t, to.Do(ctx, func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }), heal.ErrTimeout)
		},
		wantMsg: "heal: timeout expired", wantKeys: []string{"selfheal.policy.name"},
	}, {
		name: "fallback",
		run: func(t *testing.T, l *slog.Logger) {
			f, err := heal.NewFallback(heal.FallbackConfig{Name: "cache", Logger: l, Func: func(context.Context, error) error { return nil }})
			require.NoError(t, err)
			require.NoError(t, f.Do(ctx, ok))
			require.NoError(t, f.Do(ctx, func(context.Context) error { return boom }))
		},
		wantMsg: "heal: fallback used", wantKeys: []string{"error", "error.type", "selfheal.policy.name"},
		check: func(t *testing.T, r map[string]any) {
			assert.Equal(t, "boom", r["error"])
			assert.Equal(t, "_OTHER", r["error.type"])
		},
	}, {
		name: "hedge",
		run: func(t *testing.T, l *slog.Logger) {
			h, err := heal.NewHedge(heal.HedgeConfig{Name: "replicas", Delay: time.Millisecond, Logger: l})
			require.NoError(t, err)
			var n atomic.Int32
			require.NoError(t, h.Do(ctx, func(ctx context.Context) error {
				if n.Add(1) == 1 {
					<-ctx.Done() // the primary waits for the hedge to win
					return ctx.Err()
				}
				return nil
			}))
		},
		wantMsg: "heal: hedge started", wantKeys: []string{"selfheal.attempt", "selfheal.policy.name"},
		check: func(t *testing.T, r map[string]any) { assert.Equal(t, 2.0, r["selfheal.attempt"]) },
	}} {
		t.Run(tt.name, func(t *testing.T) {
			var buf logBuffer
			tt.run(t, buf.logger())
			recs := buf.records(t)
			require.Len(t, recs, 1)
			r := recs[0]
			assert.Equal(t, tt.wantMsg, r["msg"])
			assert.Equal(t, "DEBUG", r["level"])
			assert.Equal(t, tt.wantKeys, keys(r))
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

// A Pipeline's Logger reaches every stage whose config has none, the breaker and
// the retry policy included; a stage's own Logger wins.
func TestPipelineLogger(t *testing.T) {
	var buf, own logBuffer
	p, err := heal.New(heal.Config{Name: "db", Logger: buf.logger(),
		Retry:    &retry.Config{MaxAttempts: 2, Backoff: retry.Constant(time.Microsecond)},
		Breaker:  &breaker.Config{ConsecutiveFailures: 1},
		Fallback: &heal.FallbackConfig{Logger: own.logger(), Func: func(context.Context, error) error { return nil }},
	})
	require.NoError(t, err)
	require.NoError(t, p.Do(context.Background(), func(context.Context) error { return errors.New("boom") }))
	require.NoError(t, p.Do(context.Background(), ok)) // rejected by the open breaker, then fallen back
	var msgs []string
	for _, r := range buf.records(t) {
		msgs = append(msgs, r["msg"].(string))
	}
	assert.Contains(t, msgs, "retrying")
	assert.Contains(t, msgs, "breaker state changed")
	require.Len(t, own.records(t), 2, "the fallback's own logger")
	assert.Equal(t, "heal: fallback used", own.records(t)[0]["msg"])
}

// A Transport's Logger reaches its breakers and its retry policy.
func TestTransportLogger(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	var buf logBuffer
	tr, err := heal.NewTransport(heal.TransportConfig{Logger: buf.logger(),
		Breaker: breaker.GroupConfig{Breaker: breaker.Config{ConsecutiveFailures: 2}},
		Retry:   retry.Config{MaxAttempts: 2, Backoff: retry.Constant(time.Microsecond)}})
	require.NoError(t, err)
	c := &http.Client{Transport: tr}
	resp, err := c.Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
	c.CloseIdleConnections()
	var msgs []string
	for _, r := range buf.records(t) {
		msgs = append(msgs, r["msg"].(string))
	}
	assert.Equal(t, []string{"retrying", "breaker state changed"}, msgs)
}

// The middleware logs each request it sheds at Debug, with the keys of its shed
// counter and the request's method and path.
func TestMiddlewareShedLog(t *testing.T) {
	var buf logBuffer
	entered, release := make(chan struct{}), make(chan struct{})
	m, err := heal.NewMiddleware(heal.MiddlewareConfig{MaxConcurrent: 1, Rate: 0.001, Burst: 2, Logger: buf.logger()})
	require.NoError(t, err)
	h := m.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { close(entered); <-release }))
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/slow", nil))
	}()
	<-entered
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/items", nil)) // over MaxConcurrent
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/items", nil)) // over the burst
	assert.Equal(t, http.StatusTooManyRequests, w.Code)
	close(release)
	<-done
	recs := buf.records(t)
	require.Len(t, recs, 2)
	for i, want := range []struct{ reason, method string }{{"concurrency", "POST"}, {"rate", "GET"}} {
		r := recs[i]
		assert.Equal(t, "heal: request shed", r["msg"])
		assert.Equal(t, "DEBUG", r["level"])
		assert.Equal(t, []string{"http.request.method", "selfheal.policy.name", "selfheal.reason", "url.path"}, keys(r))
		assert.Equal(t, want.reason, r["selfheal.reason"])
		assert.Equal(t, want.method, r["http.request.method"])
		assert.Equal(t, "/items", r["url.path"])
		assert.Equal(t, "server", r["selfheal.policy.name"])
	}
}
