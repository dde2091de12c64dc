//go:build !unix

package shell

import "os/exec"

func killGroup(cmd *exec.Cmd) {}
