package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/iotcert/iotcert/internal/pki"
)

// DefaultParameterPath is where issued certificates are remembered:
// <path>/<stack name>/<logical id>/<hash of the properties>, a String parameter holding the certificate PEM (public).
const DefaultParameterPath = "/iotcert/certsigner"

// parameterName names the record of the certificate issued for props by this custom resource.
func (h *Handler) parameterName(req Request, props signerProps) string {
	path := h.ParameterPath
	if path == "" {
		path = DefaultParameterPath
	}
	stack := "unknown-stack"
	// arn:aws:cloudformation:<region>:<account>:stack/<name>/<id>
	if parts := strings.Split(req.StackID, "/"); len(parts) == 3 && parts[1] != "" {
		stack = parts[1]
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(props.csr) + "\x00" + pki.DecodeTopic(props.allowedTopic) + "\x00" +
		strconv.Itoa(props.validityDays)))
	return strings.TrimSuffix(path, "/") + "/" + stack + "/" + req.LogicalResourceID + "/" + hex.EncodeToString(sum[:16])
}

// remember records the certificate issued for props.
func (h *Handler) remember(ctx context.Context, req Request, props signerProps, certPEM string) error {
	if h.SSM == nil {
		return nil
	}
	name := h.parameterName(req, props)
	_, err := h.SSM.PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String(name), Value: aws.String(certPEM), Type: ssmtypes.ParameterTypeString,
		Overwrite:   aws.Bool(true),
		Description: aws.String("Certificate issued by the cross-account signer for one set of its properties; lets an update roll back to it"),
	})
	if err != nil {
		return fmt.Errorf("remember issued certificate in parameter %s: %w", name, err)
	}
	return nil
}

// recall returns the certificate remembered for props, if AWS IoT still has it registered.
func (h *Handler) recall(ctx context.Context, req Request, props signerProps) (Response, bool, error) {
	if h.SSM == nil {
		return Response{}, false, nil
	}
	name := h.parameterName(req, props)
	out, err := h.SSM.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	var nf *ssmtypes.ParameterNotFound
	if errors.As(err, &nf) {
		return Response{}, false, nil
	}
	if err != nil {
		return Response{}, false, fmt.Errorf("read issued certificate in parameter %s: %w", name, err)
	}
	cert, err := pki.ParseCertificate([]byte(aws.ToString(out.Parameter.Value)))
	if err != nil {
		slog.Warn("parameter does not hold a certificate: ignoring it", "parameter", name, "err", err)
		return Response{}, false, nil
	}
	return h.existing(ctx, pki.CertificateID(cert.Raw))
}

// forget deletes the record of the certificate issued for props, if it is this resource's certificate (a later
// issue for the same properties would have replaced it). Failures are logged: a leftover record only lets a later
// update return a certificate that is still registered.
func (h *Handler) forget(ctx context.Context, log *slog.Logger, req Request, props signerProps) {
	if h.SSM == nil || !isCertificateID(req.PhysicalResourceID) {
		return
	}
	name := h.parameterName(req, props)
	out, err := h.SSM.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	var nf *ssmtypes.ParameterNotFound
	if errors.As(err, &nf) {
		return
	}
	if err != nil {
		log.Warn("read issued certificate record", "parameter", name, "err", err)
		return
	}
	if cert, err := pki.ParseCertificate([]byte(aws.ToString(out.Parameter.Value))); err != nil || pki.CertificateID(cert.Raw) != req.PhysicalResourceID {
		return
	}
	if _, err := h.SSM.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(name)}); err != nil && !errors.As(err, &nf) {
		log.Warn("delete issued certificate record", "parameter", name, "err", err)
	}
}

// detached lists what detachAll removed from a certificate.
type detached struct{ things, policies []string }

// Bounded wait for AWS IoT to stop reporting detached things (DetachThingPrincipal is asynchronous), so that
// CloudFormation's DeleteCertificate that follows does not fail with DeleteConflictException.
const (
	detachWaitAttempts = 6
	detachWaitFirst    = 200 * time.Millisecond
)

// detachAll detaches every thing and every policy attached to the certificate, then waits until AWS IoT no longer
// reports the things.
func (h *Handler) detachAll(ctx context.Context, certARN string) (detached, error) {
	var d detached
	things, err := h.principalThings(ctx, certARN)
	if err != nil {
		return d, err
	}
	for _, name := range things {
		_, err := h.IoT.DetachThingPrincipal(ctx, &iot.DetachThingPrincipalInput{ThingName: aws.String(name), Principal: aws.String(certARN)})
		if err != nil && !isNotFound(err) {
			return d, fmt.Errorf("detach thing %s from certificate: %w", name, err)
		}
		d.things = append(d.things, name)
	}
	var marker *string
	for {
		out, err := h.IoT.ListAttachedPolicies(ctx, &iot.ListAttachedPoliciesInput{Target: aws.String(certARN), Marker: marker})
		if err != nil {
			return d, fmt.Errorf("list policies attached to certificate: %w", err)
		}
		for _, p := range out.Policies {
			name := aws.ToString(p.PolicyName)
			if _, err := h.IoT.DetachPolicy(ctx, &iot.DetachPolicyInput{PolicyName: aws.String(name), Target: aws.String(certARN)}); err != nil {
				return d, fmt.Errorf("detach policy %s from certificate: %w", name, err)
			}
			d.policies = append(d.policies, name)
		}
		if aws.ToString(out.NextMarker) == "" {
			break
		}
		marker = out.NextMarker
	}
	if len(d.things) == 0 {
		return d, nil
	}
	wait := detachWaitFirst
	for range detachWaitAttempts {
		left, err := h.principalThings(ctx, certARN)
		if err != nil {
			return d, err
		}
		if len(left) == 0 {
			return d, nil
		}
		select {
		case <-ctx.Done():
			return d, ctx.Err()
		case <-time.After(wait):
		}
		wait *= 2
	}
	// CloudFormation retries the delete of the certificate; say what was still reported.
	slog.Warn("AWS IoT still reports things attached after the detach", "certificateArn", certARN)
	return d, nil
}

func (h *Handler) principalThings(ctx context.Context, certARN string) ([]string, error) {
	var names []string
	p := iot.NewListPrincipalThingsPaginator(h.IoT, &iot.ListPrincipalThingsInput{Principal: aws.String(certARN)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list things attached to certificate: %w", err)
		}
		names = append(names, out.Things...)
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

func isNotFound(err error) bool {
	var nf *types.ResourceNotFoundException
	return errors.As(err, &nf)
}
