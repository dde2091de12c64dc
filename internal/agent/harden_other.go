//go:build !linux

package agent

// harden is Linux-only for now (prctl); elsewhere core dumps follow the
// system's limits.
func harden() error { return nil }
