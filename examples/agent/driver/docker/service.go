package docker

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/selfheal-go/selfheal/examples/agent/driver"
)

// minCheckTimeout is the least timeout the engine's own health check gets (see fill).
const minCheckTimeout = 2 * time.Second

// Apply creates the service, or updates it to spec. A changed Version, Image, Command,
// Env, BasePort or health check rolls out through Swarm's rolling update with
// spec.Update (automatic rollback with spec.Rollback when FailureAction is
// "rollback"); a changed replica count alone is a plain scale. An unchanged spec
// writes nothing. Apply returns once Swarm accepted the write; follow the rollout
// with Rollout and Instances.
//
// spec.Replicas <= 0 keeps the current count (1 for a new service). The image must be
// on the engine already: the driver never asks a registry (QueryRegistry false) and
// the engine never pulls an image it has (DOCKER_SERVICE_PREFER_OFFLINE_IMAGE).
func (d *Driver) Apply(ctx context.Context, spec driver.ServiceSpec) error {
	if err := d.validate(spec); err != nil {
		return err
	}
	op := "apply service " + spec.Name
	ctx, cancel, err := d.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	_, _, err = d.cli.ServiceInspectWithRaw(ctx, spec.Name, swarm.ServiceInspectOptions{})
	if err != nil {
		if werr := d.wrap(op, err); !errors.Is(werr, driver.ErrNotFound) {
			return werr
		}
		var s swarm.ServiceSpec
		if err := d.fill(&s, spec, true); err != nil {
			return err
		}
		resp, err := d.cli.ServiceCreate(ctx, s, swarm.ServiceCreateOptions{QueryRegistry: false})
		d.count(ctx, err)
		if err != nil {
			return d.wrap(op, err)
		}
		d.log.InfoContext(ctx, "service created", "service", spec.Name, "id", resp.ID,
			"version", spec.Version, "replicas", *s.Mode.Replicated.Replicas, "warnings", resp.Warnings)
		return nil
	}
	return d.update(ctx, op, spec.Name, swarm.ServiceUpdateOptions{}, func(s *swarm.ServiceSpec) error {
		return d.fill(s, spec, false)
	})
}

// Scale sets the service's replica count (>= 0). It returns once Swarm accepted it;
// it never waits for the new instances.
func (d *Driver) Scale(ctx context.Context, service string, replicas int) error {
	if replicas < 0 {
		return fmt.Errorf("docker: scale service %s: negative replicas %d", service, replicas)
	}
	ctx, cancel, err := d.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	return d.update(ctx, "scale service "+service, service, swarm.ServiceUpdateOptions{}, func(s *swarm.ServiceSpec) error {
		if s.Mode.Replicated == nil {
			return fmt.Errorf("docker: scale service %s: not a replicated service: %w", service, driver.ErrUnsupported)
		}
		n := uint64(replicas)
		s.Mode.Replicated.Replicas = &n
		if err := setPortLabels(s, replicas); err != nil {
			return err
		}
		capParallelism(s, replicas)
		return nil
	})
}

// Rollback asks Swarm to roll the service back to its previous spec, with the
// service's rollback policy. It returns once Swarm accepted it.
func (d *Driver) Rollback(ctx context.Context, service string) error {
	ctx, cancel, err := d.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	op := "roll back service " + service
	return d.writeRetry(ctx, op, func() error {
		svc, _, err := d.cli.ServiceInspectWithRaw(ctx, service, swarm.ServiceInspectOptions{})
		if err != nil {
			return err
		}
		if svc.PreviousSpec == nil {
			return fmt.Errorf("docker: %s: no previous spec to roll back to: %w", op, driver.ErrNotFound)
		}
		resp, err := d.cli.ServiceUpdate(ctx, svc.ID, svc.Version, svc.Spec,
			swarm.ServiceUpdateOptions{Rollback: "previous", QueryRegistry: false})
		if err == nil {
			d.log.InfoContext(ctx, "service rollback requested", "service", service,
				"from", svc.Spec.Labels[LabelVersion], "to", svc.PreviousSpec.Labels[LabelVersion],
				"warnings", resp.Warnings)
		}
		return err
	})
}

