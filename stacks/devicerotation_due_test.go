package stacks

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/iotcert/iotcert/internal/devrot"
	"github.com/iotcert/iotcert/internal/devrot/wire"
)

// The due function of the device-rotation stack: its settings, its schedule with a dead-letter queue, its failure
// destination and a role that names the group, the template and the due jobs.
func TestDeviceRotationDueFunction(t *testing.T) {
	tpl := mrDefault().stack(t, DeviceRotationStackName)
	var fnID string
	for id, res := range *tpl.FindResources(jsii.String("AWS::Lambda::Function"), nil) {
		b, _ := json.Marshal(res)
		if strings.Contains(string(b), `"`+devrot.EnvAbortMin+`"`) {
			if fnID != "" {
				t.Fatalf("two functions with %s: %s and %s", devrot.EnvAbortMin, fnID, id)
			}
			fnID = id
			var fn struct {
				Properties struct {
					Environment struct{ Variables map[string]any }
				}
			}
			_ = json.Unmarshal(b, &fn)
			v := fn.Properties.Environment.Variables
			for k, want := range map[string]int{devrot.EnvRollout: DefaultDevRotRolloutPerMinute, devrot.EnvAbortPercent: DefaultDevRotAbortPercent,
				devrot.EnvAbortMin: DefaultDevRotAbortMinExecuted, devrot.EnvTimeout: DefaultDevRotTimeoutMinutes} {
				if v[k] != strconv.Itoa(want) {
					t.Errorf("%s = %v, want %d (the template's)", k, v[k], want)
				}
			}
			if _, ok := v[devrot.EnvTemplateARN]; !ok {
				t.Errorf("no %s", devrot.EnvTemplateARN)
			}
		}
	}
	if fnID == "" {
		t.Fatal("no due function")
	}
	check(t, "the schedule targets the due function with a dead-letter queue", func() {
		tpl.HasResourceProperties(jsii.String("AWS::Events::Rule"), map[string]any{
			"ScheduleExpression": "rate(" + strconv.Itoa(DueSchedule) + " hours)",
			"Targets": []any{assertions.Match_ObjectLike(&map[string]any{
				"Arn":              map[string]any{"Fn::GetAtt": []any{fnID, "Arn"}},
				"DeadLetterConfig": assertions.Match_ObjectLike(&map[string]any{"Arn": assertions.Match_AnyValue()}),
			})},
		})
	})
	check(t, "failed invocations go to a destination", func() {
		tpl.HasResourceProperties(jsii.String("AWS::Lambda::EventInvokeConfig"), map[string]any{
			"FunctionName":      map[string]any{"Ref": fnID},
			"DestinationConfig": map[string]any{"OnFailure": map[string]any{"Destination": assertions.Match_AnyValue()}},
		})
	})
	// The role: every grant names the due group, the due jobs, the template, certificates or things; "*" only for the
	// actions without resource types.
	var statements []struct {
		Action   any
		Resource any
	}
	for _, res := range *tpl.FindResources(jsii.String("AWS::IAM::Policy"), nil) {
		b, _ := json.Marshal(res)
		if !strings.Contains(string(b), "iot:ListJobs") {
			continue
		}
		var doc struct {
			Properties struct {
				PolicyDocument struct {
					Statement []struct {
						Action   any
						Resource any
					}
				}
			}
		}
		_ = json.Unmarshal(b, &doc)
		statements = append(statements, doc.Properties.PolicyDocument.Statement...)
	}
	grants := map[string]string{}
	for _, st := range statements {
		r, _ := json.Marshal(st.Resource)
		for _, a := range list(st.Action) {
			grants[a] += string(r)
		}
	}
	for action, want := range map[string][]string{
		"iot:CreateJob":              {"job/" + wire.JobIDPrefix + "due-*", "thinggroup/" + devrot.DueGroup, "RotationJobTemplate"},
		"iot:AddThingToThingGroup":   {"thinggroup/" + devrot.DueGroup, "thing/*"},
		"iot:ListThingsInThingGroup": {"thinggroup/" + devrot.DueGroup},
		"iot:DescribeCertificate":    {"cert/*"},
		"iot:ListJobs":               {`"*"`},
		"iot:ListAuditFindings":      {`"*"`},
	} {
		for _, w := range want {
			if !strings.Contains(grants[action], w) {
				t.Errorf("%s on %s, want %s among its resources", action, grants[action], w)
			}
		}
	}
	for _, a := range []string{"iot:CreateJob", "iot:AddThingToThingGroup", "iot:RemoveThingFromThingGroup", "iot:CreateThingGroup"} {
		if strings.Contains(grants[a], `"*"`) {
			t.Errorf("%s granted on *", a)
		}
	}
	if slices.ContainsFunc(statements, func(st struct {
		Action   any
		Resource any
	}) bool {
		return slices.Contains(list(st.Action), "iot:CancelJob") || slices.Contains(list(st.Action), "iot:UpdateCertificate")
	}) {
		t.Error("the due function may cancel jobs or change certificates")
	}
}
