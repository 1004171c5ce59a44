package telemetry_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/selfheal-go/selfheal/internal/telemetry"
)

func TestErrorType(t *testing.T) {
	for _, tt := range []struct {
		give error
		want string
	}{
		{nil, ""},
		{errors.New("secret text"), "_OTHER"},
		{fmt.Errorf("wrapped: %w", errors.New("x")), "_OTHER"},
		{fmt.Errorf("call: %w", context.DeadlineExceeded), "context.DeadlineExceeded"},
		{context.Canceled, "context.Canceled"},
		{&fs.PathError{Op: "open", Path: "/secret", Err: fs.ErrNotExist}, "io/fs.PathError"},
		{fmt.Errorf("load: %w", &fs.PathError{Op: "open", Path: "/x", Err: fs.ErrNotExist}), "io/fs.PathError"},
	} {
		assert.Equal(t, tt.want, telemetry.ErrorType(tt.give), "%v", tt.give)
	}
}
