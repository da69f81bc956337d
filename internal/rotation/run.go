package rotation

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// RunResult is what a document run on a host produced.
type RunResult struct {
	Stdout, Stderr string
	ExitCode       int
}

// RunOnHost runs doc with params the way SSM Agent does on a Linux host: Render checks the parameters against their
// allowedPattern and makes them SSM_<name> environment variables, the script is written to an executable
// _script.sh in a directory of its own under workDir and started as the agent's aws:runShellScript plugin starts it,
// `sh -c <path>` (so its #!/bin/bash line chooses the shell), with that environment (plus hostEnv, e.g. PATH). The tests of the host scripts and awsfake's SSM hosts
// both run documents through this function. An error means the script could not be started or the parameters were
// refused; a script that fails is a RunResult with a non-zero ExitCode.
func RunOnHost(ctx context.Context, doc Document, params map[string]string, workDir string, hostEnv []string) (RunResult, error) {
	script, env, err := Render(doc, params)
	if err != nil {
		return RunResult{}, err
	}
	dir, err := os.MkdirTemp(workDir, "ssm-command-")
	if err != nil {
		return RunResult{}, fmt.Errorf("make command directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	path := filepath.Join(dir, "_script.sh")
	if err := os.WriteFile(path, []byte(script), 0o700); err != nil {
		return RunResult{}, fmt.Errorf("write script: %w", err)
	}
	cmd := exec.CommandContext(ctx, "sh", "-c", path)
	cmd.Dir = dir
	cmd.Env = append(append([]string{}, hostEnv...), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	res := RunResult{Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.ExitCode = exit.ExitCode()
		if res.ExitCode < 0 { // killed by a signal
			res.ExitCode = 137
		}
	default:
		return res, fmt.Errorf("run script: %w", err)
	}
	return res, nil
}
