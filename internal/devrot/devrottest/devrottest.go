// Package devrottest sets up the cloud side of device-certificate rotation for tests: the IoT, Private CA and
// data-plane fakes, DynamoDB Local with the rotation table, the job template, the Private CA registered in AWS IoT
// with auto-registration, a device policy, and both functions built on the real SDK clients.
package devrottest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	iottypes "github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/iotcert/iotcert/internal/awsfake"
	"github.com/iotcert/iotcert/internal/devrot"
	"github.com/iotcert/iotcert/internal/devrot/wire"
	"github.com/iotcert/iotcert/internal/testsvc"
)

// PolicyName is the device policy Env defines.
const PolicyName = "device-policy"

const policyDoc = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"}]}`

// Env is the cloud side of rotation.
type Env struct {
	Srv        *awsfake.Server
	IoT        *iot.Client
	PCA        *acmpca.Client
	CAID       string // the Private CA's CA certificate id in AWS IoT
	Template   string // the job template's ARN
	Signer     *devrot.Signer
	Completion *devrot.Completion
}

var tableSeq atomic.Int64

// New starts the fakes and DynamoDB Local (skipped, or failed under CI=true, without Java) and builds the functions.
// AWS IoT detaches at once (SetDetachDelay(0)) unless the test says otherwise.
func New(t testing.TB) *Env {
	t.Helper()
	srv := awsfake.New(t)
	srv.SetEnv(t)
	testsvc.DynamoDB(t)
	srv.IoT.SetDetachDelay(0)
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRetryer(func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
		})
	}))
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{Srv: srv, IoT: iot.NewFromConfig(cfg), PCA: acmpca.NewFromConfig(cfg)}
	ddb := dynamodb.NewFromConfig(cfg)
	table := fmt.Sprintf("device-rotation-%d-%d", os.Getpid(), tableSeq.Add(1))
	if _, err := ddb.CreateTable(ctx, devrot.TableSchema(table)); err != nil {
		t.Fatalf("CreateTable() error = %v", err)
	}
	tmpl, err := e.IoT.CreateJobTemplate(ctx, &iot.CreateJobTemplateInput{
		JobTemplateId: aws.String(wire.TemplateID), Description: aws.String("rotate"), Document: aws.String(wire.JobDocumentJSON()),
	})
	if err != nil {
		t.Fatalf("CreateJobTemplate() error = %v", err)
	}
	e.Template = aws.ToString(tmpl.JobTemplateArn)
	ca, err := e.IoT.RegisterCACertificate(ctx, &iot.RegisterCACertificateInput{
		CaCertificate: aws.String(string(srv.PCA.CACertPEM())), CertificateMode: iottypes.CertificateModeSniOnly,
		SetAsActive: true, AllowAutoRegistration: true,
	})
	if err != nil {
		t.Fatalf("RegisterCACertificate() error = %v", err)
	}
	e.CAID = aws.ToString(ca.CertificateId)
	srv.IoT.PutPolicy(PolicyName, policyDoc)
	c := devrot.Config{Table: table, TemplateARN: e.Template, CACertificateID: e.CAID, PCAARN: srv.PCA.CAARN()}
	store := &devrot.Store{DB: ddb, Table: table}
	pub := &devrot.DataPlane{Endpoint: srv.URL(), Region: awsfake.Region, Credentials: cfg.Credentials}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e.Signer = &devrot.Signer{IoT: e.IoT, PCA: e.PCA, Store: store, Publisher: pub, Config: c, Sleep: func(time.Duration) {}, Log: log}
	e.Completion = &devrot.Completion{IoT: e.IoT, PCA: e.PCA, Store: store, Publisher: pub, Config: c, Log: log}
	return e
}
