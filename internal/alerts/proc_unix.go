//go:build unix

package alerts

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts the command in its own process group and makes the
// timeout kill the whole group, so children it forked die with it.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
