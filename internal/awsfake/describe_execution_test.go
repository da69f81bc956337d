package awsfake_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
)

// DescribeExecution reports RUNNING until the test ends the run with Finish, and typed errors for an unknown or
// malformed execution ARN.
func TestDescribeExecution(t *testing.T) {
	srv, cfg := envConfig(t)
	ctx := context.Background()
	c := sfn.NewFromConfig(cfg)
	start, err := c.StartExecution(ctx, &sfn.StartExecutionInput{
		StateMachineArn: aws.String("arn:aws:states:us-east-1:123456789012:stateMachine:CertRotation-Workflow"),
		Name:            aws.String("rotate-now-i-0123456789abcdef0-1"), Input: aws.String(`{"hostIDs":["i-0123456789abcdef0"]}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: start.ExecutionArn})
	if err != nil || d.Status != sfntypes.ExecutionStatusRunning || aws.ToString(d.Input) != `{"hostIDs":["i-0123456789abcdef0"]}` {
		t.Fatalf("DescribeExecution() = %+v, %v; want RUNNING with the input", d, err)
	}
	if !srv.SFN.Finish(aws.ToString(start.ExecutionArn), "SUCCEEDED", `{"ok":true}`) {
		t.Fatal("Finish() did not find the execution")
	}
	d, err = c.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: start.ExecutionArn})
	if err != nil || d.Status != sfntypes.ExecutionStatusSucceeded || aws.ToString(d.Output) != `{"ok":true}` {
		t.Errorf("DescribeExecution() after Finish = %+v, %v; want SUCCEEDED with the output", d, err)
	}
	_, err = c.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String("arn:aws:states:us-east-1:123456789012:execution:CertRotation-Workflow:nope")})
	var missing *sfntypes.ExecutionDoesNotExist
	if !errors.As(err, &missing) {
		t.Errorf("unknown execution: %v, want ExecutionDoesNotExist", err)
	}
	_, err = c.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String("not-an-arn")})
	var bad *sfntypes.InvalidArn
	if !errors.As(err, &bad) {
		t.Errorf("malformed ARN: %v, want InvalidArn", err)
	}
	if srv.SFN.Finish("arn:aws:states:us-east-1:123456789012:execution:CertRotation-Workflow:nope", "FAILED", "") {
		t.Error("Finish() of an unknown execution reported success")
	}
}
