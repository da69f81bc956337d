package rotation

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	pcatypes "github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// Steps are the per-host steps of the rotation workflow. Each function's main.go sets the clients and Config
// fields its step uses.
type Steps struct {
	Table    TableAPI
	Commands CommandAPI
	PCA      PCAAPI
	Topic    TopicAPI
	Config   Config
	Now      func() time.Time
}

func (s *Steps) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// SendCSR sends phase 1 (make key and CSR) to the host. Input: State with hostID and run. Output: the State with
// commandId. It first takes the host's lease for the run (ErrHostBusy when another run holds it); every value is
// checked against the document's patterns before SendCommand.
func (s *Steps) SendCSR(ctx context.Context, st State) (State, error) {
	h, err := s.loadHost(ctx, st.HostID)
	if err != nil {
		return st, err
	}
	if st.Run != "" {
		if err := s.takeLease(ctx, h.ID, st.Run); err != nil {
			return st, err
		}
	}
	params := map[string]string{
		ParamHostID:       h.ID,
		ParamKeyDir:       h.KeyDir,
		ParamKeyAlgorithm: s.Config.Documents.withDefaults().KeyAlgorithm,
	}
	id, err := s.send(ctx, CSRDocument(s.Config.Documents), s.Config.CSRDocument, h.ID, params, "Generating CSR for "+h.ID)
	if err != nil {
		return st, err
	}
	return State{HostID: h.ID, Run: st.Run, CommandID: id}, nil
}

// SendInstall sends phase 2 (test the certificate with aws_signing_helper, then make it live) to the host. Input:
// the State after GetCertificate. Output: the State with the new commandId.
func (s *Steps) SendInstall(ctx context.Context, st State) (State, error) {
	h, err := s.loadHost(ctx, st.HostID)
	if err != nil {
		return st, err
	}
	if st.Certificate == "" || st.Chain == "" || st.Serial == "" {
		return st, stepErr(ErrHostInvalid, "host %s: no certificate to install", h.ID)
	}
	params := map[string]string{
		ParamHostID:           h.ID,
		ParamCertDir:          h.CertDir,
		ParamKeyDir:           h.KeyDir,
		ParamCACertDir:        h.CACertDir,
		ParamSigningHelperDir: h.SigningHelperDir,
		ParamCertificate:      base64.StdEncoding.EncodeToString([]byte(st.Certificate)),
		ParamChain:            base64.StdEncoding.EncodeToString([]byte(st.Chain)),
		ParamSerial:           st.Serial,
		ParamProfileARN:       s.Config.ProfileARN,
		ParamRoleARN:          s.Config.RoleARN,
		ParamTrustAnchorARN:   s.Config.TrustAnchorARN,
	}
	id, err := s.send(ctx, InstallDocument(s.Config.Documents), s.Config.InstallDocument, h.ID, params,
		"Pushing cert for "+h.ID)
	if err != nil {
		return st, err
	}
	st.CommandID, st.Output = id, ""
	return st, nil
}

// send checks params exactly as SSM Agent will (Render) and sends the document to one host.
func (s *Steps) send(ctx context.Context, doc Document, docName, hostID string, params map[string]string,
	comment string) (string, error) {
	if _, _, err := Render(doc, params); err != nil {
		return "", stepErr(ErrHostInvalid, "host %s: %v", hostID, err)
	}
	p := make(map[string][]string, len(params))
	for k, v := range params {
		p[k] = []string{v}
	}
	out, err := s.Commands.SendCommand(ctx, &ssm.SendCommandInput{
		DocumentName:   aws.String(docName),
		InstanceIds:    []string{hostID},
		Parameters:     p,
		Comment:        aws.String(comment),
		TimeoutSeconds: aws.Int32(600), // delivery: a host must start the command within 10 minutes
	})
	if err != nil {
		return "", classify(fmt.Errorf("send command %s to %s: %w", docName, hostID, err))
	}
	if out.Command == nil || out.Command.CommandId == nil {
		return "", fmt.Errorf("send command %s to %s: no command id in the answer", docName, hostID)
	}
	slog.InfoContext(ctx, "command sent", "host", hostID, "document", docName, "commandId", *out.Command.CommandId)
	return *out.Command.CommandId, nil
}

// maxErrorText bounds the host's error output carried in an error message (and so in SNS and the table).
const maxErrorText = 1000

