package rotation

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/rolesanywhere"
	ratypes "github.com/aws/aws-sdk-go-v2/service/rolesanywhere/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/iotcert/iotcert/internal/metrics"
)

// MaxCRLPEM is IAM Roles Anywhere's limit on crlData (ImportCrl and UpdateCrl), in bytes.
const MaxCRLPEM = 300000

// maxCRLObject bounds what is read from S3: a DER CRL grows by about a third as PEM, so anything larger could never
// fit MaxCRLPEM.
const maxCRLObject = MaxCRLPEM * 3 / 4

// CRLResult says what CRLProcessor did.
type CRLResult struct {
	Action string `json:"action"` // "imported", "updated", "skipped" or "refused"
	CRLID  string `json:"crlId,omitempty"`
	Bytes  int    `json:"bytes,omitempty"`
	// Number is the CRL number of the CRL given to IAM Roles Anywhere, in decimal.
	Number string `json:"number,omitempty"`
	// Removed lists duplicate CRLs of this trust anchor that were deleted.
	Removed []string `json:"removed,omitempty"`
	// Reason is why a refused CRL was refused (Action "refused" only).
	Reason metrics.Reason `json:"reason,omitempty"`
}

// CRLRefusedEvent is the value of the "event" attribute of the log line written for each refused CRL; the stack's
// metric filter counts these lines and alarms on them.
const CRLRefusedEvent = "CRLRefused"

// ErrCRLRefused marks a CRL that is not given to IAM Roles Anywhere: not signed by our CA, not newer than the CRL
// installed, or past its nextUpdate. Retrying cannot change the answer. Every refusal is a *CRLRefusal, which
// unwraps to it; every other error is a failure (of AWS, or of the object) that a retry may cure.
var ErrCRLRefused = errors.New("CRL refused")

// CRLRefusal is a refused CRL with its reason, a value of the Refused metric's Reason dimension (internal/metrics):
// UntrustedIssuer for a CRL our CA did not issue or sign, Validity for one past its nextUpdate or not newer than the
// installed CRL (a replayed older CRL, which would un-revoke), Malformed for one that does not parse or has no CRL
// number.
type CRLRefusal struct {
	Reason metrics.Reason
	Detail string
}

func (e *CRLRefusal) Error() string { return ErrCRLRefused.Error() + ": " + e.Detail }

// Unwrap makes errors.Is(err, ErrCRLRefused) hold.
func (e *CRLRefusal) Unwrap() error { return ErrCRLRefused }

