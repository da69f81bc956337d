package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	iottypes "github.com/aws/aws-sdk-go-v2/service/iot/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/iotcert/iotcert/internal/metrics"
	"github.com/iotcert/iotcert/internal/naming"
	"github.com/iotcert/iotcert/internal/pki"
)

// ResourceType is the custom resource type this handler serves.
const ResourceType = "Custom::ThingCertificate"

// IoTAPI is the part of the AWS IoT client the handler uses.
type IoTAPI interface {
	CreateCertificateFromCsr(context.Context, *iot.CreateCertificateFromCsrInput, ...func(*iot.Options)) (*iot.CreateCertificateFromCsrOutput, error)
	DescribeCertificate(context.Context, *iot.DescribeCertificateInput, ...func(*iot.Options)) (*iot.DescribeCertificateOutput, error)
	UpdateCertificate(context.Context, *iot.UpdateCertificateInput, ...func(*iot.Options)) (*iot.UpdateCertificateOutput, error)
	DeleteCertificate(context.Context, *iot.DeleteCertificateInput, ...func(*iot.Options)) (*iot.DeleteCertificateOutput, error)
	ListAttachedPolicies(context.Context, *iot.ListAttachedPoliciesInput, ...func(*iot.Options)) (*iot.ListAttachedPoliciesOutput, error)
	DetachPolicy(context.Context, *iot.DetachPolicyInput, ...func(*iot.Options)) (*iot.DetachPolicyOutput, error)
	ListPrincipalThings(context.Context, *iot.ListPrincipalThingsInput, ...func(*iot.Options)) (*iot.ListPrincipalThingsOutput, error)
	DetachThingPrincipal(context.Context, *iot.DetachThingPrincipalInput, ...func(*iot.Options)) (*iot.DetachThingPrincipalOutput, error)
	// Generations (generation.go): a replaced certificate kept for its grace period is attached again.
	AttachPolicy(context.Context, *iot.AttachPolicyInput, ...func(*iot.Options)) (*iot.AttachPolicyOutput, error)
	AttachThingPrincipal(context.Context, *iot.AttachThingPrincipalInput, ...func(*iot.Options)) (*iot.AttachThingPrincipalOutput, error)
}

