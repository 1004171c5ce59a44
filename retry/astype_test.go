package retry

import (
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// hintAs matches a *AfterError target through its own As method only.
type hintAs struct{}

func (hintAs) Error() string { return "hint by As" }

func (hintAs) As(target any) bool {
	if p, ok := target.(*delayHintError); ok {
		*p = &AfterError{Err: io.EOF, Delay: 7 * time.Second}
		return true
	}
	return false
}

func TestAsTypeAgreesWithErrorsAs(t *testing.T) {
	perm := &PermanentError{Err: io.EOF}
	tests := []struct {
		name string
		give error
		want bool
	}{
		{"nil", nil, false},
		{"plain", io.EOF, false},
		{"itself", perm, true},
		{"wrapped", fmt.Errorf("a: %w", perm), true},
		{"joined second", errors.Join(io.EOF, fmt.Errorf("b: %w", perm)), true},
		{"multi %w", fmt.Errorf("%w and %w", io.ErrUnexpectedEOF, perm), true},
		{"joined none", errors.Join(io.EOF, io.ErrClosedPipe), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := asType[*PermanentError](tt.give)
			var want *PermanentError
			assert.Equal(t, errors.As(tt.give, &want), ok)
			assert.Equal(t, tt.want, ok)
			assert.Equal(t, want, got)
		})
	}
}

func TestAsTypeHonoursAsMethod(t *testing.T) {
	assert.Equal(t, 7*time.Second, serverDelay(fmt.Errorf("x: %w", hintAs{})))
}
