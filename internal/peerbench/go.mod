module github.com/selfheal-go/selfheal/internal/peerbench

go 1.26

require github.com/selfheal-go/selfheal v0.0.0

require (
	github.com/alexliesenfeld/health v0.8.0 // indirect
	github.com/cenkalti/backoff/v4 v4.3.0 // indirect
	github.com/failsafe-go/failsafe-go v0.9.8 // indirect
	github.com/sony/gobreaker/v2 v2.4.0 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	github.com/thejerf/suture/v4 v4.0.6 // indirect
)

replace github.com/selfheal-go/selfheal => ../..