// CommandResult reads the last command's result. A command still pending, running or not yet visible
// (InvocationDoesNotExist right after SendCommand) is ErrCommandInProgress: the state machine waits and retries; no
// function polls. A failed, timed-out, cancelled or undeliverable command (an offline host) is ErrCommandFailed with
// the host's error output. Output: the State with output = the command's standard output.
func (s *Steps) CommandResult(ctx context.Context, st State) (State, error) {
	if err := CheckHostID(st.HostID); err != nil {
		return st, stepErr(ErrHostInvalid, "%v", err)
	}
	if st.CommandID == "" {
		return st, stepErr(ErrHostInvalid, "host %s: no command id", st.HostID)
	}
	out, err := s.Commands.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{
		CommandId: aws.String(st.CommandID), InstanceId: aws.String(st.HostID),
	})
	if err != nil {
		if errorCode(err) == "InvocationDoesNotExist" {
			return st, stepErr(ErrCommandInProgress, "command %s on %s is not visible yet", st.CommandID, st.HostID)
		}
		return st, classify(fmt.Errorf("get command %s on %s: %w", st.CommandID, st.HostID, err))
	}
	switch out.Status {
	case ssmtypes.CommandInvocationStatusSuccess:
		st.Output = aws.ToString(out.StandardOutputContent)
		return st, nil
	case ssmtypes.CommandInvocationStatusPending, ssmtypes.CommandInvocationStatusInProgress,
		ssmtypes.CommandInvocationStatusDelayed:
		return st, stepErr(ErrCommandInProgress, "command %s on %s is %s", st.CommandID, st.HostID, out.Status)
	}
	detail := strings.TrimSpace(aws.ToString(out.StandardErrorContent))
	if len(detail) > maxErrorText {
		detail = detail[len(detail)-maxErrorText:]
	}
	if detail == "" {
		detail = aws.ToString(out.StatusDetails)
	}
	return st, stepErr(ErrCommandFailed, "command %s on %s ended %s: %s", st.CommandID, st.HostID, out.Status, detail)
}

// CheckCSR checks the CSR the host printed: one PEM CSR with a valid signature, subject exactly CN = the host id,
// no requested names or extensions, and an RSA key of 2048 to 4096 bits or an EC P-256/P-384 key. Output: the State
// with csr and idempotencyToken (the output text dropped).
func (s *Steps) CheckCSR(ctx context.Context, st State) (State, error) {
	csrPEM, csr, err := ParseHostCSR(st.Output)
	if err != nil {
		return st, stepErr(ErrCSRRejected, "host %s: %v", st.HostID, err)
	}
	if err := CheckCSRFor(csr, st.HostID); err != nil {
		return st, stepErr(ErrCSRRejected, "host %s: %v", st.HostID, err)
	}
	return State{HostID: st.HostID, Run: st.Run, CSR: csrPEM, IdempotencyToken: IdempotencyToken(csr.Raw)}, nil
}

// ParseHostCSR finds the one PEM CSR in a command's output.
func ParseHostCSR(output string) (string, *x509.CertificateRequest, error) {
	rest := []byte(output)
	var found *pem.Block
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE REQUEST" {
			return "", nil, fmt.Errorf("output holds a PEM %q block, want only a CERTIFICATE REQUEST", b.Type)
		}
		if found != nil {
			return "", nil, errors.New("output holds more than one CSR")
		}
		found = b
	}
	if found == nil {
		return "", nil, errors.New("output holds no PEM CERTIFICATE REQUEST")
	}
	csr, err := x509.ParseCertificateRequest(found.Bytes)
	if err != nil {
		return "", nil, fmt.Errorf("parse CSR: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return "", nil, fmt.Errorf("CSR signature: %w", err)
	}
	return string(pem.EncodeToMemory(found)), csr, nil
}

// CheckCSRFor checks that csr names exactly hostID and carries a strong enough key.
func CheckCSRFor(csr *x509.CertificateRequest, hostID string) error {
	if csr.Subject.CommonName != hostID {
		return fmt.Errorf("CSR subject CN %q is not the host id %q", csr.Subject.CommonName, hostID)
	}
	if n := len(csr.Subject.Names); n != 1 {
		return fmt.Errorf("CSR subject %q has %d attributes, want only CN", csr.Subject.String(), n)
	}
	if len(csr.DNSNames)+len(csr.IPAddresses)+len(csr.URIs)+len(csr.EmailAddresses) > 0 {
		return errors.New("CSR requests subject alternative names")
	}
	return CheckKey(csr.PublicKey)
}

