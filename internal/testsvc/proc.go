package testsvc

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// process is a running server started by this package.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *tailBuffer
	done chan struct{} // closed when the process has exited
	err  error         // result of Wait, set before done is closed

	stopOnce sync.Once
}

var (
	runningMu sync.Mutex
	running   = map[*process]struct{}{}
)

// startProcess starts cmd with its standard output and error captured, and registers it for StopAll.
func startProcess(name string, cmd *exec.Cmd) (*process, error) {
	p := &process{name: name, cmd: cmd, out: newTailBuffer(64 << 10), done: make(chan struct{})}
	cmd.Stdout = p.out
	cmd.Stderr = p.out
	cmd.SysProcAttr = sysProcAttr()
	cmd.WaitDelay = 2 * time.Second

	started := make(chan error, 1)
	go func() {
		// The parent-death signal fires when the forking thread exits, not when the process does, and the runtime may
		// retire idle threads. Keeping this goroutine on its thread until the child is gone ties the signal to the
		// test process instead. The goroutine ends without unlocking, so the runtime discards the thread.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	runningMu.Lock()
	running[p] = struct{}{}
	runningMu.Unlock()
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the process: SIGTERM first, SIGKILL when it has not exited within grace.
func (p *process) stop(grace time.Duration) {
	p.stopOnce.Do(func() {
		if !p.exited() {
			if grace <= 0 || p.cmd.Process.Signal(syscall.SIGTERM) != nil {
				_ = p.cmd.Process.Kill()
			}
			select {
			case <-p.done:
			case <-time.After(grace):
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
		runningMu.Lock()
		delete(running, p)
		runningMu.Unlock()
	})
}

// StopAll stops every server this package started and still runs: the shared DynamoDB Local server and any broker
// whose test has not finished. Call it from TestMain after m.Run. A later DynamoDB call starts a new server.
func StopAll() {
	stopDynamoDB()
	runningMu.Lock()
	procs := make([]*process, 0, len(running))
	for p := range running {
		procs = append(procs, p)
	}
	runningMu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.stop(5 * time.Second)
		}()
	}
	wg.Wait()
}

// freePort returns a TCP port that was free on 127.0.0.1 a moment ago. Another process can take it before the server
// binds it; callers retry with a new port when the server exits early.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	return port, nil
}

// repoRoot walks up from the working directory to the directory holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("find repository root: %w", err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find repository root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// tailBuffer keeps the last max bytes written to it; safe for concurrent use.
type tailBuffer struct {
	mu        sync.Mutex
	max       int
	buf       []byte
	truncated bool
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
		b.truncated = true
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.truncated {
		return "[...]\n" + string(b.buf)
	}
	return string(b.buf)
}
