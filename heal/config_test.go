package heal_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/breaker"
	"github.com/selfheal-go/selfheal/heal"
	"github.com/selfheal-go/selfheal/retry"
)

// Every constructor that can fail reports an invalid field with an error that matches
// heal.ErrInvalidConfig and is a *heal.ConfigError naming it.
func TestConstructorsReportConfigErrors(t *testing.T) {
	errOf := func(_ any, err error) error { return err }
	tests := []struct {
		field string
		err   error
	}{
		{"BulkheadConfig.MaxConcurrent", errOf(heal.NewBulkhead(heal.BulkheadConfig{MaxConcurrent: -1}))},
		{"BulkheadConfig.MaxQueued", errOf(heal.NewBulkhead(heal.BulkheadConfig{MaxQueued: -1}))},
		{"BulkheadConfig.MaxWait", errOf(heal.NewBulkhead(heal.BulkheadConfig{MaxWait: -1}))},
		{"RateLimitConfig.Rate", errOf(heal.NewRateLimit(heal.RateLimitConfig{}))},
		{"RateLimitConfig.Mode", errOf(heal.NewRateLimit(heal.RateLimitConfig{Rate: 1, Mode: 7}))},
		{"RateLimitConfig.MaxWait", errOf(heal.NewRateLimit(heal.RateLimitConfig{Rate: 1, MaxWait: -1}))},
		{"RateLimitGroupConfig.MaxKeys", errOf(heal.NewRateLimitGroup(heal.RateLimitGroupConfig{RateLimit: heal.RateLimitConfig{Rate: 1}, MaxKeys: -1}))},
		{"TimeoutConfig.Timeout", errOf(heal.NewTimeout(heal.TimeoutConfig{}))},
		{"FallbackConfig.Func", errOf(heal.NewFallback(heal.FallbackConfig{}))},
		{"HedgeConfig.Percentile", errOf(heal.NewHedge(heal.HedgeConfig{Percentile: 1}))},
		{"AIMDConfig.BackoffRatio", errOf(heal.NewAIMD(heal.AIMDConfig{BackoffRatio: 2}))},
		{"AIMDConfig.MaxLimit", errOf(heal.NewAIMD(heal.AIMDConfig{MinLimit: 10, MaxLimit: 5}))},
		{"GradientConfig.Smoothing", errOf(heal.NewGradient(heal.GradientConfig{Smoothing: 2}))},
		{"GradientConfig.Tolerance", errOf(heal.NewGradient(heal.GradientConfig{Tolerance: 0.5}))},
		{"RecorderConfig.Window", errOf(heal.NewRecorder(heal.RecorderConfig{Window: -1}))},
		{"MiddlewareConfig.MaxConcurrent", errOf(heal.NewMiddleware(heal.MiddlewareConfig{MaxConcurrent: -2}))},
		{"MiddlewareConfig.Window", errOf(heal.NewMiddleware(heal.MiddlewareConfig{Window: -1}))},
		{"TransportConfig.MaxDrain", errOf(heal.NewTransport(heal.TransportConfig{MaxDrain: -2}))},
		{"TransportConfig.Breaker.MaxKeys", errOf(heal.NewTransport(heal.TransportConfig{Breaker: breaker.GroupConfig{MaxKeys: -2}}))},
		{"TransportConfig.Retry.MaxAttempts", errOf(heal.NewTransport(heal.TransportConfig{Retry: retry.Config{MaxAttempts: -1}}))},
		{"Config.Bulkhead.MaxQueued", errOf(heal.New(heal.Config{Bulkhead: &heal.BulkheadConfig{MaxQueued: -1}}))},
	}
	for _, tt := range tests {
		require.ErrorIs(t, tt.err, heal.ErrInvalidConfig, tt.field)
		var ce *heal.ConfigError
		require.ErrorAs(t, tt.err, &ce, tt.field)
		assert.Equal(t, tt.field, ce.Field)
		assert.NotEmpty(t, ce.Reason, tt.field)
		assert.Equal(t, "heal: invalid configuration: "+ce.Field+": "+ce.Reason, ce.Error())
	}
	// The error of another package's constructor stays matchable.
	assert.ErrorIs(t, tests[len(tests)-3].err, breaker.ErrInvalidConfig)
	assert.ErrorIs(t, tests[len(tests)-2].err, retry.ErrInvalidConfig)
}