// CheckKey accepts RSA keys of 2048 to 4096 bits and EC keys on P-256 or P-384.
func CheckKey(pub any) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 || n > 4096 {
			return fmt.Errorf("RSA key of %d bits, want 2048 to 4096", n)
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return fmt.Errorf("EC key on %s, want P-256 or P-384", k.Curve.Params().Name)
		}
	default:
		return fmt.Errorf("key type %T, want RSA or EC", pub)
	}
	return nil
}

// Issue asks Private CA for the certificate. A retry first looks at the host item: if the certificate for this same
// CSR was already issued (its token recorded), that certificate is used and nothing is issued again. Otherwise
// IssueCertificate carries the CSR's idempotency token, which Private CA honours for 5 minutes, and the certificate
// ARN is recorded with the token before the step returns, and the issuance counted (best effort). A run that no
// longer holds the host's lease issues nothing (ErrHostBusy). Output: the State with certificateArn and issued.
//
// The SDK call, not the state machine's AWS SDK integration: the SDK retries Private CA's throttling (which the
// service model does not list, so Step Functions could only report it as the base AcmPca.AcmPcaException) and
// sends the CSR as its own blob encoding.
func (s *Steps) Issue(ctx context.Context, st State) (State, error) {
	h, err := s.loadHost(ctx, st.HostID)
	if err != nil {
		return st, err
	}
	if st.Run != "" && h.LeaseOwner != st.Run {
		return st, stepErr(ErrHostBusy, "host %s: run %s no longer holds its lease", h.ID, st.Run)
	}
	csrPEM, csr, err := ParseHostCSR(st.CSR)
	if err != nil {
		return st, stepErr(ErrCSRRejected, "host %s: %v", h.ID, err)
	}
	if err := CheckCSRFor(csr, h.ID); err != nil {
		return st, stepErr(ErrCSRRejected, "host %s: %v", h.ID, err)
	}
	token := IdempotencyToken(csr.Raw)
	if h.PendingCSRHash == token && h.PendingCertificateARN != "" {
		slog.InfoContext(ctx, "certificate already issued for this CSR", "host", h.ID, "certificateArn", h.PendingCertificateARN)
		return State{HostID: h.ID, Run: st.Run, CSR: csrPEM, IdempotencyToken: token, CertificateARN: h.PendingCertificateARN, Reused: true}, nil
	}
	out, err := s.PCA.IssueCertificate(ctx, &acmpca.IssueCertificateInput{
		CertificateAuthorityArn: aws.String(s.Config.PCAARN),
		Csr:                     []byte(csrPEM),
		SigningAlgorithm:        pcatypes.SigningAlgorithm(s.Config.SigningAlgorithm),
		TemplateArn:             aws.String(s.Config.TemplateARN),
		Validity:                &pcatypes.Validity{Type: pcatypes.ValidityPeriodTypeDays, Value: aws.Int64(int64(s.Config.ValidityDays))},
		IdempotencyToken:        aws.String(token),
	})
	if err != nil {
		err = fmt.Errorf("issue certificate for %s: %w", h.ID, err)
		switch errorCode(err) {
		case "InvalidArgsException", "InvalidArnException", "InvalidStateException", "MalformedCSRException",
			"ResourceNotFoundException", "LimitExceededException", "ValidationException":
			return st, stepErr(ErrIssuanceFailed, "%v", err)
		}
		return st, classify(err)
	}
	arn := aws.ToString(out.CertificateArn)
	_, err = s.Table.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(s.Config.TableName),
		Key:                 map[string]types.AttributeValue{AttrHostID: &types.AttributeValueMemberS{Value: h.ID}},
		UpdateExpression:    aws.String("SET #h = :h, #a = :a, #t = :t, #s = :s"),
		ConditionExpression: aws.String("attribute_exists(#id)"),
		ExpressionAttributeNames: map[string]string{
			"#h": AttrPendingCSRHash, "#a": AttrPendingCertARN, "#t": AttrPendingIssuedAt, "#s": AttrStatus, "#id": AttrHostID,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":h": &types.AttributeValueMemberS{Value: token},
			":a": &types.AttributeValueMemberS{Value: arn},
			":t": &types.AttributeValueMemberS{Value: s.now().Format(RenewAtLayout)},
			":s": &types.AttributeValueMemberS{Value: StatusPending},
		},
	})
	if err != nil {
		return st, classify(fmt.Errorf("record certificate %s for %s: %w", arn, h.ID, err))
	}
	slog.InfoContext(ctx, "certificate issued", "host", h.ID, "certificateArn", arn)
	return State{HostID: h.ID, Run: st.Run, CSR: csrPEM, IdempotencyToken: token, CertificateARN: arn, Issued: s.countIssuance(ctx)}, nil
}

