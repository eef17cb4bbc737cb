//go:build !unix

package alerts

import "os/exec"

func setProcessGroup(*exec.Cmd) {}
