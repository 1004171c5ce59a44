package docker

import (
	"strconv"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/swarm"
)

// The agent lists instances every probe interval: mapping a task must stay cheap.
func BenchmarkInstance(b *testing.B) {
	d, err := New(Config{Host: "unix:///nonexistent.sock"})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	nodes := map[string]nodeInfo{"n1": {name: "vm", addr: "127.0.0.1"}}
	tasks := make([]swarm.Task, 12)
	for i := range tasks {
		tasks[i] = swarm.Task{ID: "t" + strconv.Itoa(i), Slot: i + 1, NodeID: "n1", DesiredState: swarm.TaskStateRunning,
			Spec:   swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Labels: map[string]string{LabelVersion: "v1", LabelBasePort: "18080"}}},
			Status: swarm.TaskStatus{State: swarm.TaskStateRunning, Timestamp: time.Now(), ContainerStatus: &swarm.ContainerStatus{PID: 42}}}
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, t := range tasks {
			if _, ok := d.instance(t, "web", nodes); !ok {
				b.Fatal("not listed")
			}
		}
	}
}

func BenchmarkTranslate(b *testing.B) {
	m := events.Message{Type: events.ContainerEventType, Action: events.ActionDie, TimeNano: 1,
		Actor: events.Actor{Attributes: map[string]string{LabelManaged: "true", "com.docker.swarm.service.name": "web",
			"com.docker.swarm.task.id": "t1", "com.docker.swarm.node.id": "n1", "exitCode": "2"}}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := translate(m); !ok {
				b.Fatal("not translated")
			}
		}
	})
}
