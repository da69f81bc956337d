package stacks

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/iotcert/iotcert/internal/devrot/wire"
)

// The device-rotation stack of the default platform (the platform synth the multi-region tests share; cdk-nag is
// TestEveryStackInAnyEnvironment's and TestMultiRegionNagClean's, without a Private CA).
func TestDeviceRotationStack(t *testing.T) {
	tpl := mrDefault().stack(t, DeviceRotationStackName)
	check(t, "job template with rollout, abort and timeout", func() {
		tpl.HasResourceProperties(jsii.String("AWS::IoT::JobTemplate"), map[string]interface{}{
			"JobTemplateId":              wire.TemplateID,
			"Document":                   wire.JobDocumentJSON(),
			"JobExecutionsRolloutConfig": map[string]interface{}{"MaximumPerMinute": DefaultDevRotRolloutPerMinute},
			"AbortConfig": map[string]interface{}{"CriteriaList": []interface{}{map[string]interface{}{
				"Action": "CANCEL", "FailureType": "ALL", "MinNumberOfExecutedThings": DefaultDevRotAbortMinExecuted,
				"ThresholdPercentage": DefaultDevRotAbortPercent,
			}}},
			"TimeoutConfig": map[string]interface{}{"InProgressTimeoutInMinutes": DefaultDevRotTimeoutMinutes},
		})
	})
	for _, sql := range []string{wire.CSRRuleSQL, wire.ConfirmRuleSQL, wire.JobEventsRuleSQL} {
		check(t, "rule "+sql, func() {
			tpl.HasResourceProperties(jsii.String("AWS::IoT::TopicRule"), map[string]interface{}{
				"TopicRulePayload": assertions.Match_ObjectLike(&map[string]interface{}{"Sql": sql}),
			})
		})
	}
	if !strings.Contains(wire.CSRRuleSQL, "principal() AS principal") || !strings.Contains(wire.ConfirmRuleSQL, "principal() AS principal") {
		t.Error("the CSR and confirm rules must capture principal()")
	}
	check(t, "the sweep runs hourly", func() {
		tpl.HasResourceProperties(jsii.String("AWS::Events::Rule"), map[string]interface{}{"ScheduleExpression": "rate(1 hour)"})
	})
	check(t, "job execution events enabled", func() {
		tpl.HasResourceProperties(jsii.String("Custom::AWS"), map[string]interface{}{
			"Create": assertions.Match_StringLikeRegexp(jsii.String("JOB_EXECUTION")),
		})
	})
	// Least privilege: no iot:* or service wildcard, no "*" resource except the actions that have no ARN.
	policies := tpl.FindResources(jsii.String("AWS::IAM::Policy"), nil)
	unscoped := map[string]bool{"iot:CreateCertificateFromCsr": true, "iot:RegisterCertificate": true, "xray:PutTraceSegments": true, "xray:PutTelemetryRecords": true, "iot:UpdateEventConfigurations": true,
		"iot:ListAuditTasks": true, "iot:DescribeAuditTask": true, "iot:ListAuditFindings": true, "iot:ListJobs": true}
	for id, res := range *policies {
		b, _ := json.Marshal(res)
		var doc struct {
			Properties struct {
				PolicyDocument struct {
					Statement []struct {
						Action   interface{}
						Resource interface{}
					}
				}
			}
		}
		_ = json.Unmarshal(b, &doc)
		for _, st := range doc.Properties.PolicyDocument.Statement {
			for _, a := range list(st.Action) {
				if strings.HasSuffix(a, ":*") || a == "*" {
					t.Errorf("%s grants %s", id, a)
				}
				for _, r := range list(st.Resource) {
					if r == "*" && !unscoped[a] {
						t.Errorf("%s grants %s on *", id, a)
					}
				}
			}
		}
	}
	check(t, "the functions know the Private CA", func() {
		tpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]interface{}{
			"Environment": map[string]interface{}{"Variables": assertions.Match_ObjectLike(&map[string]interface{}{
				"PCA_ARN": assertions.Match_AnyValue(), "CA_CERTIFICATE_ID": assertions.Match_AnyValue(), "GRACE_SECONDS": "604800",
			})},
		})
	})
}

func list(v interface{}) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []interface{}:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func TestDeviceRotationContext(t *testing.T) {
	for _, c := range []struct{ key, value, want string }{
		{ctxDevRotRollout, "0", "from 1 to 1000"},
		{ctxDevRotRollout, "1001", "from 1 to 1000"},
		{ctxDevRotTimeout, "10081", "from 1 to 10080"},
		{ctxDevRotAbortPct, "abc", ctxDevRotAbortPct},
		{ctxDevRotGrace, "0", ctxDevRotGrace},
	} {
		_, err := devRotPropsFromContext(ctxOf(map[string]string{c.key: c.value}))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s=%s: error = %v, want one naming %q", c.key, c.value, err, c.want)
		}
	}
	p, err := devRotPropsFromContext(ctxOf(map[string]string{ctxDevRotRollout: "250"}))
	if err != nil || p.RolloutPerMinute != 250 || p.GraceDays != DefaultDevRotGraceDays {
		t.Errorf("devRotPropsFromContext(rollout 250) = %+v, %v", p, err)
	}
}

// B's rotation by redeploy: certificate_generation puts Generation, GraceDays and PolicyName on the certificate, the
// function may attach a kept certificate again, and a daily schedule retires; cdk-nag stays clean.
func TestThingCertificateGeneration(t *testing.T) {
	app := newTestApp(t, nil)
	ctx := map[string]string{"thing_name": "device1234", "certificate_generation": "3"}
	for stack, findings := range nagErrors(t, app, ctx) {
		for _, f := range findings {
			t.Errorf("%s: %s", stack, f)
		}
	}
	var tpl assertions.Template
	check(t, "synth", func() {
		tpl = assertions.Template_FromStack(app.Node().FindChild(jsii.String("device1234")).(awscdk.Stack), nil)
	})
	if tpl == nil {
		return
	}
	check(t, "generation on the certificate", func() {
		tpl.HasResourceProperties(jsii.String("Custom::ThingCertificate"), map[string]interface{}{
			"Generation": "3", "GraceDays": "7", "PolicyName": assertions.Match_AnyValue(),
		})
	})
	check(t, "daily retirement", func() {
		tpl.HasResourceProperties(jsii.String("AWS::Events::Rule"), map[string]interface{}{"ScheduleExpression": "rate(1 day)"})
	})
	if _, err := readThingOptions(ctxOf(map[string]string{"certificate_grace_days": "3"})); err == nil || !strings.Contains(err.Error(), "certificate_generation") {
		t.Errorf("certificate_grace_days without a generation: error = %v", err)
	}
	if _, err := readThingOptions(ctxOf(map[string]string{"certificate_generation": "0"})); err == nil {
		t.Error("certificate_generation=0 accepted")
	}
}
