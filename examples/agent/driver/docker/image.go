package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/docker/docker/api/types/build"
)

// ImageSpec describes an image BuildImage makes from one static binary.
type ImageSpec struct {
	// Tag names the image, e.g. "selfheal-demo:v1". Required.
	Tag string
	// Binary is the path of a statically linked Linux binary (CGO_ENABLED=0; see
	// GoBuild). It becomes /service, the image's entrypoint. Required.
	Binary string
	// Args are default arguments after the entrypoint; nil means none.
	Args []string
	// HealthPath is the path the image's HEALTHCHECK probes with Config.ProbeCommand;
	// "" means "/livez". A service created with Health.Path overrides it.
	HealthPath string
	// HealthInterval is the HEALTHCHECK interval; <= 0 means 1 s.
	HealthInterval time.Duration
	// Labels are set on the image; nil means none.
	Labels map[string]string
}

// BuildImage builds an image FROM scratch that holds only spec.Binary, with a
// HEALTHCHECK that runs the binary's own probe mode (a scratch image has no shell and
// no curl). It uses the classic builder (the API's equivalent of DOCKER_BUILDKIT=0),
// so there is no base image and nothing is pulled. It returns the image id.
func (d *Driver) BuildImage(ctx context.Context, spec ImageSpec) (string, error) {
	if spec.Tag == "" {
		return "", errors.New("docker: ImageSpec.Tag: empty")
	}
	bin, err := os.ReadFile(spec.Binary)
	if err != nil {
		return "", fmt.Errorf("docker: ImageSpec.Binary: %w", err)
	}
	if !bytes.HasPrefix(bin, []byte("\x7fELF")) {
		return "", fmt.Errorf("docker: ImageSpec.Binary %s: not an ELF binary", spec.Binary)
	}
	dockerfile, err := d.dockerfile(spec)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, []byte(dockerfile)}, {"service", 0o755, bin}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: time.Unix(0, 0)}); err != nil {
			return "", err
		}
		if _, err := tw.Write(f.data); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}

	ctx, cancel, err := d.beginFor(ctx, max(d.cfg.CallTimeout, 2*time.Minute))
	if err != nil {
		return "", err
	}
	defer cancel()
	op := "build image " + spec.Tag
	resp, err := d.cli.ImageBuild(ctx, &buf, build.ImageBuildOptions{
		Tags:        []string{spec.Tag},
		Dockerfile:  "Dockerfile",
		Version:     build.BuilderV1,
		Remove:      true,
		ForceRemove: true,
		PullParent:  false,
		Labels:      spec.Labels,
	})
	if err != nil {
		return "", d.wrap(op, err)
	}
	defer resp.Body.Close()
	id, err := readBuildStream(resp.Body)
	if err != nil {
		return "", fmt.Errorf("docker: %s: %w", op, err)
	}
	if id == "" {
		img, err := d.cli.ImageInspect(ctx, spec.Tag)
		if err != nil {
			return "", d.wrap(op, err)
		}
		id = img.ID
	}
	d.log.InfoContext(ctx, "image built", "tag", spec.Tag, "id", id)
	return id, nil
}

func (d *Driver) dockerfile(spec ImageSpec) (string, error) {
	path := spec.HealthPath
	if path == "" {
		path = "/livez"
	}
	probe := make([]string, len(d.cfg.ProbeCommand))
	for i, a := range d.cfg.ProbeCommand {
		probe[i] = strings.ReplaceAll(a, "{path}", path)
	}
	probeJSON, err := json.Marshal(probe)
	if err != nil {
		return "", err
	}
	entry, err := json.Marshal(append([]string{"/service"}, spec.Args...))
	if err != nil {
		return "", err
	}
	interval := spec.HealthInterval
	if interval <= 0 {
		interval = time.Second
	}
	return fmt.Sprintf(`FROM scratch
COPY service /service
HEALTHCHECK --interval=%s --timeout=2s --start-period=%s --retries=3 CMD %s
ENTRYPOINT %s
`, interval, d.cfg.HealthStartPeriod, probeJSON, entry), nil
}

// readBuildStream reads the builder's JSON message stream to its end and returns the
// image id, or the first error the builder reported.
func readBuildStream(r io.Reader) (string, error) {
	dec := json.NewDecoder(r)
	var id string
	var tail []string
	for {
		var m struct {
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
			Aux struct {
				ID string `json:"ID"`
			} `json:"aux"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			return id, nil
		} else if err != nil {
			return "", fmt.Errorf("reading the build output: %w", err)
		}
		if m.Error != "" {
			return "", fmt.Errorf("%s (output: %s)", m.Error, strings.Join(tail, ""))
		}
		if m.Aux.ID != "" {
			id = m.Aux.ID
		}
		if m.Stream != "" {
			tail = append(tail, m.Stream)
			if len(tail) > 10 {
				tail = tail[1:]
			}
			if s, ok := strings.CutPrefix(strings.TrimSpace(m.Stream), "Successfully built "); ok && id == "" {
				id = s
			}
		}
	}
}

// BuildGoImage compiles the Go main package pkg (relative to dir) with GoBuild into a
// temporary directory and builds spec's image from it with BuildImage; spec.Binary is
// ignored. The demo uses it to put examples/service on the engine:
//
//	d.BuildGoImage(ctx, "examples", "./service", docker.ImageSpec{Tag: "selfheal-demo:latest"})
func (d *Driver) BuildGoImage(ctx context.Context, dir, pkg string, spec ImageSpec) (string, error) {
	tmp, err := os.MkdirTemp("", "selfheal-image-")
	if err != nil {
		return "", fmt.Errorf("docker: build image %s: %w", spec.Tag, err)
	}
	defer os.RemoveAll(tmp)
	spec.Binary = filepath.Join(tmp, "service")
	if err := GoBuild(ctx, dir, pkg, spec.Binary); err != nil {
		return "", err
	}
	return d.BuildImage(ctx, spec)
}

// GoBuild compiles the Go main package pkg (as `go build` names it, relative to dir)
// into a static Linux binary at out, for BuildImage: CGO_ENABLED=0, GOOS=linux,
// GOARCH of this machine, -trimpath.
func GoBuild(ctx context.Context, dir, pkg, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	output, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("docker: go build %s: %w\n%s", pkg, err, output)
	}
	return nil
}
