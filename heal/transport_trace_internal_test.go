package heal

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// url.full keeps scheme, host and path, never credentials, query or fragment;
// server.port is the URL's or its scheme's.
func TestAttemptURLAttributes(t *testing.T) {
	for _, tt := range []struct {
		give, wantURL string
		wantPort      int
	}{
		{"http://example.com/a/b", "http://example.com/a/b", 80},
		{"https://user:pw@example.com:8443/a?token=x#frag", "https://example.com:8443/a", 8443},
		{"https://example.com/a%2Fb?sig=1", "https://example.com/a%2Fb", 443},
		{"http://[::1]:9000", "http://[::1]:9000", 9000},
		{"unix:///run/x.sock", "unix:///run/x.sock", 0},
	} {
		u, err := url.Parse(tt.give)
		require.NoError(t, err)
		assert.Equal(t, tt.wantURL, redactURL(u), tt.give)
		assert.Equal(t, tt.wantPort, urlPort(u), tt.give)
	}
	for give, want := range map[string]string{"": "GET", "GET": "GET", "PATCH": "PATCH", "QUERY": "QUERY", "get": "_OTHER", "PURGE": "_OTHER"} {
		assert.Equal(t, want, httpMethod(give), give)
	}
}
