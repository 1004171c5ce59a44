package obs_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http/httptest"
	"regexp"
	"strings"

	"go.opentelemetry.io/otel/attribute"

	"github.com/selfheal-go/selfheal/breaker"
	"github.com/selfheal-go/selfheal/examples/internal/obs"
)

var scope = regexp.MustCompile(`otel_scope_\w+="[^"]*",?`)

// A breaker's metrics, scraped in the Prometheus text format: give the SDK
// MeterProvider to the policy, serve the handler on GET /metrics.
func ExampleNewMetrics() {
	ctx := context.Background()
	res, _ := obs.Resource(ctx, attribute.String("service.name", "shop"))
	m, err := obs.NewMetrics(res)
	if err != nil {
		panic(err)
	}
	defer m.Provider.Shutdown(ctx)
	b, err := breaker.New(breaker.Config{Name: "payments", MeterProvider: m.Provider})
	if err != nil {
		panic(err)
	}
	_ = b.Do(ctx, func(context.Context) error { return nil })

	rec := httptest.NewRecorder()
	m.Handler.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "selfheal_breaker_calls_total{") {
			fmt.Println(scope.ReplaceAllString(sc.Text(), "")) // the otel_scope_* labels left out
		}
	}
	// Output:
	// selfheal_breaker_calls_total{selfheal_outcome="success",selfheal_policy_name="payments"} 1
}