// Rollout reports the state of the service's last rolling update (or rollback) as
// Swarm reports it.
func (d *Driver) Rollout(ctx context.Context, service string) (driver.RolloutStatus, error) {
	ctx, cancel, err := d.begin(ctx)
	if err != nil {
		return driver.RolloutStatus{}, err
	}
	defer cancel()
	svc, _, err := d.cli.ServiceInspectWithRaw(ctx, service, swarm.ServiceInspectOptions{})
	if err != nil {
		return driver.RolloutStatus{}, d.wrap("rollout of service "+service, err)
	}
	st := driver.RolloutStatus{Version: svc.Spec.Labels[LabelVersion]}
	if u := svc.UpdateStatus; u != nil {
		st.State = driver.RolloutState(u.State)
		st.Message = u.Message
		if u.StartedAt != nil {
			st.StartedAt = *u.StartedAt
		}
		if u.CompletedAt != nil {
			st.UpdatedAt = *u.CompletedAt
		}
	}
	if st.UpdatedAt.IsZero() {
		st.UpdatedAt = svc.UpdatedAt
	}
	return st, nil
}

// Remove removes the service; Swarm then stops its instances. It returns
// driver.ErrNotFound for an unknown service.
func (d *Driver) Remove(ctx context.Context, service string) error {
	ctx, cancel, err := d.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	err = d.cli.ServiceRemove(ctx, service)
	d.count(ctx, err)
	if err != nil {
		return d.wrap("remove service "+service, err)
	}
	d.log.InfoContext(ctx, "service removed", "service", service)
	return nil
}

// Services lists the names of the services the driver manages.
func (d *Driver) Services(ctx context.Context) ([]string, error) {
	ctx, cancel, err := d.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	svcs, err := d.managed(ctx)
	if err != nil {
		return nil, d.wrap("list services", err)
	}
	names := make([]string, 0, len(svcs))
	for _, s := range svcs {
		names = append(names, s.Spec.Name)
	}
	return names, nil
}

func (d *Driver) managed(ctx context.Context) ([]swarm.Service, error) {
	return d.cli.ServiceList(ctx, swarm.ServiceListOptions{
		Filters: filters.NewArgs(filters.Arg("label", LabelManaged+"=true")),
	})
}

// update re-reads the service, lets mutate change its spec, and writes it with the
// version it read, retrying when Swarm refuses a stale version. A mutation that
// changes nothing writes nothing.
func (d *Driver) update(ctx context.Context, op, service string, opts swarm.ServiceUpdateOptions, mutate func(*swarm.ServiceSpec) error) error {
	opts.QueryRegistry = false
	return d.writeRetry(ctx, op, func() error {
		svc, _, err := d.cli.ServiceInspectWithRaw(ctx, service, swarm.ServiceInspectOptions{})
		if err != nil {
			return err
		}
		before := svc.Spec
		spec := deepCopySpec(svc.Spec)
		if err := mutate(&spec); err != nil {
			return permanent{err}
		}
		if reflect.DeepEqual(before, spec) {
			d.log.DebugContext(ctx, "service unchanged", "service", service, "op", op)
			return nil
		}
		resp, err := d.cli.ServiceUpdate(ctx, svc.ID, svc.Version, spec, opts)
		if err == nil {
			d.log.InfoContext(ctx, "service updated", "service", service, "op", op,
				"version", spec.Labels[LabelVersion], "index", svc.Version.Index, "warnings", resp.Warnings)
		}
		return err
	})
}

// permanent marks an error of the driver's own making inside writeRetry.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }

// writeRetry runs write up to WriteAttempts times while Swarm refuses it as stale.
func (d *Driver) writeRetry(ctx context.Context, op string, write func() error) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = write()
		var p permanent
		if errors.As(err, &p) {
			d.count(ctx, p.err)
			return p.err
		}
		if !isStale(err) || attempt >= d.cfg.WriteAttempts {
			break
		}
		d.retries.Add(ctx, 1)
		d.log.InfoContext(ctx, "stale version index; re-reading", "op", op, "attempt", attempt)
		if serr := sleepCtx(ctx, time.Duration(attempt)*50*time.Millisecond); serr != nil {
			break
		}
	}
	d.count(ctx, err)
	if err != nil {
		var de *EngineError
		if errors.As(err, &de) || errors.Is(err, driver.ErrNotFound) {
			return err
		}
		return d.wrap(op, err)
	}
	return nil
}