// SecretsAPI is the part of the Secrets Manager client the handler uses.
type SecretsAPI interface {
	GetSecretValue(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	PutSecretValue(context.Context, *secretsmanager.PutSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
}

// Handler is the onEvent handler of the Custom::ThingCertificate resource, behind the CDK Provider framework.
//
// Create makes a key pair and a CSR (CN = thing name) in memory, has AWS IoT sign the CSR
// (CreateCertificateFromCsr, inactive), writes {"certificateId","certificatePem","csr","privateKey"} to the
// secret SecretId, and only then activates the certificate. The physical id is the certificate id; Data holds
// CertificateId and CertificateArn only. Any failure once the certificate exists deletes it again, so no
// active certificate is ever left without its key stored.
//
// A resent Create or Update (same properties) finds its earlier work in the secret and returns it, activating
// the certificate if the earlier attempt stopped before that: one request makes at most one certificate.
//
// Update keeps the certificate while ThingName, KeyAlgorithm and SecretId are unchanged (Data comes from
// DescribeCertificate). A change to any of them issues a new certificate (new physical id); the framework then
// sends Delete for the old one. If the secret no longer holds the key of the kept certificate (someone
// overwrote it), Update still keeps the certificate, because devices may hold the key, and logs a warning:
// change KeyAlgorithm (or the secret) to re-issue. If the certificate itself is gone, Update issues a new one.
// An update rollback finds the previous certificate in the secret's AWSPREVIOUS version and restores it.
//
// Delete deactivates and deletes the certificate, detaching leftover policies and things if AWS IoT refuses
// with DeleteConflictException. A certificate that is already gone, or a physical id that is not a certificate
// id (a failed Create leaves the framework's default id), is not an error.
//
// Logs hold steps and certificate ids, never the private key or the secret value.
type Handler struct {
	IoT     IoTAPI
	Secrets SecretsAPI
	// Log receives the handler's log records. Default: slog.Default().
	Log *slog.Logger
	// ConflictRetryDelay is the first pause between DeleteCertificate attempts while detachments propagate
	// (AWS IoT detaches things asynchronously). Default: 1s, doubled on each attempt.
	ConflictRetryDelay time.Duration
	// Now is the clock of the grace period (generation.go). Default: time.Now.
	Now func() time.Time
}

// Event is the request the Provider framework passes to onEvent.
type Event struct {
	RequestType           string      `json:"RequestType"` // Create, Update or Delete
	ResourceType          string      `json:"ResourceType"`
	RequestID             string      `json:"RequestId"`
	StackID               string      `json:"StackId"`
	LogicalResourceID     string      `json:"LogicalResourceId"`
	PhysicalResourceID    string      `json:"PhysicalResourceId,omitempty"`
	ResourceProperties    Properties  `json:"ResourceProperties"`
	OldResourceProperties *Properties `json:"OldResourceProperties,omitempty"`
	// SecretIDs are the secrets of a scheduled Retire request (generation.go).
	SecretIDs []string `json:"SecretIds,omitempty"`
}

// Properties are the resource's properties.
type Properties struct {
	ServiceToken string `json:"ServiceToken,omitempty"`
	// ThingName is the certificate's subject CN. Required.
	ThingName string `json:"ThingName"`
	// KeyAlgorithm is "EC_P256" (default), "EC_P384" or "RSA_2048".
	KeyAlgorithm string `json:"KeyAlgorithm,omitempty"`
	// SecretId is the ARN of the secret that receives the key and certificate. Required.
	SecretID string `json:"SecretId"`
	// Generation of the certificate ("1" when empty): a change issues a new key and certificate.
	Generation string `json:"Generation,omitempty"`
	// GraceDays a replaced certificate stays ACTIVE ("0" when empty: deleted with the update).
	GraceDays string `json:"GraceDays,omitempty"`
	// PolicyName is attached again to a replaced certificate kept for the grace period.
	PolicyName string `json:"PolicyName,omitempty"`
}

// Response is what onEvent returns to the framework.
type Response struct {
	PhysicalResourceID string            `json:"PhysicalResourceId"`
	Data               map[string]string `json:"Data,omitempty"`
}

// SecretValue is the JSON document kept in the secret. The key names are a contract: the seed's README
// reads the key with `jq -r ".privateKey"`.
type SecretValue struct {
	CertificateID  string `json:"certificateId"`
	CertificatePEM string `json:"certificatePem"`
	CSR            string `json:"csr"`
	PrivateKey     string `json:"privateKey"`
	// Generation of the certificate (absent reads as 1, so a first generation keeps the seed's four keys); Superseded
	// lists replaced certificates in their grace period.
	Generation int          `json:"generation,omitempty"`
	Superseded []Superseded `json:"superseded,omitempty"`
	// GraceDays and PolicyName of the generation that wrote the secret: how a certificate it replaces is kept.
	GraceDays  int    `json:"graceDays,omitempty"`
	PolicyName string `json:"policyName,omitempty"`
}

var certIDRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (p Properties) normalize() (Properties, error) {
	if p.KeyAlgorithm == "" {
		p.KeyAlgorithm = pki.KeyECP256
	}
	if !naming.ThingNameRE.MatchString(p.ThingName) {
		return p, fmt.Errorf("ThingName %q is not valid: want 1 to 128 characters of [a-zA-Z0-9:_-]", p.ThingName)
	}
	// The thing name becomes the certificate's CN, which X.509 bounds at 64 characters.
	if err := pki.CheckDeviceName(p.ThingName); err != nil {
		return p, fmt.Errorf("ThingName: %w", err)
	}
	switch p.KeyAlgorithm {
	case pki.KeyECP256, pki.KeyECP384, pki.KeyRSA2048:
	default:
		return p, fmt.Errorf("KeyAlgorithm %q is not valid: want %q, %q or %q", p.KeyAlgorithm, pki.KeyECP256, pki.KeyECP384, pki.KeyRSA2048)
	}
	if p.SecretID == "" {
		return p, errors.New("SecretId is required")
	}
	if _, err := generation(p.Generation); err != nil {
		return p, err
	}
	if _, err := graceDays(p.GraceDays); err != nil {
		return p, err
	}
	return p, nil
}

func (h *Handler) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}

// Handle serves one onEvent request. A returned error becomes the FAILED reason CloudFormation shows: it is
// one line and holds no key material.
func (h *Handler) Handle(ctx context.Context, ev Event) (Response, error) {
	resp, err := h.handle(ctx, ev)
	if err != nil {
		msg := oneLine(err.Error())
		h.log().Error("request failed", "requestType", ev.RequestType, "logicalResourceId", ev.LogicalResourceID,
			"requestId", ev.RequestID, "error", msg)
		return Response{}, errors.New(msg)
	}
	return resp, nil
}

func (h *Handler) handle(ctx context.Context, ev Event) (Response, error) {
	log := h.log().With("requestType", ev.RequestType, "logicalResourceId", ev.LogicalResourceID,
		"requestId", ev.RequestID, "physicalResourceId", ev.PhysicalResourceID)
	switch ev.RequestType {
	case "Create", "Update":
		if ev.ResourceType != ResourceType {
			return Response{}, fmt.Errorf("resource type %q is not served here, want %q", ev.ResourceType, ResourceType)
		}
		p, err := ev.ResourceProperties.normalize()
		if err != nil {
			return Response{}, fmt.Errorf("invalid properties: %w", err)
		}
		log = log.With("thingName", p.ThingName, "keyAlgorithm", p.KeyAlgorithm)
		if ev.RequestType == "Create" {
			return h.create(ctx, log, ev.RequestID, p)
		}
		return h.update(ctx, log, ev, p)
	case "Delete":
		return h.delete(ctx, log, ev.PhysicalResourceID, ev.ResourceProperties)
	case "Retire":
		return Response{}, h.HandleRetire(ctx, RetireRequest{RequestType: ev.RequestType, SecretIDs: ev.SecretIDs})
	default:
		return Response{}, fmt.Errorf("unknown request type %q", ev.RequestType)
	}
}

func certResponse(id, arn string) Response {
	return Response{PhysicalResourceID: id, Data: map[string]string{"CertificateId": id, "CertificateArn": arn}}
}

func (h *Handler) update(ctx context.Context, log *slog.Logger, ev Event, p Properties) (Response, error) {
	var old Properties
	if ev.OldResourceProperties != nil {
		old = *ev.OldResourceProperties
	}
	if old.KeyAlgorithm == "" {
		old.KeyAlgorithm = pki.KeyECP256
	}
	oldGen, _ := generation(old.Generation)
	newGen, _ := generation(p.Generation)
	if oldGen != newGen {
		log.Info("certificate generation changed: issuing a new key and certificate", "oldGeneration", oldGen, "generation", newGen)
		return h.create(ctx, log, ev.RequestID, p)
	}
	if old.ThingName != p.ThingName || old.KeyAlgorithm != p.KeyAlgorithm || old.SecretID != p.SecretID || !certIDRE.MatchString(ev.PhysicalResourceID) {
		log.Info("properties changed: issuing a new certificate", "oldThingName", old.ThingName, "oldKeyAlgorithm", old.KeyAlgorithm)
		return h.create(ctx, log, ev.RequestID, p)
	}
	id := ev.PhysicalResourceID
	out, err := h.IoT.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: aws.String(id)})
	var nf *iottypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		log.Warn("certificate no longer exists: issuing a new one", "certificateId", id)
		return h.create(ctx, log, ev.RequestID, p)
	}
	if err != nil {
		return Response{}, fmt.Errorf("describe certificate %s: %w", id, err)
	}
	d := out.CertificateDescription
	if d == nil {
		return Response{}, fmt.Errorf("describe certificate %s: empty description", id)
	}
	sv, err := h.readSecret(ctx, p.SecretID, "AWSCURRENT")
	switch {
	case err != nil:
		return Response{}, err
	case sv == nil || sv.CertificateID != id || !sv.matches(p, aws.ToString(d.CertificatePem)):
		log.Warn("secret does not hold the key of this certificate; keeping the certificate (change KeyAlgorithm or the secret to re-issue)",
			"certificateId", id)
	}
	log.Info("certificate kept", "certificateId", id, "status", string(d.Status))
	return certResponse(id, aws.ToString(d.CertificateArn)), nil
}

