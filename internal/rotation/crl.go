package rotation

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rolesanywhere"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// MaxCRLPEM is IAM Roles Anywhere's limit on crlData (ImportCrl and UpdateCrl), in bytes.
const MaxCRLPEM = 300000

// maxCRLObject bounds what is read from S3: a DER CRL grows by about a third as PEM, so anything larger could never
// fit MaxCRLPEM.
const maxCRLObject = MaxCRLPEM * 3 / 4

// CRLResult says what CRLProcessor did.
type CRLResult struct {
	Action string `json:"action"` // "imported", "updated" or "skipped"
	CRLID  string `json:"crlId,omitempty"`
	Bytes  int    `json:"bytes,omitempty"`
}

// CRLProcessor forwards the CA's CRLs from the CRL bucket to IAM Roles Anywhere: ImportCrl the first time, UpdateCrl
// on that same CRL after (the sample imported a new CRL object every time).
type CRLProcessor struct {
	Objects ObjectAPI
	CRLs    CRLAPI
	Topic   TopicAPI
	Config  Config
}

// s3Detail is the part of an S3 "Object Created" EventBridge event used here.
type s3Detail struct {
	Bucket struct {
		Name string `json:"name"`
	} `json:"bucket"`
	Object struct {
		Key  string `json:"key"`
		Size int64  `json:"size"`
	} `json:"object"`
}

// Handle processes one S3 Object Created event. Errors are published as "Failed to import CRL: …" and returned.
func (p *CRLProcessor) Handle(ctx context.Context, ev events.EventBridgeEvent) (CRLResult, error) {
	res, err := p.process(ctx, ev)
	if err != nil {
		// The sample's message prefix, which operators' mail filters match.
		msg := fmt.Sprintf("Failed to import CRL: %v", err)
		if nerr := Notify(ctx, p.Topic, p.Config.TopicARN, msg); nerr != nil {
			slog.ErrorContext(ctx, "notify CRL failure", "error", nerr.Error())
		}
		return CRLResult{}, err
	}
	return res, nil
}

func (p *CRLProcessor) process(ctx context.Context, ev events.EventBridgeEvent) (CRLResult, error) {
	var d s3Detail
	if err := json.Unmarshal(ev.Detail, &d); err != nil {
		return CRLResult{}, fmt.Errorf("event detail: %w", err)
	}
	if d.Bucket.Name != p.Config.CRLBucket {
		return CRLResult{}, fmt.Errorf("event names bucket %q, not the CRL bucket %q", d.Bucket.Name, p.Config.CRLBucket)
	}
	if !strings.HasSuffix(d.Object.Key, ".crl") {
		slog.InfoContext(ctx, "not a CRL, skipped", "key", d.Object.Key)
		return CRLResult{Action: "skipped"}, nil
	}
	if d.Object.Size > maxCRLObject {
		return CRLResult{}, fmt.Errorf("CRL %s is %d bytes, over the %d that fit IAM Roles Anywhere's %d-byte PEM limit",
			d.Object.Key, d.Object.Size, maxCRLObject, MaxCRLPEM)
	}
	obj, err := p.Objects.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(d.Bucket.Name), Key: aws.String(d.Object.Key)})
	if err != nil {
		return CRLResult{}, fmt.Errorf("get s3://%s/%s: %w", d.Bucket.Name, d.Object.Key, err)
	}
	defer func() { _ = obj.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(obj.Body, maxCRLObject+1))
	if err != nil {
		return CRLResult{}, fmt.Errorf("read s3://%s/%s: %w", d.Bucket.Name, d.Object.Key, err)
	}
	if len(data) > maxCRLObject {
		return CRLResult{}, fmt.Errorf("CRL %s is over %d bytes, more than fits IAM Roles Anywhere's %d-byte PEM limit",
			d.Object.Key, maxCRLObject, MaxCRLPEM)
	}
	crlPEM, err := CRLToPEM(data)
	if err != nil {
		return CRLResult{}, fmt.Errorf("CRL %s: %w", d.Object.Key, err)
	}
	if len(crlPEM) > MaxCRLPEM {
		return CRLResult{}, fmt.Errorf("CRL %s is %d bytes as PEM, over IAM Roles Anywhere's limit of %d",
			d.Object.Key, len(crlPEM), MaxCRLPEM)
	}
	id, err := p.findCRL(ctx)
	if err != nil {
		return CRLResult{}, err
	}
	if id == "" {
		out, err := p.CRLs.ImportCrl(ctx, &rolesanywhere.ImportCrlInput{
			CrlData: crlPEM, Name: aws.String(p.Config.CRLName), TrustAnchorArn: aws.String(p.Config.TrustAnchorARN),
			Enabled: aws.Bool(true),
		})
		if err != nil {
			return CRLResult{}, fmt.Errorf("import CRL %s: %w", d.Object.Key, err)
		}
		if out.Crl != nil {
			id = aws.ToString(out.Crl.CrlId)
		}
		slog.InfoContext(ctx, "CRL imported", "key", d.Object.Key, "crlId", id, "bytes", len(crlPEM))
		return CRLResult{Action: "imported", CRLID: id, Bytes: len(crlPEM)}, nil
	}
	if _, err := p.CRLs.UpdateCrl(ctx, &rolesanywhere.UpdateCrlInput{CrlId: aws.String(id), CrlData: crlPEM}); err != nil {
		return CRLResult{}, fmt.Errorf("update CRL %s from %s: %w", id, d.Object.Key, err)
	}
	slog.InfoContext(ctx, "CRL updated", "key", d.Object.Key, "crlId", id, "bytes", len(crlPEM))
	return CRLResult{Action: "updated", CRLID: id, Bytes: len(crlPEM)}, nil
}

// findCRL returns the id of this trust anchor's CRL named CRLName, or "".
func (p *CRLProcessor) findCRL(ctx context.Context) (string, error) {
	pager := rolesanywhere.NewListCrlsPaginator(p.CRLs, &rolesanywhere.ListCrlsInput{})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("list CRLs: %w", err)
		}
		for _, c := range page.Crls {
			if aws.ToString(c.Name) == p.Config.CRLName && aws.ToString(c.TrustAnchorArn) == p.Config.TrustAnchorARN {
				return aws.ToString(c.CrlId), nil
			}
		}
	}
	return "", nil
}

// CRLToPEM checks a CRL (DER, as Private CA writes it, or PEM) and returns it as PEM.
func CRLToPEM(data []byte) ([]byte, error) {
	der := data
	if b, _ := pem.Decode(bytes.TrimSpace(data)); b != nil {
		if b.Type != "X509 CRL" {
			return nil, fmt.Errorf("PEM block %q, want X509 CRL", b.Type)
		}
		der = b.Bytes
	}
	if len(der) == 0 {
		return nil, errors.New("empty CRL")
	}
	if _, err := x509.ParseRevocationList(der); err != nil {
		return nil, fmt.Errorf("parse CRL: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), nil
}