// countIssuance adds one to the CA's issuance count and returns the new count; 0 when it could not (the count feeds
// an alarm and never stops a rotation).
func (s *Steps) countIssuance(ctx context.Context) int64 {
	out, err := s.Table.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.Config.TableName),
		Key:                       map[string]types.AttributeValue{AttrHostID: &types.AttributeValueMemberS{Value: IssuanceCounterKey}},
		UpdateExpression:          aws.String("ADD issued :one"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}},
		ReturnValues:              types.ReturnValueUpdatedNew,
	})
	if err != nil {
		slog.WarnContext(ctx, "count issuance", "error", err.Error())
		return 0
	}
	n, ok := out.Attributes["issued"].(*types.AttributeValueMemberN)
	if !ok {
		return 0
	}
	v, _ := strconv.ParseInt(n.Value, 10, 64)
	return v
}

// GetCertificate reads the issued certificate. Private CA answers RequestInProgressException until it has signed:
// that is ErrCertificateInProgress, for the state machine to wait and retry. The certificate must name the host and
// carry the CSR's public key. Output: the State with certificate, chain, serial and notAfter.
func (s *Steps) GetCertificate(ctx context.Context, st State) (State, error) {
	if err := CheckHostID(st.HostID); err != nil {
		return st, stepErr(ErrHostInvalid, "%v", err)
	}
	out, err := s.PCA.GetCertificate(ctx, &acmpca.GetCertificateInput{
		CertificateAuthorityArn: aws.String(s.Config.PCAARN),
		CertificateArn:          aws.String(st.CertificateARN),
	})
	if err != nil {
		err = fmt.Errorf("get certificate %s for %s: %w", st.CertificateARN, st.HostID, err)
		switch errorCode(err) {
		case "RequestInProgressException":
			return st, stepErr(ErrCertificateInProgress, "%v", err)
		case "RequestFailedException", "ResourceNotFoundException", "InvalidArnException", "InvalidStateException":
			return st, stepErr(ErrIssuanceFailed, "%v", err)
		}
		return st, classify(err)
	}
	certPEM := strings.TrimSpace(aws.ToString(out.Certificate)) + "\n"
	chainPEM := strings.TrimSpace(aws.ToString(out.CertificateChain)) + "\n"
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return st, stepErr(ErrIssuanceFailed, "certificate %s: %v", st.CertificateARN, err)
	}
	if cert.Subject.CommonName != st.HostID {
		return st, stepErr(ErrIssuanceFailed, "certificate %s names %q, not host %s", st.CertificateARN,
			cert.Subject.CommonName, st.HostID)
	}
	if _, csr, err := ParseHostCSR(st.CSR); err != nil || !publicKeyEqual(cert.PublicKey, csr.PublicKey) {
		return st, stepErr(ErrIssuanceFailed, "certificate %s does not carry the key of the host's CSR", st.CertificateARN)
	}
	if _, err := parseCertPEM(chainPEM); err != nil {
		return st, stepErr(ErrIssuanceFailed, "certificate %s chain: %v", st.CertificateARN, err)
	}
	st.Certificate, st.Chain = certPEM, chainPEM
	st.Serial = SerialHex(cert)
	st.NotAfter = cert.NotAfter.UTC().Format(RenewAtLayout)
	st.Output = ""
	return st, nil
}

// SerialHex is the sample's serial format: upper-case hex without leading zeros.
func SerialHex(c *x509.Certificate) string { return strings.ToUpper(c.SerialNumber.Text(16)) }

func parseCertPEM(s string) (*x509.Certificate, error) {
	b, _ := pem.Decode([]byte(s))
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE")
	}
	return x509.ParseCertificate(b.Bytes)
}

func publicKeyEqual(a, b any) bool {
	ka, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	if !ok {
		return false
	}
	return ka.Equal(b)
}

// RecordOutput is what Record returns for the execution's history.
type RecordOutput struct {
	HostID  string `json:"hostID"`
	Serial  string `json:"serial"`
	Expiry  string `json:"expiry"`
	RenewAt string `json:"renewAt"`
	Status  string `json:"status"`
}