func (d *Driver) validate(spec driver.ServiceSpec) error {
	switch {
	case spec.Name == "":
		return errors.New("docker: ServiceSpec.Name: empty")
	case spec.Image == "":
		return fmt.Errorf("docker: service %s: ServiceSpec.Image: empty", spec.Name)
	case spec.BasePort <= 0 || spec.BasePort > 65535:
		return fmt.Errorf("docker: service %s: ServiceSpec.BasePort %d: instances use host networking and need a port per replica slot", spec.Name, spec.BasePort)
	}
	for _, a := range spec.Command {
		for _, ph := range []string{"{port}", "{id}", "{node}"} {
			if strings.Contains(a, ph) {
				return fmt.Errorf("docker: service %s: ServiceSpec.Command: placeholder %s differs per instance and Swarm expands templates only in the environment; read $PORT, $INSTANCE_ID or $NODE instead: %w",
					spec.Name, ph, driver.ErrUnsupported)
			}
		}
	}
	for _, p := range []driver.UpdatePolicy{spec.Update, spec.Rollback} {
		switch p.FailureAction {
		case "", "rollback", "pause", "continue":
		default:
			return fmt.Errorf("docker: service %s: UpdatePolicy.FailureAction %q: want rollback, pause or continue", spec.Name, p.FailureAction)
		}
		if p.MaxFailureRatio < 0 || p.MaxFailureRatio > 1 {
			return fmt.Errorf("docker: service %s: UpdatePolicy.MaxFailureRatio %v: want 0..1", spec.Name, p.MaxFailureRatio)
		}
	}
	return nil
}

