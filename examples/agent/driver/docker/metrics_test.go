package docker

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func TestMetricsCountWritesAndStaleRetries(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	d := newOffline(t, Config{MeterProvider: mp})

	stale := errors.New("update out of sequence")
	n := 0
	require.NoError(t, d.writeRetry(context.Background(), "scale service web", func() error {
		if n++; n <= 2 {
			return stale
		}
		return nil
	}))
	require.Error(t, d.writeRetry(context.Background(), "scale service web", func() error {
		return permanent{errors.New("docker: bad spec")}
	}))

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			require.True(t, ok, m.Name)
			for _, dp := range sum.DataPoints {
				key := m.Name
				if v, ok := dp.Attributes.Value("outcome"); ok {
					key += "/" + v.AsString()
				}
				got[key] += dp.Value
			}
		}
	}
	assert.Equal(t, map[string]int64{
		"selfheal.docker.writes/ok":     1,
		"selfheal.docker.writes/error":  1,
		"selfheal.docker.stale_retries": 2,
	}, got)
}