// Record writes the installed certificate to the host item: serial, expiry (the sample's format), renewAt (the
// renewal schedule), the index shard, status, lastRotation; lastError and the pending issuance are removed. It updates
// only these attributes (the sample's v2 overwrote the whole item) and only an existing item.
func (s *Steps) Record(ctx context.Context, st State) (RecordOutput, error) {
	if err := CheckHostID(st.HostID); err != nil {
		return RecordOutput{}, stepErr(ErrHostInvalid, "%v", err)
	}
	cert, err := parseCertPEM(st.Certificate)
	if err != nil {
		return RecordOutput{}, stepErr(ErrHostInvalid, "host %s: certificate: %v", st.HostID, err)
	}
	sched, shards := s.Config.Schedule, s.Config.RenewShards
	if sched.Fraction == 0 {
		sched = DefaultSchedule
	}
	if shards <= 0 {
		shards = DefaultRenewShards
	}
	renewAt := sched.RenewAt(cert.NotBefore, cert.NotAfter, SerialHex(cert))
	out := RecordOutput{
		HostID: st.HostID, Serial: SerialHex(cert), Expiry: cert.NotAfter.UTC().Format(ExpiryLayout),
		RenewAt: renewAt.Format(RenewAtLayout), Status: StatusRotated,
	}
	_, err = s.Table.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.Config.TableName),
		Key:       map[string]types.AttributeValue{AttrHostID: &types.AttributeValueMemberS{Value: st.HostID}},
		UpdateExpression: aws.String("SET #serial = :serial, #expiry = :expiry, #renewAt = :renewAt, " +
			"#shard = :shard, #status = :status, #last = :last REMOVE #err, #ph, #pa, #pt, #lo, #lu"),
		ConditionExpression: aws.String("attribute_exists(#id)"),
		ExpressionAttributeNames: map[string]string{
			"#serial": AttrSerial, "#expiry": AttrExpiry, "#renewAt": AttrRenewAt, "#shard": AttrRenewShard,
			"#status": AttrStatus, "#last": AttrLastRotation, "#err": AttrLastError, "#ph": AttrPendingCSRHash,
			"#pa": AttrPendingCertARN, "#pt": AttrPendingIssuedAt, "#id": AttrHostID, "#lo": AttrLeaseOwner, "#lu": AttrLeaseUntil,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":serial":  &types.AttributeValueMemberS{Value: out.Serial},
			":expiry":  &types.AttributeValueMemberS{Value: out.Expiry},
			":renewAt": &types.AttributeValueMemberS{Value: out.RenewAt},
			":shard":   &types.AttributeValueMemberN{Value: fmt.Sprint(RenewShard(st.HostID, shards))},
			":status":  &types.AttributeValueMemberS{Value: StatusRotated},
			":last":    &types.AttributeValueMemberS{Value: s.now().Format(RenewAtLayout)},
		},
	})
	if err != nil {
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return RecordOutput{}, stepErr(ErrHostInvalid, "host %s was removed from table %s during rotation",
				st.HostID, s.Config.TableName)
		}
		return RecordOutput{}, classify(fmt.Errorf("record rotation of %s: %w", st.HostID, err))
	}
	slog.InfoContext(ctx, "rotation recorded", "host", st.HostID, "serial", out.Serial, "renewAt", out.RenewAt)
	return out, nil
}

// Failure is the input of NotifyFailure: the host, the run and the error a Catch clause put at $.error.
type Failure struct {
	HostID string    `json:"hostID"`
	Run    string    `json:"run,omitempty"`
	Error  TaskError `json:"error"`
}

// TaskError is Step Functions' error output: Error is the error name, Cause the task's error document (for a Lambda
// task, JSON with errorMessage and errorType) or text.
type TaskError struct {
	Error string `json:"Error"`
	Cause string `json:"Cause"`
}

