package awsfake

import (
	"context"
	"encoding/json"
	"maps"
	"regexp"
	"sync"
	"time"

	"github.com/iotcert/iotcert/internal/rotation"
)

// SSMCommands is the Run Command part of the fake SSM: SendCommand and GetCommandInvocation over documents
// registered with PutDocument, on fake hosts registered with AddHost. A host runs the document exactly as the host
// script tests do (rotation.RunOnHost: parameters checked against allowedPattern, passed as SSM_<name>
// environment variables, the script run by bash), in the background: the invocation is InProgress until it ends.
type SSMCommands struct {
	mu       sync.Mutex
	docs     map[string]rotation.Document
	hosts    map[string]*SSMHost
	commands map[string]*ssmCommand
	order    []string
	now      func() time.Time
	wg       sync.WaitGroup
	// invisible is how many GetCommandInvocation calls of a new invocation answer InvocationDoesNotExist.
	invisible int
}

// SSMHost is a fake managed node.
type SSMHost struct {
	// WorkDir is where the agent writes its scripts (a temporary directory standing for the host).
	WorkDir string
	// Env is the agent's environment (PATH and the like); the SSM_<name> parameters are added to it.
	Env []string
	// Offline hosts never run a command: its invocation stays InProgress until its delivery timeout passes, then
	// ends TimedOut (SSM's behaviour for an agent that is down).
	Offline bool
	// PollDriven makes a command's run last InProgressReads GetCommandInvocation calls rather than wall-clock time:
	// the first InProgressReads calls of an invocation answer InProgress (whether or not the script has ended), the
	// next one waits for the script to end and answers its result. A workflow polling the host then sees the same
	// answers under any machine load; without it the invocation is InProgress for as long as the script really runs.
	PollDriven      bool
	InProgressReads int
}

// SentCommand is a SendCommand as the fake received it.
type SentCommand struct {
	CommandID    string
	DocumentName string
	InstanceID   string
	Parameters   map[string]string
	Comment      string
}

type ssmCommand struct {
	SentCommand
	sent     time.Time
	deadline time.Time
	reads    int
	polls    int           // GetCommandInvocation calls answered so far (PollDriven hosts)
	host     SSMHost       // the host as it was when the command was sent
	ended    chan struct{} // closed when the script has ended (nil on an offline host)
	done     bool
	result   rotation.RunResult
	errText  string
}

// ssmMaxOutput is how much standard output GetCommandInvocation returns.
const ssmMaxOutput = 24000

func newSSMCommands() *SSMCommands {
	return &SSMCommands{
		docs: map[string]rotation.Document{}, hosts: map[string]*SSMHost{}, commands: map[string]*ssmCommand{},
		now: time.Now,
	}
}

// PutDocument registers a Command document under name.
func (c *SSMCommands) PutDocument(name string, doc rotation.Document) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.docs[name] = doc
}

// AddHost registers a managed node.
func (c *SSMCommands) AddHost(id string, h SSMHost) {
	c.mu.Lock()
	defer c.mu.Unlock()
	hc := h
	c.hosts[id] = &hc
}

// SetNow replaces the fake's clock (delivery timeouts of offline hosts).
func (c *SSMCommands) SetNow(now func() time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = now
}

// SetInvisibleReads makes the first n GetCommandInvocation calls of each new invocation answer
// InvocationDoesNotExist, as SSM does for a moment after SendCommand.
func (c *SSMCommands) SetInvisibleReads(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.invisible = n
}

// Sent returns the commands received, oldest first.
func (c *SSMCommands) Sent() []SentCommand {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]SentCommand, 0, len(c.order))
	for _, id := range c.order {
		s := c.commands[id].SentCommand
		s.Parameters = maps.Clone(s.Parameters)
		out = append(out, s)
	}
	return out
}

// Wait blocks until every command started so far has ended.
func (c *SSMCommands) Wait() { c.wg.Wait() }

var ssmInstanceIDRE = regexp.MustCompile(rotation.HostIDPattern)

func (c *SSMCommands) handler(op string) jsonHandler {
	switch op {
	case "SendCommand":
		return c.sendCommand
	case "GetCommandInvocation":
		return c.getCommandInvocation
	}
	return nil
}

