package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	iottypes "github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/iotcert/iotcert/internal/vending"
)

// DefaultReplayWindow is how long after a key-mode registration the same single-use token may ask again, when the
// first answer was lost, and get a new key and certificate.
const DefaultReplayWindow = 10 * time.Minute

func (h *Handler) replayWindow() time.Duration {
	if h.ReplayWindow > 0 {
		return h.ReplayWindow
	}
	return DefaultReplayWindow
}

// reissue gives a device whose key-mode answer was lost a new key and certificate for its thing, and retires the
// certificate whose key it never received. The guard is REISSUE meanwhile, recording the new certificate, so a
// crash leaves nothing that the next request does not undo (abandonReissue).
func (g *registration) reissue(ctx context.Context, old guard) events.APIGatewayProxyResponse {
	h := g.h
	now := h.now()
	_, err := h.Table.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(h.TableName),
		Key:                      g.key(g.req.ThingName),
		UpdateExpression:         aws.String("SET #s = :reissue, requestId = :me, leaseUntil = :lease"),
		ConditionExpression:      aws.String("#s = :complete AND requestId = :old AND certificateId = :cid"),
		ExpressionAttributeNames: map[string]string{"#s": "status"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":reissue": s(vending.StatusReissue), ":me": s(g.requestID), ":lease": n(now.Add(h.lease()).Unix()),
			":complete": s(vending.StatusComplete), ":old": s(old.requestID), ":cid": s(old.certID),
		},
	})
	if isConditionFailed(err) {
		return fail(http.StatusConflict, vending.MsgInProgress)
	}
	if err != nil {
		g.log.ErrorContext(ctx, "take registration guard for a reissue", "err", err)
		return fail(http.StatusInternalServerError, msgRegisterFailed)
	}
	g.log.InfoContext(ctx, "key-mode retry after a lost answer: issuing a new certificate", "lostCertificateId", old.certID)
	resp, ok := g.reissueSteps(ctx, old)
	if !ok {
		if errs := g.undoNewCertificate(ctx); len(errs) > 0 {
			g.log.ErrorContext(ctx, "undo of the new certificate incomplete: the next request finishes it", "err", errors.Join(errs...))
			g.setLease(ctx, time.Unix(0, 0))
			return resp
		}
		_ = g.restoreComplete(ctx, old.certID, old.certARN, old.completedAt)
		return resp
	}
	// The device has its new certificate: retire the lost one. Failures leave it INACTIVE at worst, and logged.
	lost := &registration{h: h, log: g.log, req: g.req, thingType: g.thingType, takeover: true,
		certID: old.certID, certARN: old.certARN, principalAttached: true, policyAttached: true, activated: true}
	if errs := lost.undoCertificate(ctx); len(errs) > 0 {
		g.log.ErrorContext(ctx, "retire the certificate of the lost answer", "certificateId", old.certID, "err", errors.Join(errs...))
	}
	return resp
}

func (g *registration) reissueSteps(ctx context.Context, old guard) (events.APIGatewayProxyResponse, bool) {
	h, r := g.h, g.req
	failed := func(step string, err error) (events.APIGatewayProxyResponse, bool) {
		g.log.ErrorContext(ctx, "reissue failed", "step", step, "err", err)
		return fail(http.StatusInternalServerError, msgRegisterFailed), false
	}
	policy := h.Config.Policies[g.thingType]
	out, err := h.IoT.CreateKeysAndCertificate(ctx, &iot.CreateKeysAndCertificateInput{SetAsActive: false})
	if err != nil {
		return failed("create keys and certificate", err)
	}
	g.certID, g.certARN = aws.ToString(out.CertificateId), aws.ToString(out.CertificateArn)
	cd := vending.CertificateData{PEM: aws.ToString(out.CertificatePem), CertificateID: g.certID, CertificateARN: g.certARN}
	if out.KeyPair != nil {
		cd.KeyPair = vending.KeyPair{PublicKey: aws.ToString(out.KeyPair.PublicKey), PrivateKey: aws.ToString(out.KeyPair.PrivateKey)}
	}
	_, err = h.Table.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(h.TableName),
		Key:                      g.key(r.ThingName),
		UpdateExpression:         aws.String("SET newCertificateId = :cid, newCertificateArn = :arn"),
		ConditionExpression:      aws.String("#s = :reissue AND requestId = :me"),
		ExpressionAttributeNames: map[string]string{"#s": "status"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":cid": s(g.certID), ":arn": s(g.certARN), ":reissue": s(vending.StatusReissue), ":me": s(g.requestID),
		},
	})
	if err != nil {
		return failed("record new certificate", err)
	}
	if _, err := h.IoT.AttachPolicy(ctx, &iot.AttachPolicyInput{PolicyName: aws.String(policy), Target: aws.String(g.certARN)}); err != nil {
		return failed("attach policy", err)
	}
	g.policyAttached = true
	if _, err := h.IoT.AttachThingPrincipal(ctx, &iot.AttachThingPrincipalInput{ThingName: aws.String(r.ThingName), Principal: aws.String(g.certARN)}); err != nil {
		return failed("attach thing principal", err)
	}
	g.principalAttached = true
	if _, err := h.IoT.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: aws.String(g.certID), NewStatus: iottypes.CertificateStatusActive}); err != nil {
		return failed("activate certificate", err)
	}
	g.activated = true
	if err := g.restoreComplete(ctx, g.certID, g.certARN, h.now()); err != nil {
		return failed("mark registration complete", err)
	}
	return respond(http.StatusOK, vending.RegisterResponse{CertificateData: cd, RootCA: h.Config.RootCA.Preferred}), true
}

