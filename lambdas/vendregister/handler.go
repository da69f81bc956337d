package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	iottypes "github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/iotcert/iotcert/internal/capability"
	"github.com/iotcert/iotcert/internal/pki"
	"github.com/iotcert/iotcert/internal/vending"
)

// IoTAPI is the part of the AWS IoT client the registration function uses.
type IoTAPI interface {
	ListThingTypes(ctx context.Context, in *iot.ListThingTypesInput, optFns ...func(*iot.Options)) (*iot.ListThingTypesOutput, error)
	DescribeThing(ctx context.Context, in *iot.DescribeThingInput, optFns ...func(*iot.Options)) (*iot.DescribeThingOutput, error)
	GetPolicy(ctx context.Context, in *iot.GetPolicyInput, optFns ...func(*iot.Options)) (*iot.GetPolicyOutput, error)
	CreateKeysAndCertificate(ctx context.Context, in *iot.CreateKeysAndCertificateInput, optFns ...func(*iot.Options)) (*iot.CreateKeysAndCertificateOutput, error)
	CreateCertificateFromCsr(ctx context.Context, in *iot.CreateCertificateFromCsrInput, optFns ...func(*iot.Options)) (*iot.CreateCertificateFromCsrOutput, error)
	AttachPolicy(ctx context.Context, in *iot.AttachPolicyInput, optFns ...func(*iot.Options)) (*iot.AttachPolicyOutput, error)
	DetachPolicy(ctx context.Context, in *iot.DetachPolicyInput, optFns ...func(*iot.Options)) (*iot.DetachPolicyOutput, error)
	CreateThing(ctx context.Context, in *iot.CreateThingInput, optFns ...func(*iot.Options)) (*iot.CreateThingOutput, error)
	DeleteThing(ctx context.Context, in *iot.DeleteThingInput, optFns ...func(*iot.Options)) (*iot.DeleteThingOutput, error)
	AttachThingPrincipal(ctx context.Context, in *iot.AttachThingPrincipalInput, optFns ...func(*iot.Options)) (*iot.AttachThingPrincipalOutput, error)
	DetachThingPrincipal(ctx context.Context, in *iot.DetachThingPrincipalInput, optFns ...func(*iot.Options)) (*iot.DetachThingPrincipalOutput, error)
	UpdateCertificate(ctx context.Context, in *iot.UpdateCertificateInput, optFns ...func(*iot.Options)) (*iot.UpdateCertificateOutput, error)
	DescribeCertificate(ctx context.Context, in *iot.DescribeCertificateInput, optFns ...func(*iot.Options)) (*iot.DescribeCertificateOutput, error)
	DeleteCertificate(ctx context.Context, in *iot.DeleteCertificateInput, optFns ...func(*iot.Options)) (*iot.DeleteCertificateOutput, error)
}

// TableAPI is the part of the DynamoDB client the registration function uses.
type TableAPI interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

// Defaults of Handler.
const (
	// DefaultLease is how long a PENDING guard protects a registration; it must exceed the function timeout so
	// that only a crashed request's guard can be taken over.
	DefaultLease = 5 * time.Minute
	// DefaultThingTypeTTL is how long the chosen thing type is cached.
	DefaultThingTypeTTL = time.Minute
	// DefaultGuardTTL is how long a guard that records nothing to clean up is kept before DynamoDB's TTL removes
	// it (a request that was refused or crashed before making anything).
	DefaultGuardTTL = 24 * time.Hour
	// rollbackReserve is the part of the function's remaining time kept for undoing a failed registration.
	rollbackReserve = 8 * time.Second
)

// Messages returned to clients.
const (
	msgRegisterFailed = "Error registering thing agent in AWS IoT"
	msgNotConfigured  = "registration is not configured"
	msgNoAuthContext  = "missing authorizer context"
)

// Handler is the certificate vending API's function behind GET / (ping) and POST /register.
//
// POST /register takes {"thingName","version"} and an optional "csr". It registers a thing of the configured
// type with a new certificate (created by AWS IoT, or from the CSR so the key stays on the device) and the type's
// policy, and answers in the seed's shape. Each registration holds a guard item in the registrations table, so
// retries and concurrent requests for one thing name produce one thing and one certificate. The token is spent in
// a conditional write that re-checks it (revoked, used, expired: 403). The guard records the certificate as soon
// as it exists; any failure undoes every step, gives a single-use token back and releases the guard, and when AWS
// IoT does not let the undo finish, or the request dies, the next request for the name finishes it first (see
// guard.go). Every response is JSON; client errors are 4xx with {"status": false, "error": ...}. The body's CSR
// and keys and the caller's token never reach a log line.
type Handler struct {
	IoT       IoTAPI
	Table     TableAPI
	Config    *vending.Config
	TableName string
	// Lease of a PENDING guard. Default: DefaultLease.
	Lease time.Duration
	// GuardTTL of a guard that records nothing to clean up. Default: DefaultGuardTTL.
	GuardTTL time.Duration
	// ReplayWindow after a key-mode registration during which its single-use token may ask again after a lost
	// answer. Default: DefaultReplayWindow.
	ReplayWindow time.Duration
	// ThingTypeTTL bounds how long the chosen thing type is cached. Default: DefaultThingTypeTTL.
	ThingTypeTTL time.Duration
	Now          func() time.Time
	// AllowCSRSANs accepts subject alternative names in a CSR (the subject must still be exactly CN=<thingName>).
	// Default: refused.
	AllowCSRSANs bool
	// ThingNamePrefix, when set, is the environment's thing-name prefix: the function's IAM grants on things name only
	// thing/<prefix>*, so other names are refused up front. Default: any name.
	ThingNamePrefix string

	mu          sync.Mutex
	thingType   string
	thingTypeAt time.Time
}

