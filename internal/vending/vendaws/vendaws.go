// Package vendaws holds the AWS SDK side of the certificate vending API shared by its functions and tools:
// SDK configuration, loading the configuration from SSM, and reading and writing the tokens secret.
package vendaws

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/iotcert/iotcert/internal/awsconfig"
	"github.com/iotcert/iotcert/internal/vending"
)

// LoadAWSConfig loads the app's SDK configuration (awsconfig.Load) with at most 5 s between attempts, so that a
// registration still answers within API Gateway's 29 s.
func LoadAWSConfig(ctx context.Context) (aws.Config, error) {
	return awsconfig.Load(ctx, 5*time.Second)
}

// LoadFunctionConfig is what both vending functions do at cold start: the SDK configuration, then the vending
// configuration from SSM below APP_CONFIG_PATH, validated.
func LoadFunctionConfig(ctx context.Context) (aws.Config, *vending.Config, error) {
	cfg, err := LoadAWSConfig(ctx)
	if err != nil {
		return aws.Config{}, nil, err
	}
	conf, err := LoadConfig(ctx, ssm.NewFromConfig(cfg), os.Getenv("APP_CONFIG_PATH"))
	if err != nil {
		return aws.Config{}, nil, fmt.Errorf("invalid vending configuration: %w", err)
	}
	return cfg, conf, nil
}

// SSMAPI is the part of the SSM client LoadConfig uses.
type SSMAPI interface {
	GetParametersByPath(ctx context.Context, in *ssm.GetParametersByPathInput, optFns ...func(*ssm.Options)) (*ssm.GetParametersByPathOutput, error)
}

// LoadConfig reads the parameters under path (the seed's APP_CONFIG_PATH, not recursive, all pages) and parses
// the one named appConfig.
func LoadConfig(ctx context.Context, api SSMAPI, path string) (*vending.Config, error) {
	if path == "" {
		return nil, errors.New("load vending config: APP_CONFIG_PATH is empty")
	}
	want := strings.TrimSuffix(path, "/") + "/" + vending.ConfigParameterName
	var names []string
	p := ssm.NewGetParametersByPathPaginator(api, &ssm.GetParametersByPathInput{
		Path:           aws.String(path),
		Recursive:      aws.Bool(false),
		WithDecryption: aws.Bool(true),
	})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("load vending config: get parameters by path %s: %w", path, err)
		}
		for _, prm := range out.Parameters {
			name := aws.ToString(prm.Name)
			if name != want {
				names = append(names, name)
				continue
			}
			c, err := vending.ParseConfig([]byte(aws.ToString(prm.Value)))
			if err != nil {
				return nil, fmt.Errorf("parameter %s: %w", name, err)
			}
			return c, nil
		}
	}
	return nil, fmt.Errorf("load vending config: parameter %s not found (found %d others: %s)",
		want, len(names), strings.Join(names, ", "))
}

// SecretsAPI is the part of the Secrets Manager client the token functions use.
type SecretsAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// SecretsWriteAPI adds the writes needed by the token tool.
type SecretsWriteAPI interface {
	SecretsAPI
	PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
	UpdateSecretVersionStage(ctx context.Context, in *secretsmanager.UpdateSecretVersionStageInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error)
}

// LoadTokens reads and parses the tokens secret. A secret without a value, or with an empty or placeholder value,
// yields an empty set and vending.ErrEmptyTokenSecret.
func LoadTokens(ctx context.Context, api SecretsAPI, secretID string) (*vending.TokenSet, error) {
	s, _, err := loadTokens(ctx, api, secretID)
	return s, err
}

// loadTokens also returns the id of the version read ("" when the secret has no value yet).
func loadTokens(ctx context.Context, api SecretsAPI, secretID string) (*vending.TokenSet, string, error) {
	out, err := api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretID)})
	if err != nil {
		var nf *smtypes.ResourceNotFoundException
		if errors.As(err, &nf) && strings.Contains(strings.ToLower(nf.ErrorMessage()), "value") {
			// The secret exists but has no AWSCURRENT value yet.
			return &vending.TokenSet{}, "", vending.ErrEmptyTokenSecret
		}
		return nil, "", fmt.Errorf("get tokens secret %s: %w", secretID, err)
	}
	s, err := vending.ParseTokens([]byte(aws.ToString(out.SecretString)))
	if err != nil && !errors.Is(err, vending.ErrEmptyTokenSecret) {
		return nil, "", fmt.Errorf("secret %s: %w", secretID, err)
	}
	return s, aws.ToString(out.VersionId), err
}

// Attempts and back-off of UpdateTokens when another writer changed the secret in between.
const (
	updateAttempts = 8
	updateBackoff  = 50 * time.Millisecond
)

// ErrConcurrentUpdate reports that the tokens secret kept changing under UpdateTokens.
var ErrConcurrentUpdate = errors.New("the tokens secret kept changing during the update: try again")

// UpdateTokens applies change to the current token set and stores the result with a compare-and-swap on the secret
// version: the new value is written as AWSPENDING, then AWSCURRENT moves to it from the version that was read. If
// another writer moved AWSCURRENT in between, Secrets Manager refuses the move, and the change is applied again to
// the newer set, so that concurrent adds and revokes never undo each other. change may be called more than once;
// an error from it stops the update.
func UpdateTokens(ctx context.Context, api SecretsWriteAPI, secretID string, change func(*vending.TokenSet) error) error {
	for attempt := 0; ; attempt++ {
		set, readVersion, err := loadTokens(ctx, api, secretID)
		if err != nil && !errors.Is(err, vending.ErrEmptyTokenSecret) {
			return err
		}
		if err := change(set); err != nil {
			return err
		}
		b, err := set.Marshal()
		if err != nil {
			return fmt.Errorf("encode tokens: %w", err)
		}
		put, err := api.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
			SecretId:      aws.String(secretID),
			SecretString:  aws.String(string(b)),
			VersionStages: []string{"AWSPENDING"},
		})
		if err != nil {
			return fmt.Errorf("put tokens secret %s: %w", secretID, err)
		}
		newVersion := aws.ToString(put.VersionId)
		move := &secretsmanager.UpdateSecretVersionStageInput{
			SecretId:        aws.String(secretID),
			VersionStage:    aws.String("AWSCURRENT"),
			MoveToVersionId: aws.String(newVersion),
		}
		if readVersion != "" {
			move.RemoveFromVersionId = aws.String(readVersion)
		}
		_, err = api.UpdateSecretVersionStage(ctx, move)
		if err == nil {
			// Best effort: AWSPENDING is left for rotation functions to use.
			_, _ = api.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
				SecretId: aws.String(secretID), VersionStage: aws.String("AWSPENDING"), RemoveFromVersionId: aws.String(newVersion),
			})
			return nil
		}
		var conflict *smtypes.InvalidParameterException
		if !errors.As(err, &conflict) {
			return fmt.Errorf("move AWSCURRENT of tokens secret %s: %w", secretID, err)
		}
		if attempt == updateAttempts-1 {
			return ErrConcurrentUpdate
		}
		// Another writer moved AWSCURRENT first: back off a random part of a growing window, then start again.
		wait := time.Duration(rand.Int64N(int64(updateBackoff << min(attempt, 4))))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}