// create returns the certificate a previous attempt of this request left in the secret, or issues a new one.
func (h *Handler) create(ctx context.Context, log *slog.Logger, requestID string, p Properties) (Response, error) {
	if resp, ok, err := h.reuse(ctx, log, requestID, p); err != nil || ok {
		return resp, err
	}
	key, err := pki.GenerateKey(p.KeyAlgorithm)
	if err != nil {
		return Response{}, fmt.Errorf("generate key: %w", err)
	}
	csr, err := pki.NewDeviceCSR(key, p.ThingName)
	if err != nil {
		return Response{}, fmt.Errorf("create csr: %w", err)
	}
	keyPEM, err := pki.EncodePrivateKey(key)
	if err != nil {
		return Response{}, fmt.Errorf("encode key: %w", err)
	}
	out, err := h.IoT.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{
		CertificateSigningRequest: aws.String(string(csr)),
		SetAsActive:               false,
	})
	if err != nil {
		return Response{}, fmt.Errorf("create certificate from csr: %w", err)
	}
	id, arn := aws.ToString(out.CertificateId), aws.ToString(out.CertificateArn)
	log = log.With("certificateId", id)
	log.Info("certificate created (inactive)")

	sv := SecretValue{CertificateID: id, CertificatePEM: aws.ToString(out.CertificatePem), CSR: string(csr), PrivateKey: string(keyPEM)}
	if gen, _ := generation(p.Generation); gen > 1 {
		sv.Generation = gen // generation 1 keeps the seed's four keys
		sv.GraceDays, _ = graceDays(p.GraceDays)
		sv.PolicyName = p.PolicyName
	}
	if prev, err := h.readSecret(ctx, p.SecretID, "AWSCURRENT"); err == nil && prev != nil {
		sv.Superseded = prev.Superseded // replaced certificates still in their grace period stay listed
	}
	if err := h.putSecret(ctx, requestID, p.SecretID, sv); err != nil {
		return Response{}, h.discard(ctx, log, id, err)
	}
	log.Info("key and certificate stored in secret")
	if _, err := h.IoT.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: aws.String(id), NewStatus: iottypes.CertificateStatusActive}); err != nil {
		return Response{}, h.discard(ctx, log, id, fmt.Errorf("activate certificate %s: %w", id, err))
	}
	log.Info("certificate activated")
	metrics.Inc(metrics.CapB, metrics.CertificatesIssued)
	return certResponse(id, arn), nil
}

