package awsfake_test

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

func TestSecretsManager(t *testing.T) {
	srv, cfg := envConfig(t)
	c := secretsmanager.NewFromConfig(cfg)
	ctx := context.Background()

	created, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("thing/dev-1"), SecretString: aws.String(`{"k":"v1"}`), KmsKeyId: aws.String("alias/dev"),
	})
	if err != nil {
		t.Fatalf("CreateSecret() error = %v", err)
	}
	arnRE := regexp.MustCompile(`^arn:aws:secretsmanager:us-east-1:123456789012:secret:thing/dev-1-[a-zA-Z0-9]{6}$`)
	if !arnRE.MatchString(aws.ToString(created.ARN)) {
		t.Errorf("CreateSecret().ARN = %s, want match %s", aws.ToString(created.ARN), arnRE)
	}
	var exists *types.ResourceExistsException
	if _, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("thing/dev-1"), SecretString: aws.String("x")}); !errors.As(err, &exists) {
		t.Errorf("CreateSecret(existing) error = %v, want ResourceExistsException", err)
	}

	for _, id := range []string{"thing/dev-1", aws.ToString(created.ARN)} {
		got, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
		if err != nil || aws.ToString(got.SecretString) != `{"k":"v1"}` || !slices.Equal(got.VersionStages, []string{"AWSCURRENT"}) {
			t.Errorf("GetSecretValue(%s) = %+v, %v, want v1 AWSCURRENT", id, got, err)
		}
	}

	token := "00000000-0000-4000-8000-000000000001"
	put := &secretsmanager.PutSecretValueInput{SecretId: aws.String("thing/dev-1"), SecretString: aws.String(`{"k":"v2"}`), ClientRequestToken: aws.String(token)}
	for i := range 2 {
		out, err := c.PutSecretValue(ctx, put)
		if err != nil || aws.ToString(out.VersionId) != token {
			t.Fatalf("PutSecretValue(#%d) = %+v, %v, want version %s", i, out, err, token)
		}
	}
	if s, _ := srv.Secrets.Secret("thing/dev-1"); len(s.VersionIDs) != 2 || s.String != `{"k":"v2"}` || s.KmsKeyID != "alias/dev" {
		t.Errorf("Secret() after an idempotent retry = %+v, want 2 versions, current v2", s)
	}
	put.SecretString = aws.String("different")
	if _, err := c.PutSecretValue(ctx, put); !errors.As(err, &exists) {
		t.Errorf("PutSecretValue(same token, other value) error = %v, want ResourceExistsException", err)
	}
	prev, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: created.ARN, VersionStage: aws.String("AWSPREVIOUS")})
	if err != nil || aws.ToString(prev.SecretString) != `{"k":"v1"}` {
		t.Errorf("GetSecretValue(AWSPREVIOUS) = %+v, %v, want v1", prev, err)
	}

	if _, err := c.UpdateSecret(ctx, &secretsmanager.UpdateSecretInput{SecretId: aws.String("thing/dev-1"), Description: aws.String("desc")}); err != nil {
		t.Fatalf("UpdateSecret() error = %v", err)
	}
	d, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("thing/dev-1")})
	if err != nil || aws.ToString(d.Description) != "desc" || aws.ToString(d.KmsKeyId) != "alias/dev" || len(d.VersionIdsToStages) != 2 ||
		!slices.Equal(d.VersionIdsToStages[token], []string{"AWSCURRENT"}) {
		t.Errorf("DescribeSecret() = %+v, %v", d, err)
	}

	arn := srv.Secrets.Put("direct", "value")
	if got, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)}); err != nil || aws.ToString(got.SecretString) != "value" {
		t.Errorf("GetSecretValue(Put) = %+v, %v, want value", got, err)
	}

	if _, err := c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("thing/dev-1"), RecoveryWindowInDays: aws.Int64(7)}); err != nil {
		t.Fatalf("DeleteSecret() error = %v", err)
	}
	var invalid *types.InvalidRequestException
	if _, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("thing/dev-1")}); !errors.As(err, &invalid) {
		t.Errorf("GetSecretValue(deleted) error = %v, want InvalidRequestException", err)
	}
	if _, err := c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("direct"), ForceDeleteWithoutRecovery: aws.Bool(true)}); err != nil {
		t.Fatalf("DeleteSecret(force) error = %v", err)
	}
	var nf *types.ResourceNotFoundException
	if _, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("direct")}); !errors.As(err, &nf) {
		t.Errorf("GetSecretValue(force deleted) error = %v, want ResourceNotFoundException", err)
	}
	var param *types.InvalidParameterException
	if _, err := c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("x"), RecoveryWindowInDays: aws.Int64(7), ForceDeleteWithoutRecovery: aws.Bool(true)}); !errors.As(err, &param) {
		t.Errorf("DeleteSecret(both options) error = %v, want InvalidParameterException", err)
	}
}

func TestUpdateSecretVersionStage(t *testing.T) {
	_, cfg := envConfig(t)
	c := secretsmanager.NewFromConfig(cfg)
	ctx := context.Background()
	out, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("cas"), SecretString: aws.String("v1")})
	if err != nil {
		t.Fatal(err)
	}
	v1 := aws.ToString(out.VersionId)
	pending := func(value string) string {
		t.Helper()
		p, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("cas"), SecretString: aws.String(value), VersionStages: []string{"AWSPENDING"}})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(p.VersionId)
	}
	current := func() string {
		t.Helper()
		g, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("cas")})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(g.SecretString)
	}
	a, b := pending("a"), pending("b")
	if got := current(); got != "v1" {
		t.Errorf("AWSCURRENT after AWSPENDING writes = %q, want v1", got)
	}
	move := func(to, from string) error {
		in := &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String("cas"), VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(to)}
		if from != "" {
			in.RemoveFromVersionId = aws.String(from)
		}
		_, err := c.UpdateSecretVersionStage(ctx, in)
		return err
	}
	if err := move(a, v1); err != nil {
		t.Fatalf("move AWSCURRENT v1 → a: %v", err)
	}
	var invalid *types.InvalidParameterException
	if err := move(b, v1); !errors.As(err, &invalid) {
		t.Errorf("move AWSCURRENT from v1, which no longer has it: error = %v, want InvalidParameterException", err)
	}
	if err := move(b, ""); !errors.As(err, &invalid) {
		t.Errorf("move AWSCURRENT without RemoveFromVersionId: error = %v, want InvalidParameterException", err)
	}
	if got := current(); got != "a" {
		t.Errorf("AWSCURRENT = %q, want a", got)
	}
	prev, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("cas"), VersionStage: aws.String("AWSPREVIOUS")})
	if err != nil || aws.ToString(prev.VersionId) != v1 {
		t.Errorf("AWSPREVIOUS = %v, %v; want version %s", prev, err, v1)
	}
	if _, err := c.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String("cas"), VersionStage: aws.String("AWSPENDING"), RemoveFromVersionId: aws.String(b)}); err != nil {
		t.Errorf("remove AWSPENDING from b: %v", err)
	}
	if _, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("cas"), VersionStage: aws.String("AWSPENDING")}); err == nil {
		t.Error("AWSPENDING still attached after its removal")
	}
}
