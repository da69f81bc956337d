package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/metrics/metricstest"
	"github.com/iotcert/iotcert/internal/rotation"
	"github.com/iotcert/iotcert/internal/testsvc"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testsvc.StopAll()
	os.Exit(code)
}

// foreignCRL is a CRL signed by a CA that is not ours.
func foreignCRL(t *testing.T, number int64) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Someone else's CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(number),
		ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(24 * time.Hour)}, ca, key)
	if err != nil {
		t.Fatal(err)
	}
	return crl
}

// TestRefusalMetrics: the function, built from its environment against the fakes and DynamoDB Local, counts each
// refused CRL as Refused (capability E) with its reason, and neither an accepted CRL nor a failure.
func TestRefusalMetrics(t *testing.T) {
	srv := awsfake.New(t)
	srv.SetEnv(t)
	testsvc.DynamoDB(t)
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dynamodb.NewFromConfig(cfg).CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String("crl-metrics"), BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(rotation.AttrCRLAnchor), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(rotation.AttrCRLAnchor), KeyType: types.KeyTypeHash}},
	}); err != nil {
		t.Fatal(err)
	}
	const bucket = "crl-bucket"
	srv.S3.CreateBucket(bucket)
	for k, v := range map[string]string{"CRL_BUCKET": bucket, "IAMRATrustAnchorARN": srv.RolesAnywhere.AddTrustAnchor(srv.PCA.CACertPEM()),
		"SNS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:crl", "PCAarn": srv.PCA.CAARN(), "CRL_TABLE": "crl-metrics", "CRL_NAME": ""} {
		t.Setenv(k, v)
	}
	h, err := newHandler(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rec := metricstest.Capture(t)
	deliver := func(key string, der []byte) (rotation.CRLResult, error) {
		if der != nil {
			srv.S3.Put(bucket, key, der)
		}
		detail, _ := json.Marshal(map[string]any{"bucket": map[string]any{"name": bucket}, "object": map[string]any{"key": key, "size": len(der)}})
		return h.Handle(ctx, events.EventBridgeEvent{Source: "aws.s3", DetailType: "Object Created", Detail: detail})
	}
	week := time.Now().AddDate(0, 0, 7)
	for _, step := range []struct {
		name, key string
		der       []byte
		action    string // "" = a failure
	}{
		{"ours", "a.crl", srv.PCA.SignCRL(5, week), "imported"},
		{"another CA's", "b.crl", foreignCRL(t, 9), "refused"},
		{"not newer", "c.crl", srv.PCA.SignCRL(5, week), "refused"},
		{"expired", "d.crl", srv.PCA.SignCRL(6, time.Now().Add(-time.Minute)), "refused"},
		{"missing object", "gone.crl", nil, ""},
	} {
		res, err := deliver(step.key, step.der)
		if step.action == "" && err == nil || step.action != "" && (err != nil || res.Action != step.action) {
			t.Fatalf("%s: Handle() = %+v, %v; want %q", step.name, res, err, step.action)
		}
	}
	if got, want := strings.Join(rec.Names(t), ","), "Refused E UntrustedIssuer,Refused E Validity"; got != want {
		t.Errorf("metrics = %s, want %s", got, want)
	}
	for reason, want := range map[string]float64{"UntrustedIssuer": 1, "Validity": 2} {
		if got := rec.Sum(t, "Refused", map[string]string{"Capability": "E", "Reason": reason}); got != want {
			t.Errorf("Refused E %s = %v, want %v", reason, got, want)
		}
	}
}