func refuseCRL(reason metrics.Reason, format string, args ...any) error {
	return &CRLRefusal{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// CRLLockSeconds is how long one delivery holds a trust anchor's CRL record: longer than the function's timeout
// (stacks set it below), so a lock outlives only a delivery that is certainly over.
const CRLLockSeconds = 120

// Attributes of the CRL record, one item per trust anchor in the CRL table.
const (
	AttrCRLAnchor    = "trustAnchorArn" // the key
	AttrCRLID        = "crlId"
	AttrCRLNumber    = "crlNumber" // decimal: CRL numbers reach 20 octets (RFC 5280, 5.2.3), beyond DynamoDB's numbers
	AttrCRLLockOwner = "lockOwner"
	AttrCRLLockUntil = "lockUntil" // Unix seconds
)

// CRLProcessor forwards the CA's CRLs from the CRL bucket to IAM Roles Anywhere: ImportCrl the first time, UpdateCrl
// on that same CRL after (the sample imported a new CRL object every time).
//
// Only a CRL signed by our CA (CA's certificate, read from Private CA), with a CRL number greater than the installed
// one and a nextUpdate in the future is given on: anything else could un-revoke host certificates. A refusal is
// published, logged with event=CRLRefused (the stack alarms on it) and not retried.
//
// Exactly one CRL per trust anchor, under any concurrency. IAM Roles Anywhere's ImportCrl has no idempotency token
// and does not refuse a second CRL of the same name, and no page states that ListCrls reads its own writes
// (https://docs.aws.amazon.com/rolesanywhere/latest/APIReference/API_ImportCrl.html,
// https://docs.aws.amazon.com/rolesanywhere/latest/APIReference/API_ListCrls.html), so
// list-then-import races. Instead each delivery takes the trust anchor's record in the CRL table by a conditional
// write (DynamoDB conditional writes are strongly consistent:
// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html), and under
// it reads the record (CRL id and installed number), imports or updates, and writes the record back. ListCrls is
// used only when the record names no CRL (the first delivery, or one stopped between ImportCrl and the record): it
// adopts the oldest CRL of our name for the trust anchor and deletes the others, so duplicates left by the sample's
// or an earlier version's races disappear too.
type CRLProcessor struct {
	Objects ObjectAPI
	CRLs    CRLAPI
	CA      CACertAPI
	State   CRLStateAPI
	Topic   TopicAPI
	Config  Config
	// Now is the clock (nextUpdate, lock expiry). Default: time.Now.
	Now func() time.Time
	// Sleep waits between attempts to take a busy lock. Default: a timer that honours ctx.
	Sleep func(context.Context, time.Duration) error
	// LockWait bounds the wait for a busy lock; then the delivery fails and EventBridge retries it. Default: 20 s.
	LockWait time.Duration
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

// Handle processes one S3 Object Created event. Errors and refusals are published as "Failed to import CRL: …";
// errors are returned (EventBridge retries them), refusals are not.
func (p *CRLProcessor) Handle(ctx context.Context, ev events.EventBridgeEvent) (CRLResult, error) {
	res, key, err := p.process(ctx, ev)
	if err != nil {
		// The sample's message prefix, which operators' mail filters match.
		msg := fmt.Sprintf("Failed to import CRL: %v", err)
		if nerr := Notify(ctx, p.Topic, p.Config.TopicARN, msg); nerr != nil {
			slog.ErrorContext(ctx, "notify CRL failure", "error", nerr.Error())
		}
		var refusal *CRLRefusal
		if errors.As(err, &refusal) {
			slog.WarnContext(ctx, "CRL refused", "event", CRLRefusedEvent, "key", key, "reason", err.Error(),
				"refusal", string(refusal.Reason))
			return CRLResult{Action: "refused", Reason: refusal.Reason}, nil
		}
		return CRLResult{}, err
	}
	return res, nil
}

func (p *CRLProcessor) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *CRLProcessor) process(ctx context.Context, ev events.EventBridgeEvent) (CRLResult, string, error) {
	var d s3Detail
	if err := json.Unmarshal(ev.Detail, &d); err != nil {
		return CRLResult{}, "", fmt.Errorf("event detail: %w", err)
	}
	key := d.Object.Key
	if d.Bucket.Name != p.Config.CRLBucket {
		return CRLResult{}, key, fmt.Errorf("event names bucket %q, not the CRL bucket %q", d.Bucket.Name, p.Config.CRLBucket)
	}
	if !strings.HasSuffix(key, ".crl") {
		slog.InfoContext(ctx, "not a CRL, skipped", "key", key)
		return CRLResult{Action: "skipped"}, key, nil
	}
	if d.Object.Size > maxCRLObject {
		return CRLResult{}, key, fmt.Errorf("CRL %s is %d bytes, over the %d that fit IAM Roles Anywhere's %d-byte PEM limit",
			key, d.Object.Size, maxCRLObject, MaxCRLPEM)
	}
	obj, err := p.Objects.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(d.Bucket.Name), Key: aws.String(key)})
	if err != nil {
		return CRLResult{}, key, fmt.Errorf("get s3://%s/%s: %w", d.Bucket.Name, key, err)
	}
	defer func() { _ = obj.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(obj.Body, maxCRLObject+1))
	if err != nil {
		return CRLResult{}, key, fmt.Errorf("read s3://%s/%s: %w", d.Bucket.Name, key, err)
	}
	if len(data) > maxCRLObject {
		return CRLResult{}, key, fmt.Errorf("CRL %s is over %d bytes, more than fits IAM Roles Anywhere's %d-byte PEM limit",
			key, maxCRLObject, MaxCRLPEM)
	}
	crlPEM, err := CRLToPEM(data)
	if err != nil {
		return CRLResult{}, key, fmt.Errorf("CRL %s: %w", key, err)
	}
	if len(crlPEM) > MaxCRLPEM {
		return CRLResult{}, key, fmt.Errorf("CRL %s is %d bytes as PEM, over IAM Roles Anywhere's limit of %d",
			key, len(crlPEM), MaxCRLPEM)
	}
	ca, err := p.caCertificate(ctx)
	if err != nil {
		return CRLResult{}, key, err
	}
	crl, err := CheckCRL(crlPEM, ca, p.now())
	if err != nil {
		return CRLResult{}, key, fmt.Errorf("CRL %s: %w", key, err)
	}
	res, err := p.install(ctx, key, crlPEM, crl.Number)
	return res, key, err
}