// restoreComplete makes this request's REISSUE guard COMPLETE again, naming the certificate now in place.
func (g *registration) restoreComplete(ctx context.Context, certID, certARN string, completedAt time.Time) error {
	_, err := g.h.Table.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(g.h.TableName),
		Key:       g.key(g.req.ThingName),
		UpdateExpression: aws.String("SET #s = :complete, certificateId = :cid, certificateArn = :arn, completedAt = :at " +
			"REMOVE leaseUntil, newCertificateId, newCertificateArn"),
		ConditionExpression:      aws.String("requestId = :me"),
		ExpressionAttributeNames: map[string]string{"#s": "status"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":complete": s(vending.StatusComplete), ":cid": s(certID), ":arn": s(certARN),
			":at": s(completedAt.UTC().Format(time.RFC3339)), ":me": s(g.requestID),
		},
	})
	if err != nil {
		g.log.ErrorContext(ctx, "restore completed registration guard", "err", err)
	}
	return err
}

// abandonReissue undoes the new certificate of a reissue that died, and puts the guard back to COMPLETE with the
// certificate that was in place.
func (g *registration) abandonReissue(ctx context.Context, old guard) error {
	h := g.h
	now := h.now()
	_, err := h.Table.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(h.TableName),
		Key:                      g.key(g.req.ThingName),
		UpdateExpression:         aws.String("SET requestId = :me, leaseUntil = :lease"),
		ConditionExpression:      aws.String("#s = :reissue AND requestId = :old AND leaseUntil < :now"),
		ExpressionAttributeNames: map[string]string{"#s": "status"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":me": s(g.requestID), ":lease": n(now.Add(h.lease()).Unix()), ":reissue": s(vending.StatusReissue),
			":old": s(old.requestID), ":now": n(now.Unix()),
		},
	})
	if isConditionFailed(err) {
		return nil // someone else got there first: read the guard again
	}
	if err != nil {
		return err
	}
	if old.newCertID != "" {
		prev := &registration{h: h, log: g.log, req: g.req, thingType: g.thingType, takeover: true,
			certID: old.newCertID, certARN: old.newCertARN, principalAttached: true, policyAttached: true, activated: true}
		if errs := prev.undoNewCertificate(ctx); len(errs) > 0 {
			g.setLease(ctx, time.Unix(0, 0))
			return errors.Join(errs...)
		}
	}
	return g.restoreComplete(ctx, old.certID, old.certARN, old.completedAt)
}

// undoNewCertificate removes a certificate a reissue made, leaving the thing and its other certificate alone.
func (g *registration) undoNewCertificate(ctx context.Context) []error {
	if g.certID == "" {
		return nil
	}
	return g.undoCertificate(ctx)
}

// undoCertificate detaches a certificate from the thing and its policy, deactivates and deletes it.
func (g *registration) undoCertificate(ctx context.Context) []error {
	var errs []error
	if g.principalAttached {
		_, err := g.h.IoT.DetachThingPrincipal(ctx, &iot.DetachThingPrincipalInput{ThingName: aws.String(g.req.ThingName), Principal: aws.String(g.certARN)})
		if err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("detach thing principal: %w", err))
		}
	}
	undo := &registration{h: g.h, log: g.log, req: g.req, thingType: g.thingType, takeover: g.takeover,
		certID: g.certID, certARN: g.certARN, policyAttached: g.policyAttached, activated: g.activated}
	return append(errs, undo.undo(ctx)...)
}
