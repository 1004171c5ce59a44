package k8s

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/selfheal-go/selfheal/examples/agent/driver"
)

// A container the kubelet restarts, or restarted moments ago and does not count
// ready yet, is starting, not running or exited: the agent must not replace a pod
// the kubelet already restarts.
func TestInstanceKubeletRestart(t *testing.T) {
	now := time.Now()
	ended := func(ago time.Duration) corev1.ContainerState {
		return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2, Reason: "Error",
			FinishedAt: metav1.NewTime(now.Add(-ago))}}
	}
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(now)}}
	tests := []struct {
		name       string
		give       corev1.ContainerStatus
		want       driver.State
		wantReason string
	}{
		{"running, ready", corev1.ContainerStatus{State: running, Ready: true}, driver.StateRunning, ""},
		{"running, not ready yet, never restarted", corev1.ContainerStatus{State: running}, driver.StateRunning, ""},
		{"exited, the kubelet restarts it", corev1.ContainerStatus{State: ended(0), RestartCount: 1}, driver.StateStarting,
			"restarting (kubelet): exit status 2 (Error)"},
		{"waiting in a back-off", corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}},
			driver.StateStarting, "restarting (kubelet): CrashLoopBackOff"},
		{"restarted a second ago, not ready yet", corev1.ContainerStatus{State: running, LastTerminationState: ended(time.Second), RestartCount: 1},
			driver.StateStarting, "restarted (kubelet): exit status 2 (Error)"},
		{"restarted a second ago, ready", corev1.ContainerStatus{State: running, LastTerminationState: ended(time.Second), RestartCount: 1, Ready: true},
			driver.StateRunning, ""},
		{"restarted long ago, not ready: the agent's to judge", corev1.ContainerStatus{State: running, LastTerminationState: ended(time.Minute), RestartCount: 1},
			driver.StateRunning, ""},
	}
	d := &Driver{cfg: Config{Port: 8080}, lost: map[string]*NodeIncident{}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Labels: map[string]string{LabelService: "web"}},
				Spec: corev1.PodSpec{NodeName: "n1"},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1",
					ContainerStatuses: []corev1.ContainerStatus{tt.give}}}
			in := d.instance(p)
			assert.Equal(t, tt.want, in.State)
			assert.Equal(t, tt.wantReason, in.ExitReason)
			assert.Equal(t, "10.0.0.1:8080", in.Addr)
		})
	}
}
