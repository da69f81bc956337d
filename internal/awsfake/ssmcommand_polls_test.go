package awsfake_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/iotcert/iotcert/internal/awsfake"
)

// A PollDriven host's command lasts a number of GetCommandInvocation calls, not wall-clock time: InProgress for the
// first InProgressReads calls even when the script has ended, then the result, waited for when the script is still
// running. A workflow polling it sees the same answers under any machine load.
func TestSSMCommandsPollDriven(t *testing.T) {
	srv, cfg := envConfig(t)
	c := ssm.NewFromConfig(cfg)
	ctx := context.Background()
	srv.Commands.PutDocument("Echo", echoDoc())
	srv.Commands.AddHost("i-01234567", awsfake.SSMHost{WorkDir: t.TempDir(), Env: []string{"PATH=/usr/bin:/bin"}, PollDriven: true, InProgressReads: 2})
	srv.Commands.AddHost("i-76543210", awsfake.SSMHost{WorkDir: t.TempDir(), Env: []string{"PATH=/usr/bin:/bin"}, PollDriven: true})
	send := func(host string) string {
		t.Helper()
		out, err := c.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String("Echo"), InstanceIds: []string{host},
			Parameters: map[string][]string{"Word": {"hello"}}, TimeoutSeconds: aws.Int32(60)})
		if err != nil {
			t.Fatal(err)
		}
		return *out.Command.CommandId
	}
	read := func(id, host string) *ssm.GetCommandInvocationOutput {
		t.Helper()
		out, err := c.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{CommandId: aws.String(id), InstanceId: aws.String(host)})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	id := send("i-01234567")
	srv.Commands.Wait() // the script has ended: the host still answers by poll count
	for i := range 2 {
		if out := read(id, "i-01234567"); out.Status != ssmtypes.CommandInvocationStatusInProgress {
			t.Errorf("read %d = %s, want InProgress", i+1, out.Status)
		}
	}
	if out := read(id, "i-01234567"); out.Status != ssmtypes.CommandInvocationStatusSuccess || *out.StandardOutputContent != "word=hello\n" {
		t.Errorf("read 3 = %s %q, want Success with the output", out.Status, *out.StandardOutputContent)
	}
	// No InProgress reads: the first read, right after SendCommand, waits for the script.
	id = send("i-76543210")
	if out := read(id, "i-76543210"); out.Status != ssmtypes.CommandInvocationStatusSuccess || *out.StandardOutputContent != "word=hello\n" {
		t.Errorf("first read = %s %q, want Success with the output", out.Status, *out.StandardOutputContent)
	}
}