// caCertificate reads our CA's certificate from Private CA.
func (p *CRLProcessor) caCertificate(ctx context.Context) (*x509.Certificate, error) {
	out, err := p.CA.GetCertificateAuthorityCertificate(ctx, &acmpca.GetCertificateAuthorityCertificateInput{
		CertificateAuthorityArn: aws.String(p.Config.PCAARN),
	})
	if err != nil {
		return nil, fmt.Errorf("get the certificate of CA %s: %w", p.Config.PCAARN, err)
	}
	b, _ := pem.Decode([]byte(aws.ToString(out.Certificate)))
	if b == nil {
		return nil, fmt.Errorf("the certificate of CA %s is not PEM", p.Config.PCAARN)
	}
	ca, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("the certificate of CA %s: %w", p.Config.PCAARN, err)
	}
	return ca, nil
}

// CheckCRL parses a PEM CRL and accepts it only when ca signed it (issuer and signature), it carries a CRL number,
// and its nextUpdate is after now. Each refusal is a *CRLRefusal.
func CheckCRL(crlPEM []byte, ca *x509.Certificate, now time.Time) (*x509.RevocationList, error) {
	b, _ := pem.Decode(crlPEM)
	if b == nil {
		return nil, refuseCRL(metrics.ReasonMalformed, "not PEM")
	}
	crl, err := x509.ParseRevocationList(b.Bytes)
	if err != nil {
		return nil, refuseCRL(metrics.ReasonMalformed, "%v", err)
	}
	if !bytes.Equal(crl.RawIssuer, ca.RawSubject) {
		return nil, refuseCRL(metrics.ReasonUntrustedIssuer, "issued by %q, not by our CA %q", crl.Issuer.String(), ca.Subject.String())
	}
	if err := crl.CheckSignatureFrom(ca); err != nil {
		return nil, refuseCRL(metrics.ReasonUntrustedIssuer, "not signed by our CA: %v", err)
	}
	if crl.Number == nil {
		return nil, refuseCRL(metrics.ReasonMalformed, "it has no CRL number")
	}
	if crl.NextUpdate.IsZero() || !crl.NextUpdate.After(now) {
		return nil, refuseCRL(metrics.ReasonValidity, "its nextUpdate %s is not in the future", crl.NextUpdate.UTC().Format(time.RFC3339))
	}
	return crl, nil
}