func (c *SSMCommands) sendCommand(body []byte) (any, *apiError) {
	var in struct {
		DocumentName   string
		InstanceIds    []string
		Targets        []json.RawMessage
		Parameters     map[string][]string
		Comment        string
		TimeoutSeconds *int
	}
	if e := decodeJSON(body, &in, "ValidationException"); e != nil {
		return nil, e
	}
	if len(in.Targets) > 0 {
		return nil, ssmValidation("awsfake: SendCommand with Targets is not implemented; use InstanceIds")
	}
	if len(in.InstanceIds) == 0 || len(in.InstanceIds) > 50 {
		return nil, ssmValidation("InstanceIds must hold 1 to 50 ids")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	doc, ok := c.docs[in.DocumentName]
	if !ok {
		return nil, errorf(400, "InvalidDocument", "Document %s does not exist in your account", in.DocumentName)
	}
	params := map[string]string{}
	for k, v := range in.Parameters {
		if len(v) != 1 {
			return nil, errorf(400, "InvalidParameters", "Parameter %q must have exactly one value", k)
		}
		params[k] = v[0]
	}
	if _, _, err := rotation.Render(doc, params); err != nil {
		return nil, errorf(400, "InvalidParameters", "%v", err)
	}
	for _, id := range in.InstanceIds {
		if !ssmInstanceIDRE.MatchString(id) {
			return nil, ssmValidation("Value %q at 'instanceIds' failed to satisfy constraint", id)
		}
		if _, ok := c.hosts[id]; !ok {
			return nil, errorf(400, "InvalidInstanceId", "Instances [[%s]] not in a valid state for account %s", id, AccountID)
		}
	}
	timeout := 3600
	if in.TimeoutSeconds != nil {
		if *in.TimeoutSeconds < 30 || *in.TimeoutSeconds > 2592000 {
			return nil, ssmValidation("TimeoutSeconds must be from 30 to 2592000")
		}
		timeout = *in.TimeoutSeconds
	}
	id := newUUID()
	now := c.now()
	for _, host := range in.InstanceIds {
		cmd := &ssmCommand{
			SentCommand: SentCommand{CommandID: id, DocumentName: in.DocumentName, InstanceID: host, Parameters: params, Comment: in.Comment},
			sent:        now, deadline: now.Add(time.Duration(timeout) * time.Second), host: *c.hosts[host],
		}
		c.commands[id+"/"+host] = cmd
		c.order = append(c.order, id+"/"+host)
		h := cmd.host
		if h.Offline {
			continue
		}
		cmd.ended = make(chan struct{})
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			defer close(cmd.ended)
			res, err := rotation.RunOnHost(context.Background(), doc, params, h.WorkDir, h.Env)
			c.mu.Lock()
			defer c.mu.Unlock()
			cmd.done, cmd.result = true, res
			if err != nil {
				cmd.errText = err.Error()
			}
		}()
	}
	return map[string]any{"Command": map[string]any{
		"CommandId": id, "DocumentName": in.DocumentName, "InstanceIds": in.InstanceIds, "Comment": in.Comment,
		"Status": "Pending", "RequestedDateTime": epoch(now), "TimeoutSeconds": timeout,
	}}, nil
}

func (c *SSMCommands) getCommandInvocation(body []byte) (any, *apiError) {
	var in struct{ CommandId, InstanceId, PluginName string }
	if e := decodeJSON(body, &in, "ValidationException"); e != nil {
		return nil, e
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cmd, ok := c.commands[in.CommandId+"/"+in.InstanceId]
	if ok && cmd.reads < c.invisible {
		cmd.reads++
		ok = false
	}
	if !ok {
		return nil, errorf(400, "InvocationDoesNotExist", "awsfake: no invocation of command %s on %s", in.CommandId, in.InstanceId)
	}
	inProgress := false
	if cmd.host.PollDriven && cmd.ended != nil {
		cmd.polls++
		if inProgress = cmd.polls <= cmd.host.InProgressReads; !inProgress && !cmd.done {
			c.mu.Unlock()
			<-cmd.ended
			c.mu.Lock()
		}
	}
	out := map[string]any{
		"CommandId": cmd.CommandID, "InstanceId": cmd.InstanceID, "DocumentName": cmd.DocumentName,
		"Comment": cmd.Comment, "PluginName": "aws:runShellScript",
		"StandardOutputContent": "", "StandardErrorContent": "", "ResponseCode": -1,
	}
	switch {
	case !cmd.done && c.now().After(cmd.deadline):
		out["Status"], out["StatusDetails"] = "TimedOut", "DeliveryTimedOut"
	case !cmd.done || inProgress:
		out["Status"], out["StatusDetails"] = "InProgress", "InProgress"
	case cmd.errText != "":
		out["Status"], out["StatusDetails"] = "Failed", "Failed"
		out["StandardErrorContent"] = truncate(cmd.errText, ssmMaxOutput)
	default:
		out["ResponseCode"] = cmd.result.ExitCode
		out["StandardOutputContent"] = truncate(cmd.result.Stdout, ssmMaxOutput)
		out["StandardErrorContent"] = truncate(cmd.result.Stderr, ssmMaxOutput)
		if cmd.result.ExitCode == 0 {
			out["Status"], out["StatusDetails"] = "Success", "Success"
		} else {
			out["Status"], out["StatusDetails"] = "Failed", "Failed"
		}
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