// reuse looks in the secret (current, then previous version) for a certificate issued for these properties
// that still exists, makes it current and active, and returns it.
func (h *Handler) reuse(ctx context.Context, log *slog.Logger, requestID string, p Properties) (Response, bool, error) {
	for _, stage := range []string{"AWSCURRENT", "AWSPREVIOUS"} {
		sv, err := h.readSecret(ctx, p.SecretID, stage)
		if err != nil {
			return Response{}, false, err
		}
		if sv == nil || !sv.matches(p, sv.CertificatePEM) || !sameGeneration(sv.Generation, p.Generation) {
			continue
		}
		out, err := h.IoT.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: aws.String(sv.CertificateID)})
		var nf *iottypes.ResourceNotFoundException
		if errors.As(err, &nf) {
			continue
		}
		if err != nil {
			return Response{}, false, fmt.Errorf("describe certificate %s: %w", sv.CertificateID, err)
		}
		d := out.CertificateDescription
		if d == nil || aws.ToString(d.CertificatePem) != sv.CertificatePEM {
			continue
		}
		switch d.Status {
		case iottypes.CertificateStatusActive, iottypes.CertificateStatusInactive:
		default:
			continue // revoked or in transfer: not usable
		}
		id := sv.CertificateID
		l := log.With("certificateId", id, "secretStage", stage)
		if stage != "AWSCURRENT" {
			if err := h.putSecret(ctx, requestID, p.SecretID, *sv); err != nil {
				return Response{}, false, err
			}
			l.Info("previous key and certificate restored as current")
		}
		if d.Status != iottypes.CertificateStatusActive {
			if _, err := h.IoT.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: aws.String(id), NewStatus: iottypes.CertificateStatusActive}); err != nil {
				return Response{}, false, fmt.Errorf("activate certificate %s: %w", id, err)
			}
			l.Info("certificate activated")
		}
		l.Info("certificate from an earlier attempt reused")
		return certResponse(id, aws.ToString(d.CertificateArn)), true, nil
	}
	return Response{}, false, nil
}