// fill writes the fields the driver manages into s, leaving everything else (and what
// Swarm filled in) as it is, so that an unchanged spec compares equal.
func (d *Driver) fill(s *swarm.ServiceSpec, spec driver.ServiceSpec, create bool) error {
	s.Name = spec.Name
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	s.Labels[LabelManaged] = "true"
	s.Labels[LabelVersion] = spec.Version
	s.Labels[LabelBasePort] = strconv.Itoa(spec.BasePort)

	if s.Mode.Replicated == nil && s.Mode.Global == nil {
		s.Mode.Replicated = &swarm.ReplicatedService{}
	}
	if s.Mode.Replicated == nil {
		return fmt.Errorf("docker: service %s: not a replicated service: %w", spec.Name, driver.ErrUnsupported)
	}
	replicas := spec.Replicas
	if replicas <= 0 {
		if create || s.Mode.Replicated.Replicas == nil {
			replicas = 1
		} else {
			replicas = int(*s.Mode.Replicated.Replicas)
		}
	}
	n := uint64(replicas)
	s.Mode.Replicated.Replicas = &n
	if create {
		// Replace any port labels: a new service starts its own port range.
		for k := range s.Labels {
			if strings.HasPrefix(k, LabelPortPrefix) {
				delete(s.Labels, k)
			}
		}
	}
	if err := setPortLabels(s, replicas); err != nil {
		return err
	}

	t := &s.TaskTemplate
	if t.ContainerSpec == nil {
		t.ContainerSpec = &swarm.ContainerSpec{}
	}
	c := t.ContainerSpec
	c.Image = spec.Image
	c.Command = nil
	if len(spec.Command) > 0 {
		c.Command = make([]string, len(spec.Command))
		for i, a := range spec.Command {
			a = strings.ReplaceAll(a, "{version}", spec.Version)
			c.Command[i] = strings.ReplaceAll(a, "{service}", spec.Name)
		}
	}
	c.Env = instanceEnv(spec)
	if c.Labels == nil {
		c.Labels = map[string]string{}
	}
	c.Labels[LabelManaged] = "true"
	c.Labels[LabelVersion] = spec.Version
	c.Labels[LabelBasePort] = strconv.Itoa(spec.BasePort)
	grace := d.cfg.StopGrace
	c.StopGracePeriod = &grace
	c.Healthcheck = nil
	if h := spec.Health; h.Path != "" {
		test := []string{"CMD"}
		for _, a := range d.cfg.ProbeCommand {
			test = append(test, strings.ReplaceAll(a, "{path}", h.Path))
		}
		c.Healthcheck = &container.HealthConfig{
			Test:     test,
			Interval: max(orDefault(h.Interval, time.Second), d.cfg.CheckInterval),
			// The engine's check runs a command inside the container (an exec), far
			// slower than the agent's own HTTP probe on a loaded host: a probe timeout
			// of a few hundred milliseconds, right for the agent, made Swarm kill
			// healthy tasks during a rolling update. Never below minCheckTimeout.
			Timeout: max(orDefault(h.Timeout, 2*time.Second), orDefault(d.cfg.CheckTimeout, minCheckTimeout)),
			Retries: max(h.Retries, 0),
		}
		if c.Healthcheck.Retries == 0 {
			c.Healthcheck.Retries = 3
		}
		c.Healthcheck.Retries = max(c.Healthcheck.Retries, d.cfg.CheckRetries)
		c.Healthcheck.StartPeriod = d.cfg.HealthStartPeriod
	}

	delay := d.cfg.RestartDelay
	t.RestartPolicy = &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny, Delay: &delay}
	if create || len(t.Networks) == 0 {
		t.Networks = []swarm.NetworkAttachmentConfig{{Target: "host"}}
	}
	s.UpdateConfig = updateConfig(spec.Update)
	rb := spec.Rollback
	if rb == (driver.UpdatePolicy{}) {
		rb = spec.Update
	}
	s.RollbackConfig = updateConfig(rb)
	// A rollback that fails can only pause; "rollback" is not an action of a rollback.
	if s.RollbackConfig.FailureAction == swarm.UpdateFailureActionRollback {
		s.RollbackConfig.FailureAction = swarm.UpdateFailureActionPause
	}
	s.Labels[LabelUpdateParallelism] = strconv.FormatUint(s.UpdateConfig.Parallelism, 10)
	s.Labels[LabelRollbackParallelism] = strconv.FormatUint(s.RollbackConfig.Parallelism, 10)
	capParallelism(s, replicas)
	return nil
}

// capParallelism keeps an update or a rollback from stopping every task at once.
// Updates are stop-first (host networking, one port per slot: the old task must free
// its port), so a batch as large as the service would take it down whole: with 3
// replicas and parallelism 3 no task would serve until the new ones are healthy. The
// parallelism the spec asked for stays in the labels, and Swarm gets at most
// replicas-1 (at least 1); Scale recomputes it, so a service scaled back up gets its
// full parallelism again.
func capParallelism(s *swarm.ServiceSpec, replicas int) {
	limit := uint64(max(1, replicas-1))
	for _, c := range []struct {
		cfg   *swarm.UpdateConfig
		label string
	}{{s.UpdateConfig, LabelUpdateParallelism}, {s.RollbackConfig, LabelRollbackParallelism}} {
		if c.cfg == nil {
			continue
		}
		want, err := strconv.ParseUint(s.Labels[c.label], 10, 64)
		if err != nil || want == 0 {
			want = max(c.cfg.Parallelism, 1)
		}
		c.cfg.Parallelism = min(want, limit)
	}
}

// setPortLabels makes sure slots 1..replicas have port labels. Labels of higher slots
// stay: Swarm may keep a higher slot when it scales in, and reuses low slots first.
func setPortLabels(s *swarm.ServiceSpec, replicas int) error {
	base, err := strconv.Atoi(s.Labels[LabelBasePort])
	if err != nil || base <= 0 {
		return fmt.Errorf("docker: service %s has no %s label: it was not created by this driver: %w",
			s.Name, LabelBasePort, driver.ErrUnsupported)
	}
	if base+replicas-1 > 65535 {
		return fmt.Errorf("docker: service %s: %d replicas from port %d run past port 65535", s.Name, replicas, base)
	}
	for slot := 1; slot <= replicas; slot++ {
		s.Labels[LabelPortPrefix+strconv.Itoa(slot)] = strconv.Itoa(base + slot - 1)
	}
	return nil
}