// Handle answers one API Gateway proxy request. It never returns an error: failures are JSON responses.
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	switch req.HTTPMethod {
	case http.MethodGet:
		return respond(http.StatusOK, map[string]any{"response": true, "time": h.now().Unix()}), nil
	case http.MethodPost:
		resp := h.register(ctx, req)
		publish(resp.StatusCode)
		return resp, nil
	default:
		r := fail(http.StatusMethodNotAllowed, "method not allowed")
		r.Headers["Allow"] = "GET, POST"
		return r, nil
	}
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func respond(status int, body any) events.APIGatewayProxyResponse {
	// Not HTML-escaped: a client reads "≥" and "<prefix>" as written, not as \u003e.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(body)
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"status":false,"error":"Uncaught error..."}`)
	}
	return events.APIGatewayProxyResponse{
		StatusCode: status,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       string(b),
	}
}

func fail(status int, msg string) events.APIGatewayProxyResponse {
	return respond(status, vending.ErrorResponse{Status: false, Error: msg})
}

// caller is what the token authorizer passed in the request context.
type caller struct {
	tokenID     string
	thingPrefix string
	singleUse   bool
	expiresAt   int64 // epoch seconds; 0: the token does not expire
}

func callerFrom(req events.APIGatewayProxyRequest) (caller, bool) {
	a := req.RequestContext.Authorizer
	str := func(k string) string {
		switch v := a[k].(type) {
		case string:
			return v
		case bool:
			return strconv.FormatBool(v)
		case float64:
			return strconv.FormatFloat(v, 'f', -1, 64)
		}
		return ""
	}
	c := caller{tokenID: str("tokenId"), thingPrefix: str("thingPrefix"), singleUse: str("singleUse") == "true"}
	if v := str("expiresAt"); v != "" {
		exp, err := strconv.ParseInt(v, 10, 64)
		if err != nil || exp <= 0 {
			return c, false
		}
		c.expiresAt = exp
	}
	return c, c.tokenID != ""
}

func (h *Handler) register(ctx context.Context, req events.APIGatewayProxyRequest) events.APIGatewayProxyResponse {
	body := []byte(req.Body)
	if req.IsBase64Encoded {
		if base64.StdEncoding.DecodedLen(len(req.Body)) > vending.MaxBodyBytes+3 {
			return fail(http.StatusRequestEntityTooLarge, vending.ErrBodyTooLarge.Msg)
		}
		b, err := base64.StdEncoding.DecodeString(req.Body)
		if err != nil {
			return fail(http.StatusBadRequest, "body is not valid base64")
		}
		body = b
	}
	if len(body) > vending.MaxBodyBytes {
		return fail(http.StatusRequestEntityTooLarge, vending.ErrBodyTooLarge.Msg)
	}
	r, err := vending.ParseRegisterBody(body)
	if err != nil {
		slog.InfoContext(ctx, "bad request", "reason", err.Error())
		return fail(http.StatusBadRequest, err.Error())
	}
	who, ok := callerFrom(req)
	if !ok {
		slog.ErrorContext(ctx, "no authorizer context in request: is the token authorizer attached?")
		return fail(http.StatusForbidden, msgNoAuthContext)
	}
	log := slog.With("thingName", r.ThingName, "tokenId", who.tokenID)
	if !strings.HasPrefix(r.ThingName, h.ThingNamePrefix) {
		log.InfoContext(ctx, "thing name outside the environment's prefix", "thingNamePrefix", h.ThingNamePrefix)
		return fail(http.StatusForbidden, fmt.Sprintf("thingName must start with %q in this environment", h.ThingNamePrefix))
	}
	if !strings.HasPrefix(r.ThingName, who.thingPrefix) {
		log.InfoContext(ctx, "thing name outside the token's prefix", "thingPrefix", who.thingPrefix)
		return fail(http.StatusForbidden, fmt.Sprintf("thingName must start with %q for this token", who.thingPrefix))
	}
	var csr *x509.CertificateRequest
	if r.CSR != "" {
		// The subject must name exactly this thing, and AWS IoT gets the one PEM block that was checked.
		var canonical []byte
		if csr, canonical, err = pki.ParseDeviceCSR([]byte(r.CSR)); err == nil {
			err = pki.CheckDeviceSubject(csr, r.ThingName, h.AllowCSRSANs)
		}
		if err != nil {
			log.InfoContext(ctx, "bad csr", "err", err)
			return fail(http.StatusBadRequest, "invalid csr: "+strings.TrimPrefix(err.Error(), "parse csr: "))
		}
		r.CSR = string(canonical)
	}
	typ, err := h.pickThingType(ctx)
	if err != nil {
		log.ErrorContext(ctx, "pick thing type", "err", err)
		if errors.Is(err, errNoThingType) {
			return fail(http.StatusInternalServerError, msgNotConfigured)
		}
		return fail(http.StatusInternalServerError, msgRegisterFailed)
	}
	reg := &registration{h: h, log: log, req: r, csr: csr, who: who, thingType: typ, requestID: newRequestID()}
	return reg.run(ctx)
}

var errNoThingType = errors.New("no thing type")

// pickThingType returns the seed's choice of thing type, cached for ThingTypeTTL.
func (h *Handler) pickThingType(ctx context.Context) (string, error) {
	ttl := h.ThingTypeTTL
	if ttl <= 0 {
		ttl = DefaultThingTypeTTL
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.thingType != "" && h.now().Sub(h.thingTypeAt) < ttl {
		return h.thingType, nil
	}
	var names []string
	p := iot.NewListThingTypesPaginator(h.IoT, &iot.ListThingTypesInput{})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("list thing types: %w", err)
		}
		for _, t := range out.ThingTypes {
			if t.ThingTypeMetadata != nil && t.ThingTypeMetadata.Deprecated {
				continue
			}
			names = append(names, aws.ToString(t.ThingTypeName))
		}
	}
	typ, ok := h.Config.ThingType(names)
	if !ok {
		return "", fmt.Errorf("%w: none of the account's %d thing types contains \"cvm\" and has a POLICIES entry", errNoThingType, len(names))
	}
	h.thingType, h.thingTypeAt = typ, h.now()
	return typ, nil
}

func newRequestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// registration is one POST /register in progress, with what it has created so far.
type registration struct {
	h         *Handler
	log       *slog.Logger
	req       *vending.RegisterRequest
	csr       *x509.CertificateRequest
	who       caller
	thingType string
	requestID string

	takeover          bool // undoing a crashed request's recorded steps: a step it never reached finds nothing
	tokenSpent        bool
	certID, certARN   string
	policyAttached    bool
	thingCreated      bool
	principalAttached bool
	activated         bool
}

func (g *registration) run(ctx context.Context) events.APIGatewayProxyResponse {
	if resp, ok := g.acquire(ctx); !ok {
		return resp
	}
	// Keep time for the rollback: when the function's deadline is near, the steps stop first.
	stepsCtx, cancel := ctx, context.CancelFunc(func() {})
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) > 2*rollbackReserve {
		stepsCtx, cancel = context.WithDeadline(ctx, dl.Add(-rollbackReserve))
	}
	resp, ok := g.steps(stepsCtx)
	cancel()
	if !ok {
		g.rollback(ctx)
		return resp
	}
	g.log.InfoContext(ctx, "registered", "certificateId", g.certID, "thingTypeName", g.thingType, "csrMode", g.csr != nil)
	return resp
}

func (g *registration) key(k string) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{vending.TableKey: s(k)}
}

func s(v string) ddbtypes.AttributeValue { return &ddbtypes.AttributeValueMemberS{Value: v} }

func n(v int64) ddbtypes.AttributeValue {
	return &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

func isConditionFailed(err error) bool {
	var c *ddbtypes.ConditionalCheckFailedException
	return errors.As(err, &c)
}

func attrS(item map[string]ddbtypes.AttributeValue, k string) string {
	if v, ok := item[k].(*ddbtypes.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func (g *registration) thingExists(ctx context.Context) (bool, error) {
	_, err := g.h.IoT.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String(g.req.ThingName)})
	if err == nil {
		return true, nil
	}
	var nf *iottypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return false, nil
	}
	return false, err
}

// steps runs the registration after the guard is held. On failure it returns the response to send; the caller
// rolls back.
func (g *registration) steps(ctx context.Context) (events.APIGatewayProxyResponse, bool) {
	h, r := g.h, g.req
	failed := func(step string, err error) (events.APIGatewayProxyResponse, bool) {
		g.log.ErrorContext(ctx, "registration failed", "step", step, "err", err)
		return fail(http.StatusInternalServerError, msgRegisterFailed), false
	}

	exists, err := g.thingExists(ctx)
	if err != nil {
		return failed("describe thing", err)
	}
	if exists {
		g.log.InfoContext(ctx, "thing exists outside the registrations table")
		return fail(http.StatusBadRequest, vending.MsgThingExists), false
	}

	if resp, ok := g.spendToken(ctx); !ok {
		return resp, false
	}

	policy := h.Config.Policies[g.thingType]
	if _, err := h.IoT.GetPolicy(ctx, &iot.GetPolicyInput{PolicyName: aws.String(policy)}); err != nil {
		return failed("get policy "+policy, err)
	}

	var cd vending.CertificateData
	if g.csr == nil {
		out, err := h.IoT.CreateKeysAndCertificate(ctx, &iot.CreateKeysAndCertificateInput{SetAsActive: false})
		if err != nil {
			return failed("create keys and certificate", err)
		}
		g.certID, g.certARN = aws.ToString(out.CertificateId), aws.ToString(out.CertificateArn)
		cd.PEM = aws.ToString(out.CertificatePem)
		if out.KeyPair != nil {
			cd.KeyPair = vending.KeyPair{PublicKey: aws.ToString(out.KeyPair.PublicKey), PrivateKey: aws.ToString(out.KeyPair.PrivateKey)}
		}
	} else {
		out, err := h.IoT.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{
			CertificateSigningRequest: aws.String(r.CSR), SetAsActive: false,
		})
		if err != nil {
			return failed("create certificate from csr", err)
		}
		g.certID, g.certARN = aws.ToString(out.CertificateId), aws.ToString(out.CertificateArn)
		cd.PEM = aws.ToString(out.CertificatePem)
		pub, err := publicKeyPEM(g.csr)
		if err != nil {
			return failed("encode public key", err)
		}
		cd.KeyPair = vending.KeyPair{PublicKey: pub}
	}
	cd.CertificateID, cd.CertificateARN = g.certID, g.certARN
	if err := g.recordCertificate(ctx); err != nil {
		return failed("record certificate", err)
	}

	if _, err := h.IoT.AttachPolicy(ctx, &iot.AttachPolicyInput{PolicyName: aws.String(policy), Target: aws.String(g.certARN)}); err != nil {
		return failed("attach policy", err)
	}
	g.policyAttached = true

	attrs := h.Config.ThingAttributes(g.thingType, strconv.FormatInt(h.now().Unix(), 10), r.Version)
	attrs[capability.ThingAttribute] = capability.Vending // read back by cert-report
	_, err = h.IoT.CreateThing(ctx, &iot.CreateThingInput{
		ThingName:        aws.String(r.ThingName),
		ThingTypeName:    aws.String(g.thingType),
		AttributePayload: &iottypes.AttributePayload{Attributes: attrs},
	})
	if err != nil {
		var exists *iottypes.ResourceAlreadyExistsException
		if errors.As(err, &exists) {
			g.log.InfoContext(ctx, "thing created concurrently outside the registrations table")
			return fail(http.StatusBadRequest, vending.MsgThingExists), false
		}
		return failed("create thing", err)
	}
	g.thingCreated = true

	if _, err := h.IoT.AttachThingPrincipal(ctx, &iot.AttachThingPrincipalInput{
		ThingName: aws.String(r.ThingName), Principal: aws.String(g.certARN),
	}); err != nil {
		return failed("attach thing principal", err)
	}
	g.principalAttached = true

	if _, err := h.IoT.UpdateCertificate(ctx, &iot.UpdateCertificateInput{
		CertificateId: aws.String(g.certID), NewStatus: iottypes.CertificateStatusActive,
	}); err != nil {
		return failed("activate certificate", err)
	}
	g.activated = true

	_, err = h.Table.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(h.TableName),
		Key:                      g.key(r.ThingName),
		UpdateExpression:         aws.String("SET #s = :complete, certificateId = :cid, completedAt = :at, publicKeySha256 = :pk REMOVE leaseUntil, thingPlanned"),
		ConditionExpression:      aws.String("#s = :pending AND requestId = :rid"),
		ExpressionAttributeNames: map[string]string{"#s": "status"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":complete": s(vending.StatusComplete), ":pending": s(vending.StatusPending),
			":cid": s(g.certID), ":rid": s(g.requestID), ":at": s(h.now().UTC().Format(time.RFC3339)),
			":pk": s(g.publicKeySum()),
		},
	})
	if err != nil {
		return failed("mark registration complete", err)
	}
	return respond(http.StatusOK, vending.RegisterResponse{CertificateData: cd, RootCA: h.Config.RootCA.Preferred}), true
}

func publicKeyPEM(csr *x509.CertificateRequest) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(csr.PublicKey)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}