// readSecret returns the secret's JSON at the given stage, or nil when the secret (stage) holds something
// else, such as the random placeholder CloudFormation creates the secret with.
func (h *Handler) readSecret(ctx context.Context, secretID, stage string) (*SecretValue, error) {
	out, err := h.Secrets.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretID), VersionStage: aws.String(stage)})
	var nf *smtypes.ResourceNotFoundException
	if errors.As(err, &nf) && stage != "AWSCURRENT" {
		return nil, nil // no previous version yet
	}
	if err != nil {
		return nil, fmt.Errorf("read secret %s (%s): %w", secretID, stage, err)
	}
	var sv SecretValue
	if json.Unmarshal([]byte(aws.ToString(out.SecretString)), &sv) != nil || !certIDRE.MatchString(sv.CertificateID) {
		return nil, nil
	}
	return &sv, nil
}

// matches reports whether the secret holds a key of p's algorithm whose public key is the one in certPEM,
// and a CSR for p's thing name.
func (sv *SecretValue) matches(p Properties, certPEM string) bool {
	key, err := pki.ParsePrivateKey([]byte(sv.PrivateKey))
	if err != nil || keyAlgorithm(key) != p.KeyAlgorithm {
		return false
	}
	csr, err := pki.ParseCSR([]byte(sv.CSR))
	if err != nil || csr.Subject.CommonName != p.ThingName {
		return false
	}
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil {
		return false
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return false
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

func keyAlgorithm(k crypto.Signer) string {
	switch pub := k.Public().(type) {
	case *ecdsa.PublicKey:
		switch pub.Curve {
		case elliptic.P256():
			return pki.KeyECP256
		case elliptic.P384():
			return pki.KeyECP384
		}
	case *rsa.PublicKey:
		if pub.N.BitLen() == 2048 {
			return pki.KeyRSA2048
		}
	}
	return ""
}

// putSecret writes sv as the secret's current version. The ClientRequestToken is derived from the request id
// and the certificate id, so a retried write of the same certificate is idempotent, while a new certificate
// for the same request (after a failed attempt) gets a version of its own.
func (h *Handler) putSecret(ctx context.Context, requestID, secretID string, sv SecretValue) error {
	b, err := json.Marshal(sv)
	if err != nil {
		return fmt.Errorf("encode secret value: %w", err)
	}
	sum := sha256.Sum256([]byte(requestID + "\x00" + sv.CertificateID))
	_, err = h.Secrets.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId:           aws.String(secretID),
		SecretString:       aws.String(string(b)),
		ClientRequestToken: aws.String(hex.EncodeToString(sum[:])),
	})
	if err != nil {
		return fmt.Errorf("store key in secret %s: %w", secretID, err)
	}
	return nil
}

// discard deactivates and deletes a certificate after a failed Create, and returns cause with any cleanup
// failure appended (on one line). It runs even when ctx is already cancelled.
func (h *Handler) discard(ctx context.Context, log *slog.Logger, id string, cause error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	log.Error("create failed: deleting the new certificate", "error", cause.Error())
	if err := h.deleteCertificate(ctx, log, id); err != nil {
		log.Error("certificate cleanup failed", "error", err.Error())
		return fmt.Errorf("%w (cleanup of certificate %s failed: %v)", cause, id, err)
	}
	return cause
}

func (h *Handler) delete(ctx context.Context, log *slog.Logger, id string, p Properties) (Response, error) {
	resp := Response{PhysicalResourceID: id}
	if !certIDRE.MatchString(id) {
		log.Info("physical id is not a certificate id: nothing to delete")
		return resp, nil
	}
	if kept, err := h.keepSuperseded(ctx, log, id, p, h.now()); err != nil || kept {
		return resp, err
	}
	if p.SecretID != "" {
		// The stack's own deletion: the certificates kept for their grace period go with it.
		if sv, err := h.readSecret(ctx, p.SecretID, "AWSCURRENT"); err == nil && sv != nil && sv.CertificateID == id {
			if err := h.retire(ctx, log, p.SecretID, h.now(), true); err != nil {
				return Response{}, err
			}
		}
	}
	if err := h.deleteCertificate(ctx, log.With("certificateId", id), id); err != nil {
		return Response{}, err
	}
	return resp, nil
}

