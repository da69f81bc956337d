package awsfake_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

func TestSSMParameters(t *testing.T) {
	srv, cfg := envConfig(t)
	c := ssm.NewFromConfig(cfg)
	ctx := context.Background()

	out, err := c.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/app/a"), Value: aws.String("1"), Type: types.ParameterTypeString})
	if err != nil || out.Version != 1 {
		t.Fatalf("PutParameter() = %+v, %v, want version 1", out, err)
	}
	var exists *types.ParameterAlreadyExists
	if _, err := c.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/app/a"), Value: aws.String("2")}); !errors.As(err, &exists) {
		t.Errorf("PutParameter(existing) error = %v, want ParameterAlreadyExists", err)
	}
	out, err = c.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/app/a"), Value: aws.String("2"), Overwrite: aws.Bool(true)})
	if err != nil || out.Version != 2 {
		t.Fatalf("PutParameter(overwrite) = %+v, %v, want version 2", out, err)
	}
	g, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/app/a")})
	if err != nil || aws.ToString(g.Parameter.Value) != "2" || g.Parameter.Version != 2 ||
		aws.ToString(g.Parameter.ARN) != "arn:aws:ssm:us-east-1:123456789012:parameter/app/a" {
		t.Errorf("GetParameter() = %+v, %v", g.Parameter, err)
	}
	for _, ref := range []string{"/app/a:1", "arn:aws:ssm:us-east-1:123456789012:parameter/app/a:1"} {
		if g, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(ref)}); err != nil || aws.ToString(g.Parameter.Value) != "1" {
			t.Errorf("GetParameter(%s) = %+v, %v, want 1", ref, g, err)
		}
	}
	srv.SSM.Put("plain", "p")
	if g, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("arn:aws:ssm:us-east-1:123456789012:parameter/plain")}); err != nil || aws.ToString(g.Parameter.Value) != "p" {
		t.Errorf("GetParameter(ARN of plain) = %+v, %v, want p", g, err)
	}

	if _, err := c.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/app/secret"), Value: aws.String("s3cret"), Type: types.ParameterTypeSecureString}); err != nil {
		t.Fatal(err)
	}
	for _, decrypt := range []bool{true, false} {
		g, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/app/secret"), WithDecryption: aws.Bool(decrypt)})
		if err != nil {
			t.Fatal(err)
		}
		if got := aws.ToString(g.Parameter.Value); (got == "s3cret") != decrypt {
			t.Errorf("GetParameter(WithDecryption=%v) = %q", decrypt, got)
		}
	}

	gs, err := c.GetParameters(ctx, &ssm.GetParametersInput{Names: []string{"/app/a", "/nope"}})
	if err != nil || len(gs.Parameters) != 1 || !slices.Equal(gs.InvalidParameters, []string{"/nope"}) {
		t.Errorf("GetParameters() = %+v, %v, want one found, /nope invalid", gs, err)
	}

	var nf *types.ParameterNotFound
	if _, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/nope")}); !errors.As(err, &nf) {
		t.Errorf("GetParameter(missing) error = %v, want ParameterNotFound", err)
	}
	if _, err := c.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String("/app/a")}); err != nil {
		t.Fatalf("DeleteParameter() error = %v", err)
	}
	if _, err := c.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String("/app/a")}); !errors.As(err, &nf) {
		t.Errorf("DeleteParameter(missing) error = %v, want ParameterNotFound", err)
	}
	if _, ok := srv.SSM.Parameter("/app/a"); ok {
		t.Error("Parameter(deleted) found")
	}
	if v, ok := srv.SSM.Parameter("/app/secret"); !ok || v != "s3cret" {
		t.Errorf("Parameter(/app/secret) = %q, %v", v, ok)
	}

	for _, name := range []string{"a/b", "/aws/x", "has space"} {
		var invalid interface{ ErrorCode() string }
		_, err := c.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String("v")})
		if !errors.As(err, &invalid) || invalid.ErrorCode() != "ValidationException" {
			t.Errorf("PutParameter(%q) error = %v, want ValidationException", name, err)
		}
	}
}

func TestGetParametersByPath(t *testing.T) {
	srv, cfg := envConfig(t)
	c := ssm.NewFromConfig(cfg)
	ctx := context.Background()
	names := []string{"/p/a", "/p/b", "/p/c", "/p/d", "/p/e", "/p/sub/x", "/p/sub/y", "/q/z", "/pp"}
	for _, n := range names {
		srv.SSM.Put(n, "v"+n)
	}
	tests := []struct {
		name      string
		path      string
		recursive bool
		want      []string
	}{
		{"direct children", "/p", false, []string{"/p/a", "/p/b", "/p/c", "/p/d", "/p/e"}},
		{"recursive", "/p/", true, []string{"/p/a", "/p/b", "/p/c", "/p/d", "/p/e", "/p/sub/x", "/p/sub/y"}},
		{"nested", "/p/sub", false, []string{"/p/sub/x", "/p/sub/y"}},
		{"root", "/", false, []string{"/pp"}},
		{"none", "/none", true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			p := ssm.NewGetParametersByPathPaginator(c, &ssm.GetParametersByPathInput{
				Path: aws.String(tt.path), Recursive: aws.Bool(tt.recursive), MaxResults: aws.Int32(2),
			})
			for p.HasMorePages() {
				out, err := p.NextPage(ctx)
				if err != nil {
					t.Fatalf("GetParametersByPath(%s) error = %v", tt.path, err)
				}
				if len(out.Parameters) > 2 {
					t.Errorf("page of %d parameters, want at most 2", len(out.Parameters))
				}
				for _, prm := range out.Parameters {
					got = append(got, aws.ToString(prm.Name))
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("GetParametersByPath(%s, recursive=%v) = %v, want %v", tt.path, tt.recursive, got, tt.want)
			}
		})
	}
	var bad *types.InvalidNextToken
	if _, err := c.GetParametersByPath(ctx, &ssm.GetParametersByPathInput{Path: aws.String("/p"), NextToken: aws.String("junk")}); !errors.As(err, &bad) {
		t.Errorf("GetParametersByPath(bad token) error = %v, want InvalidNextToken", err)
	}
}
