package config

import "strings"

// NodePool is the node level of a swarm (docker driver; the local driver ignores it):
//
//	nodePool:
//	  guard: on        # remove a worker confirmed lost; off turns the node guard off
//	  min: 3           # ready nodes to keep: below it, run provision
//	  provision: bash .ci/docker/lab.sh add-host
//	  drainAt: 90      # drain a node reporting this % of a resource used
//	  horizon: 2m      # ... or rising to 100% within this
//
// A node reports its use of a resource in the node label selfheal.pressure.<resource>
// (percent), written by something on the host; the agent only reads it.
type NodePool struct {
	Guard            string   `yaml:"guard"`            // "on" (default) or "off"
	Min              int      `yaml:"min"`              // 0 means no provisioning
	Provision        string   `yaml:"provision"`        // shell command that adds a node; required with min
	ProvisionTimeout Duration `yaml:"provisionTimeout"` // 0 means 2m
	DrainAt          float64  `yaml:"drainAt"`          // percent; 0 means 90
	Horizon          Duration `yaml:"horizon"`          // 0 means 2m
}

func (p *NodePool) check() error {
	switch {
	case p.Guard != "" && p.Guard != "on" && p.Guard != "off":
		return bad("nodePool.guard", "must be on or off, not %q", p.Guard)
	case p.Min < 0:
		return bad("nodePool.min", "must not be negative")
	case p.Min > 0 && strings.TrimSpace(p.Provision) == "":
		return bad("nodePool.provision", "required with nodePool.min: the command that adds a node")
	case p.DrainAt < 0 || p.DrainAt > 100:
		return bad("nodePool.drainAt", "must be a percentage, not %v", p.DrainAt)
	}
	return nil
}
