package heal_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"

	"github.com/selfheal-go/selfheal/breaker"
	"github.com/selfheal-go/selfheal/heal"
	"github.com/selfheal-go/selfheal/health"
)

// Publish the server's load and the breakers' states in the health document that
// the selfheal agent reads.
func ExampleRegisterHealth() {
	m, _ := heal.NewMiddleware(heal.MiddlewareConfig{MaxConcurrent: 100})
	h := m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))

	payments, _ := breaker.New(breaker.Config{Name: "payments"})
	payments.ForceOpen()

	reg := health.New(health.Config{})
	if err := heal.RegisterHealth(reg, heal.HealthSources{
		Server:   m,
		Breakers: []heal.BreakerStates{heal.Breakers(payments)},
	}); err != nil {
		panic(err)
	}

	doc := reg.Document(context.Background())
	keys := make([]string, 0, len(doc.Checks))
	for k := range doc.Checks {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Println(keys)
	b := doc.Checks["breaker:state"][0]
	fmt.Println(b.ComponentID, b.ObservedValue, b.Status)
	// An open breaker warns; liveness is never affected.
	fmt.Println(reg.Evaluate(context.Background(), health.Readiness), reg.Evaluate(context.Background(), health.Liveness))
	// Output:
	// [breaker:state http:inFlight http:responseTime http:shed http:throughput http:utilization]
	// payments open warn
	// warn pass
}
