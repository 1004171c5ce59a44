// Command testsvc is a small HTTP service for the docker driver's integration tests,
// so that they do not depend on the demo service. It listens on $LISTEN_HOST:$PORT
// (LISTEN_HOST defaults to 127.0.0.1; the test-host lab sets 0.0.0.0) and
// serves /livez, /readyz and a health document on /health, carries its version
// ($VERSION), and has fault endpoints (POST only):
//
//	/fault/crash       exit 3 at once
//	/fault/unhealthy   /livez fails from now on (Docker's HEALTHCHECK notices)
//	/fault/degrade     the health document reports "fail" (only the agent notices)
//	/fault/baddoc      the health document is malformed (only the agent notices)
//
// A version that contains "bad" fails /livez from the start.
//
// With -probe URL it is its own health probe for a HEALTHCHECK in a scratch image: it
// expands $VARIABLES in URL, GETs it and exits 0 on a 2xx answer, 1 otherwise.
package main
