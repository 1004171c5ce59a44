package main

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestDemoCrashStep plays the demo's first step end to end, as `go run
// ./examples/demo -steps crash` does (the play package tests every step).
func TestDemoCrashStep(t *testing.T) {
	var out bytes.Buffer
	events := filepath.Join(t.TempDir(), "events.jsonl")
	code := run(context.Background(), []string{"-steps", "crash", "-events", events}, &out, io.Discard)
	t.Log(out.String())
	assert.Equal(t, 0, code)
	assert.Contains(t, out.String(), "crash -> restart")
	assert.Contains(t, out.String(), "1 steps, 0 failed")
}

func TestFlags(t *testing.T) {
	assert.Equal(t, 2, run(context.Background(), []string{"-nope"}, io.Discard, io.Discard))
	assert.True(t, matches("crash -> restart", "hang,crash"))
	assert.False(t, matches("crash -> restart", "hang"))
	assert.Equal(t, 2, run(context.Background(), []string{"-driver", "nope"}, io.Discard, io.Discard))
}

// Without an engine, -driver docker says how to start one and exits non-zero.
func TestDockerWithoutAnEngine(t *testing.T) {
	t.Setenv("SELFHEAL_DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "no-engine.sock"))
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"-driver", "docker"}, io.Discard, &stderr)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr.String(), "bash .ci/docker/engine.sh start")
	assert.Contains(t, stderr.String(), `eval "$(bash .ci/docker/engine.sh env)"`)
}