// deleteCertificate makes the certificate INACTIVE and deletes it, detaching whatever still holds it.
// A certificate that does not exist counts as deleted.
func (h *Handler) deleteCertificate(ctx context.Context, log *slog.Logger, id string) error {
	var nf *iottypes.ResourceNotFoundException
	_, err := h.IoT.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: aws.String(id), NewStatus: iottypes.CertificateStatusInactive})
	var (
		cse           *iottypes.CertificateStateException
		deactivateErr error
	)
	switch {
	case errors.As(err, &nf):
		log.Info("certificate already gone")
		return nil
	case errors.As(err, &cse):
		// e.g. REVOKED: it cannot be made INACTIVE, but it can be deleted.
		log.Info("certificate state kept", "reason", cse.ErrorMessage())
	case err != nil:
		// Still try to delete: a certificate that was never activated needs no deactivation.
		deactivateErr = fmt.Errorf("deactivate certificate %s: %w", id, err)
		log.Warn("deactivation failed", "error", err.Error())
	default:
		log.Info("certificate deactivated")
	}
	delay := h.ConflictRetryDelay
	if delay <= 0 {
		delay = time.Second
	}
	const attempts = 6
	for i := 0; ; i++ {
		_, err := h.IoT.DeleteCertificate(ctx, &iot.DeleteCertificateInput{CertificateId: aws.String(id)})
		var conflict *iottypes.DeleteConflictException
		switch {
		case err == nil:
			log.Info("certificate deleted")
			return nil
		case errors.As(err, &nf):
			log.Info("certificate already gone")
			return nil
		case deactivateErr != nil:
			return fmt.Errorf("%w; delete certificate %s: %w", deactivateErr, id, err)
		case !errors.As(err, &conflict) || i == attempts-1:
			return fmt.Errorf("delete certificate %s: %w", id, err)
		}
		log.Info("certificate still attached: detaching", "attempt", i+1)
		if err := h.detachAll(ctx, log, id); err != nil {
			return err
		}
		if i > 0 {
			// Thing detachment propagates asynchronously in AWS IoT.
			select {
			case <-ctx.Done():
				return fmt.Errorf("delete certificate %s: %w", id, ctx.Err())
			case <-time.After(delay):
			}
			delay *= 2
		}
	}
}

// detachAll detaches every policy and thing from the certificate.
func (h *Handler) detachAll(ctx context.Context, log *slog.Logger, id string) error {
	out, err := h.IoT.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: aws.String(id)})
	if err != nil {
		return fmt.Errorf("describe certificate %s: %w", id, err)
	}
	arn := aws.ToString(out.CertificateDescription.CertificateArn)
	policies := iot.NewListAttachedPoliciesPaginator(h.IoT, &iot.ListAttachedPoliciesInput{Target: aws.String(arn), Recursive: false})
	for policies.HasMorePages() {
		page, err := policies.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list policies of certificate %s: %w", id, err)
		}
		for _, p := range page.Policies {
			name := aws.ToString(p.PolicyName)
			if _, err := h.IoT.DetachPolicy(ctx, &iot.DetachPolicyInput{PolicyName: aws.String(name), Target: aws.String(arn)}); err != nil {
				// DetachPolicy has no typed not-found answer: a failure here is reported, and CloudFormation's retry
				// of the delete lists the policies again.
				return fmt.Errorf("detach policy %s from certificate %s: %w", name, id, err)
			}
			log.Info("policy detached", "policyName", name)
		}
	}
	things := iot.NewListPrincipalThingsPaginator(h.IoT, &iot.ListPrincipalThingsInput{Principal: aws.String(arn)})
	for things.HasMorePages() {
		page, err := things.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list things of certificate %s: %w", id, err)
		}
		for _, name := range page.Things {
			if _, err := h.IoT.DetachThingPrincipal(ctx, &iot.DetachThingPrincipalInput{ThingName: aws.String(name), Principal: aws.String(arn)}); err != nil && !isNotFound(err) {
				return fmt.Errorf("detach thing %s from certificate %s: %w", name, id, err)
			}
			log.Info("thing detached", "thingName", name)
		}
	}
	return nil
}

func isNotFound(err error) bool {
	var nf *iottypes.ResourceNotFoundException
	return errors.As(err, &nf)
}

// oneLine keeps an error reason on one line, as CloudFormation shows it.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
