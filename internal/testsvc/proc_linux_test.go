package testsvc

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestServerDiesWithTestProcess checks the parent-death signal: a broker started by a test process that is killed
// (so never reaches its cleanup) must not outlive it.
func TestServerDiesWithTestProcess(t *testing.T) {
	if os.Getenv("TESTSVC_ORPHAN_CHILD") == "1" {
		orphanChild(t)
		return
	}
	if _, err := mosquittoBinary(); err != nil {
		Require(t, "mosquitto", mosquittoHint)
	}
	child := exec.Command(os.Args[0], "-test.run=^TestServerDiesWithTestProcess$", "-test.v")
	child.Env = append(os.Environ(), "TESTSVC_ORPHAN_CHILD=1")
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = child.Process.Kill()
		_ = child.Wait()
	}()

	pid := 0
	var seen bytes.Buffer
	lines := bufio.NewScanner(stdout)
	for pid == 0 && lines.Scan() {
		seen.WriteString(lines.Text() + "\n")
		if _, after, ok := strings.Cut(lines.Text(), "BROKER_PID="); ok {
			pid, _ = strconv.Atoi(strings.TrimSpace(after))
		}
	}
	if pid == 0 {
		t.Fatalf("child test printed no broker pid:\n%s", seen.String())
	}
	if !alive(pid) {
		t.Fatalf("broker %d is not running while the child test runs", pid)
	}

	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = killPid(pid)
			t.Fatalf("broker %d still runs 5s after its test process was killed, want it gone", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// orphanChild starts a broker, reports its pid and waits to be killed.
func orphanChild(t *testing.T) {
	ca, err := newTestCA("orphan client CA")
	if err != nil {
		t.Fatal(err)
	}
	b := Mosquitto(t, MosquittoOptions{ClientCAPEM: ca.pem})
	fmt.Printf("BROKER_PID=%d\n", b.proc.cmd.Process.Pid)
	time.Sleep(30 * time.Second) // killed by the parent long before this
}

// alive reports whether pid is a running process (a zombie waiting to be reaped counts as gone).
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name: "pid (comm) S ...".
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || (stat[i+2] != 'Z' && stat[i+2] != 'X')
}

func killPid(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}
