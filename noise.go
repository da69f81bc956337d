package main

import (
	"bytes"
	"io"
	"os"
)

// jsiiExitRace is what jsii-runtime-go prints, without a newline, when its two waits for the Node process race at exit
// (the exit status stays 0). It is not ours and means nothing to a user.
const jsiiExitRace = "Runtime process exited abnormally: waitid: no child processes"

// filterStderr sends everything written to os.Stderr from now on (our messages, and Node's output that jsii forwards)
// through a filter that drops jsiiExitRace and the bare source positions of jsii's bundled runtime, and gives every
// line its newline. The returned function ends the filter: later writes to os.Stderr are discarded, and it returns once
// everything before was written out.
func filterStderr() (end func()) {
	real := os.Stderr
	r, w, err := os.Pipe()
	if err != nil {
		return func() {}
	}
	os.Stderr = w
	done := make(chan struct{})
	go func() {
		copyFiltered(real, r)
		close(done)
	}()
	return func() {
		w.Close()
		<-done
	}
}

// copyFiltered copies src to dst line by line, without the lines that are noise; a last line gets its newline.
func copyFiltered(dst io.Writer, src io.Reader) {
	var pending []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		pending = append(pending, buf[:n]...)
		for {
			i := bytes.IndexByte(pending, '\n')
			if i < 0 {
				break
			}
			writeLine(dst, pending[:i])
			pending = pending[i+1:]
		}
		if err != nil {
			if len(pending) > 0 {
				writeLine(dst, pending)
			}
			return
		}
	}
}

func writeLine(dst io.Writer, line []byte) {
	line = bytes.ReplaceAll(line, []byte(jsiiExitRace), nil)
	if len(bytes.TrimSpace(line)) == 0 || isRuntimePosition(line) {
		return
	}
	dst.Write(append(line, '\n'))
}

// isRuntimePosition reports a line that is only a source position inside jsii's bundled runtime, such as
// "../jsii-runtime.123/lib/program.js:1:5565", which Node prints above an error the app already explains.
func isRuntimePosition(line []byte) bool {
	s := bytes.TrimSpace(line)
	return bytes.Contains(s, []byte("jsii-runtime.")) && bytes.Contains(s, []byte("program.js:")) && !bytes.ContainsAny(s, " \t")
}