// Message is the error's readable text: a Lambda cause's errorMessage, else the cause itself.
func (e TaskError) Message() string {
	var c struct {
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal([]byte(e.Cause), &c) == nil && c.ErrorMessage != "" {
		return c.ErrorMessage
	}
	if e.Cause != "" {
		return e.Cause
	}
	return e.Error
}

// Text is the error for a person: "<name>: <message>", the message alone when it already names the error, at most
// maxErrorText bytes, never the Lambda error document itself.
func (e TaskError) Text() string {
	text := e.Error + ": " + e.Message()
	if m := e.Message(); e.Error == "" || m == e.Error || strings.HasPrefix(m, e.Error+": ") {
		text = m
	}
	if len(text) > maxErrorText {
		text = text[:maxErrorText]
	}
	return text
}

// RunFailure is the input of NotifyRunFailure: the run's input (the hosts asked for, or none for a scheduled run)
// and the error a Catch clause put at $.error.
type RunFailure struct {
	Input json.RawMessage `json:"input"`
	Error TaskError       `json:"error"`
}

// maxNamedHosts bounds the host ids a run-failure message lists.
const maxNamedHosts = 10

// NotifyRunFailure publishes the failure of a whole run (its selection, or the Map's reading or writing failed):
// "Certificate rotation run failed for <hosts>: <error>: <message>", or "... for the due hosts: ..." for a
// scheduled run; a host id that is not valid is quoted.
func (s *Steps) NotifyRunFailure(ctx context.Context, f RunFailure) (FailureOutput, error) {
	var in SelectInput
	_ = json.Unmarshal(f.Input, &in) // an input that is not a SelectInput names no hosts
	hosts := in.HostIDs
	if in.HostID != "" {
		hosts = append([]string{in.HostID}, hosts...)
	}
	who := "the due hosts"
	if len(hosts) > 0 {
		names := make([]string, 0, min(len(hosts), maxNamedHosts))
		for _, h := range hosts[:min(len(hosts), maxNamedHosts)] {
			if !ValidHostID(h) {
				h = quoteShort(h)
			}
			names = append(names, h)
		}
		who = strings.Join(names, ", ")
		if len(hosts) > maxNamedHosts {
			who += fmt.Sprintf(" and %d more", len(hosts)-maxNamedHosts)
		}
	}
	msg := fmt.Sprintf("Certificate rotation run failed for %s: %s", who, f.Error.Text())
	if err := Notify(ctx, s.Topic, s.Config.TopicARN, msg); err != nil {
		return FailureOutput{}, err
	}
	slog.WarnContext(ctx, "rotation run failed", "hosts", who, "error", f.Error.Text())
	return FailureOutput{Status: StatusFailed, Message: msg}, nil
}

// FailureOutput is what NotifyFailure returns.
type FailureOutput struct {
	HostID  string `json:"hostID"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

// NotifyFailure records the failure on the host item (status FAILED, lastError; renewAt is kept, so the host stays
// due and the next run retries it) and publishes the sample's message "Certificate rotation failed for <host>: …".
// A host id that is not valid is reported without touching the table.
func (s *Steps) NotifyFailure(ctx context.Context, f Failure) (FailureOutput, error) {
	text := f.Error.Text()
	host := f.HostID
	if !ValidHostID(host) {
		host = fmt.Sprintf("%q", host)
	} else {
		_, err := s.Table.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                aws.String(s.Config.TableName),
			Key:                      map[string]types.AttributeValue{AttrHostID: &types.AttributeValueMemberS{Value: host}},
			UpdateExpression:         aws.String("SET #status = :status, #err = :err"),
			ConditionExpression:      aws.String("attribute_exists(#id)"),
			ExpressionAttributeNames: map[string]string{"#status": AttrStatus, "#err": AttrLastError, "#id": AttrHostID},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":status": &types.AttributeValueMemberS{Value: StatusFailed},
				":err":    &types.AttributeValueMemberS{Value: s.now().Format(RenewAtLayout) + " " + text},
			},
		})
		var ccf *types.ConditionalCheckFailedException
		if err != nil && !errors.As(err, &ccf) {
			// Still notify: the failure matters more than its record.
			slog.ErrorContext(ctx, "record failure", "host", host, "error", err.Error())
		}
		if f.Run != "" {
			s.releaseLease(ctx, host, f.Run)
		}
	}
	// The sample's message prefix, which operators' mail filters match.
	msg := fmt.Sprintf("Certificate rotation failed for %s: %s", host, text)
	if err := Notify(ctx, s.Topic, s.Config.TopicARN, msg); err != nil {
		return FailureOutput{}, err
	}
	slog.WarnContext(ctx, "rotation failed", "host", host, "error", text)
	return FailureOutput{HostID: f.HostID, Status: StatusFailed, Message: msg}, nil
}

// Notify publishes msg to the failure topic in the sample's form (MessageStructure json, the text as "default").
func Notify(ctx context.Context, topic TopicAPI, topicARN, msg string) error {
	body, err := json.Marshal(map[string]string{"default": msg})
	if err != nil {
		return fmt.Errorf("encode notification: %w", err)
	}
	_, err = topic.Publish(ctx, &sns.PublishInput{
		TopicArn:         aws.String(topicARN),
		Message:          aws.String(string(body)),
		MessageStructure: aws.String("json"),
	})
	if err != nil {
		return fmt.Errorf("publish to %s: %w", topicARN, err)
	}
	return nil
}