// instanceEnv is the environment of every task: the spec's, then the driver's, with
// PORT looked up per slot in the service's port labels by a Swarm template.
func instanceEnv(spec driver.ServiceSpec) []string {
	env := make([]string, 0, len(spec.Env)+7)
	env = append(env, spec.Env...)
	return append(env,
		`PORT={{index .Service.Labels (printf "`+LabelPortPrefix+`%s" .Task.Slot)}}`,
		"SLOT={{.Task.Slot}}",
		"INSTANCE_ID={{.Task.ID}}",
		"NODE={{.Node.Hostname}}",
		"SERVICE={{.Service.Name}}",
		"VERSION="+spec.Version,
		"BASE_PORT="+strconv.Itoa(spec.BasePort),
	)
}

func updateConfig(p driver.UpdatePolicy) *swarm.UpdateConfig {
	u := &swarm.UpdateConfig{
		Parallelism:     uint64(max(p.Parallelism, 1)),
		Delay:           max(p.Delay, 0),
		Monitor:         orDefault(p.Monitor, 5*time.Second),
		FailureAction:   p.FailureAction,
		MaxFailureRatio: float32(p.MaxFailureRatio),
		// Host networking and one port per slot: the old instance must free the port
		// before the new one binds it.
		Order: swarm.UpdateOrderStopFirst,
	}
	if u.FailureAction == "" {
		u.FailureAction = swarm.UpdateFailureActionRollback
	}
	return u
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// deepCopySpec copies the parts of a spec the driver mutates, so that the spec read
// from the engine stays intact for the comparison.
func deepCopySpec(s swarm.ServiceSpec) swarm.ServiceSpec {
	c := s
	c.Labels = cloneMap(s.Labels)
	if s.UpdateConfig != nil {
		u := *s.UpdateConfig
		c.UpdateConfig = &u
	}
	if s.RollbackConfig != nil {
		r := *s.RollbackConfig
		c.RollbackConfig = &r
	}
	if s.Mode.Replicated != nil {
		r := *s.Mode.Replicated
		if r.Replicas != nil {
			n := *r.Replicas
			r.Replicas = &n
		}
		c.Mode.Replicated = &r
	}
	if s.TaskTemplate.ContainerSpec != nil {
		cs := *s.TaskTemplate.ContainerSpec
		cs.Labels = cloneMap(cs.Labels)
		cs.Env = append([]string(nil), cs.Env...)
		cs.Command = append([]string(nil), cs.Command...)
		if len(s.TaskTemplate.ContainerSpec.Env) == 0 {
			cs.Env = s.TaskTemplate.ContainerSpec.Env
		}
		if len(s.TaskTemplate.ContainerSpec.Command) == 0 {
			cs.Command = s.TaskTemplate.ContainerSpec.Command
		}
		if h := s.TaskTemplate.ContainerSpec.Healthcheck; h != nil {
			hc := *h
			hc.Test = append([]string(nil), h.Test...)
			cs.Healthcheck = &hc
		}
		c.TaskTemplate.ContainerSpec = &cs
	}
	if s.TaskTemplate.RestartPolicy != nil {
		rp := *s.TaskTemplate.RestartPolicy
		c.TaskTemplate.RestartPolicy = &rp
	}
	c.TaskTemplate.Networks = append([]swarm.NetworkAttachmentConfig(nil), s.TaskTemplate.Networks...)
	if len(s.TaskTemplate.Networks) == 0 {
		c.TaskTemplate.Networks = s.TaskTemplate.Networks
	}
	if s.UpdateConfig != nil {
		u := *s.UpdateConfig
		c.UpdateConfig = &u
	}
	if s.RollbackConfig != nil {
		u := *s.RollbackConfig
		c.RollbackConfig = &u
	}
	return c
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
