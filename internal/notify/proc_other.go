//go:build !unix

package notify

import "os/exec"

func killGroup(cmd *exec.Cmd) {}