// install gives the checked CRL to IAM Roles Anywhere under the trust anchor's lock.
func (p *CRLProcessor) install(ctx context.Context, key string, crlPEM []byte, number *big.Int) (res CRLResult, err error) {
	owner, err := p.lock(ctx)
	if err != nil {
		return CRLResult{}, err
	}
	defer func() {
		if err != nil {
			_ = p.unlock(ctx, owner, nil) // logs its own failure; the lock expires anyway
		}
	}()
	rec, err := p.record(ctx)
	if err != nil {
		return CRLResult{}, err
	}
	if rec.id == "" {
		if rec.id, rec.number, res.Removed, err = p.adopt(ctx); err != nil {
			return CRLResult{}, err
		}
	}
	if rec.number != nil && number.Cmp(rec.number) <= 0 {
		return CRLResult{}, refuseCRL(metrics.ReasonValidity, "CRL %s has number %s, not greater than the installed CRL's %s", key, number, rec.number)
	}
	res.Bytes, res.Number = len(crlPEM), number.String()
	if rec.id != "" {
		_, err = p.CRLs.UpdateCrl(ctx, &rolesanywhere.UpdateCrlInput{CrlId: aws.String(rec.id), CrlData: crlPEM})
		var nf *ratypes.ResourceNotFoundException
		if err == nil {
			res.Action, res.CRLID = "updated", rec.id
		} else if !errors.As(err, &nf) {
			return CRLResult{}, fmt.Errorf("update CRL %s from %s: %w", rec.id, key, err)
		}
		// Deleted by someone else: import anew.
	}
	if res.Action == "" {
		out, err := p.CRLs.ImportCrl(ctx, &rolesanywhere.ImportCrlInput{
			CrlData: crlPEM, Name: aws.String(p.Config.CRLName), TrustAnchorArn: aws.String(p.Config.TrustAnchorARN),
			Enabled: aws.Bool(true),
		})
		if err != nil {
			return CRLResult{}, fmt.Errorf("import CRL %s: %w", key, err)
		}
		if out.Crl == nil || aws.ToString(out.Crl.CrlId) == "" {
			return CRLResult{}, fmt.Errorf("import CRL %s: the answer names no CRL id", key)
		}
		res.Action, res.CRLID = "imported", aws.ToString(out.Crl.CrlId)
	}
	if err := p.unlock(ctx, owner, &crlRecord{id: res.CRLID, number: number}); err != nil {
		return CRLResult{}, err
	}
	slog.InfoContext(ctx, "CRL "+res.Action, "key", key, "crlId", res.CRLID, "number", res.Number, "bytes", res.Bytes, "removed", res.Removed)
	return res, nil
}

type crlRecord struct {
	id     string
	number *big.Int
}

func (p *CRLProcessor) anchorKey() map[string]dbtypes.AttributeValue {
	return map[string]dbtypes.AttributeValue{AttrCRLAnchor: &dbtypes.AttributeValueMemberS{Value: p.Config.TrustAnchorARN}}
}

// lock takes the trust anchor's record, waiting up to LockWait while another delivery holds it.
func (p *CRLProcessor) lock(ctx context.Context) (string, error) {
	owner := newOwner()
	wait := p.LockWait
	if wait == 0 {
		wait = 20 * time.Second
	}
	sleep := p.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	delay, waited := 50*time.Millisecond, time.Duration(0)
	for {
		now := p.now().Unix()
		_, err := p.State.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:           aws.String(p.Config.CRLTable),
			Key:                 p.anchorKey(),
			UpdateExpression:    aws.String("SET #o = :o, #u = :u"),
			ConditionExpression: aws.String("attribute_not_exists(#u) OR #u < :now"),
			ExpressionAttributeNames: map[string]string{
				"#o": AttrCRLLockOwner, "#u": AttrCRLLockUntil,
			},
			ExpressionAttributeValues: map[string]dbtypes.AttributeValue{
				":o":   &dbtypes.AttributeValueMemberS{Value: owner},
				":u":   &dbtypes.AttributeValueMemberN{Value: strconv.FormatInt(now+CRLLockSeconds, 10)},
				":now": &dbtypes.AttributeValueMemberN{Value: strconv.FormatInt(now, 10)},
			},
		})
		var ccf *dbtypes.ConditionalCheckFailedException
		switch {
		case err == nil:
			return owner, nil
		case !errors.As(err, &ccf):
			return "", fmt.Errorf("lock the CRL record of %s in %s: %w", p.Config.TrustAnchorARN, p.Config.CRLTable, err)
		case waited >= wait:
			return "", fmt.Errorf("another CRL delivery for %s held the lock for %s: try again", p.Config.TrustAnchorARN, waited)
		}
		if err := sleep(ctx, delay); err != nil {
			return "", err
		}
		waited += delay
		delay = min(2*delay, time.Second)
	}
}

// unlock releases the lock, writing rec into the record when given. It fails when the lock is no longer ours.
func (p *CRLProcessor) unlock(ctx context.Context, owner string, rec *crlRecord) error {
	in := &dynamodb.UpdateItemInput{
		TableName:                 aws.String(p.Config.CRLTable),
		Key:                       p.anchorKey(),
		UpdateExpression:          aws.String("REMOVE #o, #u"),
		ConditionExpression:       aws.String("#o = :o"),
		ExpressionAttributeNames:  map[string]string{"#o": AttrCRLLockOwner, "#u": AttrCRLLockUntil},
		ExpressionAttributeValues: map[string]dbtypes.AttributeValue{":o": &dbtypes.AttributeValueMemberS{Value: owner}},
	}
	if rec != nil {
		in.UpdateExpression = aws.String("SET #i = :i, #n = :n REMOVE #o, #u")
		in.ExpressionAttributeNames["#i"], in.ExpressionAttributeNames["#n"] = AttrCRLID, AttrCRLNumber
		in.ExpressionAttributeValues[":i"] = &dbtypes.AttributeValueMemberS{Value: rec.id}
		in.ExpressionAttributeValues[":n"] = &dbtypes.AttributeValueMemberS{Value: rec.number.String()}
	}
	if _, err := p.State.UpdateItem(ctx, in); err != nil {
		if rec == nil {
			slog.WarnContext(ctx, "release the CRL lock", "error", err.Error())
			return nil
		}
		return fmt.Errorf("record CRL %s number %s for %s: %w", rec.id, rec.number, p.Config.TrustAnchorARN, err)
	}
	return nil
}

// record reads the trust anchor's CRL record.
func (p *CRLProcessor) record(ctx context.Context) (crlRecord, error) {
	out, err := p.State.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(p.Config.CRLTable), Key: p.anchorKey(), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return crlRecord{}, fmt.Errorf("read the CRL record of %s: %w", p.Config.TrustAnchorARN, err)
	}
	var rec crlRecord
	rec.id, _, _ = stringAttr(out.Item, AttrCRLID)
	if n, ok, _ := stringAttr(out.Item, AttrCRLNumber); ok {
		v, good := new(big.Int).SetString(n, 10)
		if !good {
			return crlRecord{}, fmt.Errorf("the CRL record of %s holds number %q, not a decimal", p.Config.TrustAnchorARN, n)
		}
		rec.number = v
	}
	return rec, nil
}

// adopt finds this trust anchor's CRLs of our name: it keeps the oldest (the one an earlier delivery imported),
// deletes the rest and returns the kept one's id and number ("" and nil when there is none).
func (p *CRLProcessor) adopt(ctx context.Context) (string, *big.Int, []string, error) {
	var found []ratypes.CrlDetail
	pager := rolesanywhere.NewListCrlsPaginator(p.CRLs, &rolesanywhere.ListCrlsInput{})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return "", nil, nil, fmt.Errorf("list CRLs: %w", err)
		}
		for _, c := range page.Crls {
			if aws.ToString(c.Name) == p.Config.CRLName && aws.ToString(c.TrustAnchorArn) == p.Config.TrustAnchorARN {
				found = append(found, c)
			}
		}
	}
	if len(found) == 0 {
		return "", nil, nil, nil
	}
	slices.SortFunc(found, func(a, b ratypes.CrlDetail) int {
		if c := aws.ToTime(a.CreatedAt).Compare(aws.ToTime(b.CreatedAt)); c != 0 {
			return c
		}
		return strings.Compare(aws.ToString(a.CrlId), aws.ToString(b.CrlId))
	})
	var removed []string
	for _, c := range found[1:] {
		id := aws.ToString(c.CrlId)
		if _, err := p.CRLs.DeleteCrl(ctx, &rolesanywhere.DeleteCrlInput{CrlId: aws.String(id)}); err != nil {
			return "", nil, nil, fmt.Errorf("delete duplicate CRL %s: %w", id, err)
		}
		removed = append(removed, id)
	}
	var number *big.Int
	if b, _ := pem.Decode(found[0].CrlData); b != nil {
		if crl, err := x509.ParseRevocationList(b.Bytes); err == nil {
			number = crl.Number
		}
	}
	return aws.ToString(found[0].CrlId), number, removed, nil
}

func newOwner() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
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
