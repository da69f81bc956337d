package main

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	iottypes "github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/iotcert/iotcert/internal/vending"
)

// guard is a registration guard item as read from the table.
type guard struct {
	status, requestID, tokenID string
	certID, certARN            string
	thingPlanned               bool
	publicKeySum               string
	leaseUntil                 int64
	completedAt                time.Time
	// newCertID and newCertARN: the certificate a key-mode reissue is making (status REISSUE).
	newCertID, newCertARN string
}

func parseGuard(item map[string]ddbtypes.AttributeValue) guard {
	g := guard{
		status: attrS(item, "status"), requestID: attrS(item, "requestId"), tokenID: attrS(item, "tokenId"),
		certID: attrS(item, "certificateId"), certARN: attrS(item, "certificateArn"),
		publicKeySum: attrS(item, "publicKeySha256"),
	}
	if v, ok := item["thingPlanned"].(*ddbtypes.AttributeValueMemberBOOL); ok {
		g.thingPlanned = v.Value
	}
	if v, ok := item["leaseUntil"].(*ddbtypes.AttributeValueMemberN); ok {
		g.leaseUntil, _ = strconv.ParseInt(v.Value, 10, 64)
	}
	g.completedAt, _ = time.Parse(time.RFC3339, attrS(item, "completedAt"))
	g.newCertID, g.newCertARN = attrS(item, "newCertificateId"), attrS(item, "newCertificateArn")
	return g
}

func (h *Handler) lease() time.Duration {
	if h.Lease > 0 {
		return h.Lease
	}
	return DefaultLease
}

func (h *Handler) guardTTL() time.Duration {
	if h.GuardTTL > 0 {
		return h.GuardTTL
	}
	return DefaultGuardTTL
}

// acquire takes the registration guard for the thing name.
//
//   - No guard: it is taken.
//   - PENDING or ROLLBACK past its lease (a crashed request, or a rollback AWS IoT did not let finish): it is taken
//     over, and what the previous request recorded (certificate, thing, single-use token) is removed first.
//   - PENDING or ROLLBACK within its lease: 409, another request is at work.
//   - COMPLETE and the thing exists: a retry of the same registration, whose first answer may have been lost, is
//     answered (see replay); anything else is refused with the seed's "Thing exists" message.
//   - REISSUE past its lease (a key-mode reissue that died): its new certificate is removed and the guard put back
//     to COMPLETE, then the request is treated as above.
//   - COMPLETE and the thing was deleted (by an operator): the stale record is cleared and the guard retaken.
func (g *registration) acquire(ctx context.Context) (events.APIGatewayProxyResponse, bool) {
	h := g.h
	for attempt := 0; attempt < 3; attempt++ {
		now := h.now()
		_, err := h.Table.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: aws.String(h.TableName),
			Item: map[string]ddbtypes.AttributeValue{
				vending.TableKey:     s(g.req.ThingName),
				"status":             s(vending.StatusPending),
				"requestId":          s(g.requestID),
				"tokenId":            s(g.who.tokenID),
				"thingTypeName":      s(g.thingType),
				"createdAt":          s(now.UTC().Format(time.RFC3339)),
				"leaseUntil":         n(now.Add(h.lease()).Unix()),
				vending.TTLAttribute: n(now.Add(h.guardTTL()).Unix()),
			},
			ConditionExpression: aws.String("attribute_not_exists(thingName)"),
		})
		if err == nil {
			return events.APIGatewayProxyResponse{}, true
		}
		if !isConditionFailed(err) {
			g.log.ErrorContext(ctx, "take registration guard", "err", err)
			return fail(http.StatusInternalServerError, msgRegisterFailed), false
		}
		out, err := h.Table.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: aws.String(h.TableName), Key: g.key(g.req.ThingName), ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			g.log.ErrorContext(ctx, "read registration guard", "err", err)
			return fail(http.StatusInternalServerError, msgRegisterFailed), false
		}
		old := parseGuard(out.Item)
		switch old.status {
		case "":
			continue // released in the meantime
		case vending.StatusPending, vending.StatusRollback:
			if old.leaseUntil >= now.Unix() {
				g.log.InfoContext(ctx, "registration already in progress")
				return fail(http.StatusConflict, vending.MsgInProgress), false
			}
			resp, ok, retry := g.takeOver(ctx, old)
			if retry {
				continue
			}
			return resp, ok
		case vending.StatusReissue:
			if old.leaseUntil >= now.Unix() {
				g.log.InfoContext(ctx, "registration already in progress")
				return fail(http.StatusConflict, vending.MsgInProgress), false
			}
			if err := g.abandonReissue(ctx, old); err != nil {
				g.log.ErrorContext(ctx, "undo an abandoned reissue", "err", err)
				return fail(http.StatusInternalServerError, msgRegisterFailed), false
			}
			continue
		}
		exists, err := g.thingExists(ctx)
		if err != nil {
			g.log.ErrorContext(ctx, "describe thing", "err", err)
			return fail(http.StatusInternalServerError, msgRegisterFailed), false
		}
		if exists {
			if resp, ok := g.replay(ctx, old); ok {
				return resp, false
			}
			g.log.InfoContext(ctx, "thing already registered")
			return fail(http.StatusBadRequest, vending.MsgThingExists), false
		}
		if attempt > 0 {
			g.log.InfoContext(ctx, "thing already registered")
			return fail(http.StatusBadRequest, vending.MsgThingExists), false
		}
		// The thing was deleted after its registration: clear the stale record, then retry.
		_, err = h.Table.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName:                 aws.String(h.TableName),
			Key:                       g.key(g.req.ThingName),
			ConditionExpression:       aws.String("#s = :complete AND requestId = :rid"),
			ExpressionAttributeNames:  map[string]string{"#s": "status"},
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":complete": s(vending.StatusComplete), ":rid": s(old.requestID)},
		})
		if err != nil && !isConditionFailed(err) {
			g.log.ErrorContext(ctx, "clear stale registration record", "err", err)
			return fail(http.StatusInternalServerError, msgRegisterFailed), false
		}
		g.log.InfoContext(ctx, "cleared the record of a deleted thing")
	}
	return fail(http.StatusConflict, vending.MsgInProgress), false
}

// takeOver takes a guard left by a crashed request or an unfinished rollback, removes what that request recorded,
// gives its single-use token back, and turns the guard into this request's PENDING guard. retry is true when
// another request changed the guard first.
func (g *registration) takeOver(ctx context.Context, old guard) (resp events.APIGatewayProxyResponse, ok, retry bool) {
	h := g.h
	now := h.now()
	_, err := h.Table.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(h.TableName),
		Key:                      g.key(g.req.ThingName),
		UpdateExpression:         aws.String("SET requestId = :me, #s = :rollback, leaseUntil = :lease REMOVE " + vending.TTLAttribute),
		ConditionExpression:      aws.String("requestId = :old AND #s = :status AND leaseUntil < :now"),
		ExpressionAttributeNames: map[string]string{"#s": "status"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":me": s(g.requestID), ":old": s(old.requestID), ":status": s(old.status), ":now": n(now.Unix()),
			":rollback": s(vending.StatusRollback), ":lease": n(now.Add(h.lease()).Unix()),
		},
	})
	if isConditionFailed(err) {
		return events.APIGatewayProxyResponse{}, false, true
	}
	if err != nil {
		g.log.ErrorContext(ctx, "take over registration guard", "err", err)
		return fail(http.StatusInternalServerError, msgRegisterFailed), false, false
	}
	g.log.InfoContext(ctx, "took over an abandoned registration", "previousRequestId", old.requestID,
		"previousStatus", old.status, "certificateId", old.certID)

	// What the previous request may have made, as recorded: undone with the tolerance of a takeover (a step it
	// never reached finds nothing to undo).
	prev := &registration{
		h: h, log: g.log.With("previousRequestId", old.requestID), req: g.req, thingType: g.thingType,
		requestID: old.requestID, who: caller{tokenID: old.tokenID, singleUse: true},
		takeover: true, tokenSpent: old.tokenID != "",
		certID: old.certID, certARN: old.certARN,
		thingCreated: old.thingPlanned, principalAttached: old.thingPlanned && old.certARN != "",
		policyAttached: old.certARN != "", activated: old.certARN != "",
	}
	if errs := prev.undo(ctx); len(errs) > 0 {
		// Still incomplete: leave the guard ROLLBACK, free for the next request at once.
		g.log.ErrorContext(ctx, "cleanup of an abandoned registration incomplete", "err", errors.Join(errs...))
		g.setLease(ctx, h.now().Add(-time.Second))
		return fail(http.StatusInternalServerError, msgRegisterFailed), false, false
	}
	_, err = h.Table.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(h.TableName),
		Key:       g.key(g.req.ThingName),
		UpdateExpression: aws.String("SET #s = :pending, tokenId = :tok, thingTypeName = :tt, createdAt = :at, " +
			vending.TTLAttribute + " = :ttl REMOVE certificateId, certificateArn, thingPlanned"),
		ConditionExpression:      aws.String("requestId = :me"),
		ExpressionAttributeNames: map[string]string{"#s": "status"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":pending": s(vending.StatusPending), ":tok": s(g.who.tokenID), ":tt": s(g.thingType),
			":at": s(now.UTC().Format(time.RFC3339)), ":ttl": n(now.Add(h.guardTTL()).Unix()), ":me": s(g.requestID),
		},
	})
	if err != nil {
		g.log.ErrorContext(ctx, "reset registration guard after cleanup", "err", err)
		return fail(http.StatusInternalServerError, msgRegisterFailed), false, false
	}
	g.log.InfoContext(ctx, "cleaned up an abandoned registration", "certificateId", old.certID)
	return events.APIGatewayProxyResponse{}, true, false
}

// setLease moves the lease of this request's guard, best effort.
func (g *registration) setLease(ctx context.Context, until time.Time) {
	_, err := g.h.Table.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(g.h.TableName),
		Key:                       g.key(g.req.ThingName),
		UpdateExpression:          aws.String("SET leaseUntil = :lease"),
		ConditionExpression:       aws.String("requestId = :me"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":lease": n(until.Unix()), ":me": s(g.requestID)},
	})
	if err != nil {
		g.log.ErrorContext(ctx, "release lease of registration guard", "err", err)
	}
}

// publicKeySum is the hex SHA-256 of the CSR's public key (CSR mode), or "-" in key mode.
func (g *registration) publicKeySum() string {
	if g.csr == nil {
		return "-"
	}
	der, err := x509.MarshalPKIXPublicKey(g.csr.PublicKey)
	if err != nil {
		return "-"
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// replay answers a retry of a completed registration whose answer may have been lost.
//
// CSR mode: the same token and the same public key get the certificate that was issued. The certificate is public
// and useless without the key, which never left the device.
//
// Key mode: the private key was never stored, so the answer cannot be repeated. The same single-use token (it
// names one device) within ReplayWindow of the completion gets a new key and certificate for the thing, and the
// lost certificate is retired. A multi-use token is refused: another device holding it could take the thing over.
func (g *registration) replay(ctx context.Context, old guard) (events.APIGatewayProxyResponse, bool) {
	if g.csr == nil {
		if !g.who.singleUse || old.tokenID != g.who.tokenID || old.certID == "" || old.completedAt.IsZero() ||
			g.h.now().After(old.completedAt.Add(g.h.replayWindow())) {
			return events.APIGatewayProxyResponse{}, false
		}
		return g.reissue(ctx, old), true
	}
	if old.tokenID != g.who.tokenID || old.certID == "" || old.publicKeySum != g.publicKeySum() {
		return events.APIGatewayProxyResponse{}, false
	}
	out, err := g.h.IoT.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: aws.String(old.certID)})
	if err != nil || out.CertificateDescription == nil || out.CertificateDescription.Status != iottypes.CertificateStatusActive {
		return events.APIGatewayProxyResponse{}, false
	}
	pub, err := publicKeyPEM(g.csr)
	if err != nil {
		return events.APIGatewayProxyResponse{}, false
	}
	d := out.CertificateDescription
	g.log.InfoContext(ctx, "repeated the answer of a completed registration", "certificateId", old.certID)
	return respond(http.StatusOK, vending.RegisterResponse{
		CertificateData: vending.CertificateData{
			PEM: aws.ToString(d.CertificatePem), KeyPair: vending.KeyPair{PublicKey: pub},
			CertificateID: aws.ToString(d.CertificateId), CertificateARN: aws.ToString(d.CertificateArn),
		},
		RootCA: g.h.Config.RootCA.Preferred,
	}), true
}

// spendToken records this use of the token in the token's own item, in one conditional write that also re-checks
// its state: a token revoked (by vend-token revoke), a single-use token already used, or an expired token is
// refused at once, whatever the authorizer cached.
func (g *registration) spendToken(ctx context.Context) (events.APIGatewayProxyResponse, bool) {
	h, who := g.h, g.who
	now := h.now()
	names := map[string]string{"#s": "status"}
	values := map[string]ddbtypes.AttributeValue{":tok": s(who.tokenID), ":thing": s(g.req.ThingName),
		":rid": s(g.requestID), ":at": s(now.UTC().Format(time.RFC3339))}
	var cond, update string
	if who.singleUse {
		update = "SET #s = :used, tokenId = :tok, usedBy = :thing, requestId = :rid, createdAt = :at"
		cond = "attribute_not_exists(#s)"
		values[":used"] = s(vending.StatusUsed)
	} else {
		update = "SET tokenId = :tok, lastUsedBy = :thing, lastUsedAt = :at, lastRequestId = :rid ADD uses :one"
		cond = "(attribute_not_exists(#s) OR #s <> :revoked)"
		values[":revoked"], values[":one"] = s(vending.StatusRevoked), n(1)
	}
	if who.expiresAt > 0 {
		cond += " AND :now < :exp"
		values[":now"], values[":exp"] = n(now.Unix()), n(who.expiresAt)
	}
	_, err := h.Table.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(h.TableName), Key: g.key(vending.TokenItemKey(who.tokenID)),
		UpdateExpression: aws.String(update), ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: names, ExpressionAttributeValues: values,
	})
	if err == nil {
		g.tokenSpent = who.singleUse
		return events.APIGatewayProxyResponse{}, true
	}
	if !isConditionFailed(err) {
		g.log.ErrorContext(ctx, "registration failed", "step", "spend token", "err", err)
		return fail(http.StatusInternalServerError, msgRegisterFailed), false
	}
	msg := vending.MsgTokenExpired
	out, err := h.Table.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(h.TableName), Key: g.key(vending.TokenItemKey(who.tokenID)), ConsistentRead: aws.Bool(true),
	})
	if err == nil {
		switch attrS(out.Item, "status") {
		case vending.StatusRevoked:
			msg = vending.MsgTokenRevoked
		case vending.StatusUsed:
			msg = vending.MsgTokenUsed
		}
	}
	g.log.InfoContext(ctx, "token refused", "reason", msg)
	return fail(http.StatusForbidden, msg), false
}

// recordCertificate writes the new certificate into the guard before anything else uses it, so that if this request
// dies, the next request for the name finds and removes it. From here on the guard records something to clean
// up, so it loses its TTL.
func (g *registration) recordCertificate(ctx context.Context) error {
	_, err := g.h.Table.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(g.h.TableName),
		Key:                      g.key(g.req.ThingName),
		UpdateExpression:         aws.String("SET certificateId = :cid, certificateArn = :arn, thingPlanned = :t REMOVE " + vending.TTLAttribute),
		ConditionExpression:      aws.String("#s = :pending AND requestId = :rid"),
		ExpressionAttributeNames: map[string]string{"#s": "status"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":cid": s(g.certID), ":arn": s(g.certARN), ":t": &ddbtypes.AttributeValueMemberBOOL{Value: true},
			":pending": s(vending.StatusPending), ":rid": s(g.requestID),
		},
	})
	return err
}

// rollback undoes what the registration made, gives the single-use token back and releases the guard. When AWS
// IoT does not let the cleanup finish, the guard becomes ROLLBACK with what is left recorded, and the next request
// for the name finishes it. It runs on a context of its own so that a cancelled request still cleans up.
func (g *registration) rollback(ctx context.Context) {
	limit := 30 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		limit = time.Until(dl)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), limit)
	defer cancel()
	errs := g.undo(ctx)
	if len(errs) == 0 || g.certID == "" {
		if err := g.deleteOwned(ctx, g.req.ThingName); err != nil {
			errs = append(errs, fmt.Errorf("release guard: %w", err))
		}
	} else if err := g.markRollback(ctx); err != nil {
		errs = append(errs, fmt.Errorf("mark guard for rollback: %w", err))
	}
	if len(errs) > 0 {
		g.log.ErrorContext(ctx, "rollback incomplete", "certificateId", g.certID, "err", errors.Join(errs...))
		return
	}
	g.log.InfoContext(ctx, "rolled back", "certificateId", g.certID)
}

// undo removes, in reverse order, what the registration made, and gives a single-use token back.
func (g *registration) undo(ctx context.Context) []error {
	h, name := g.h, g.req.ThingName
	var errs []error
	note := func(step string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", step, err))
		}
	}
	if g.principalAttached {
		_, err := h.IoT.DetachThingPrincipal(ctx, &iot.DetachThingPrincipalInput{ThingName: aws.String(name), Principal: aws.String(g.certARN)})
		if !(g.takeover && isNotFound(err)) {
			note("detach thing principal", err)
		}
	}
	if g.thingCreated {
		note("delete thing", g.deleteThing(ctx))
	}
	certGone := false
	if g.takeover && g.certID != "" {
		_, err := h.IoT.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: aws.String(g.certID)})
		certGone = isNotFound(err)
	}
	if g.policyAttached && !certGone {
		_, err := h.IoT.DetachPolicy(ctx, &iot.DetachPolicyInput{PolicyName: aws.String(h.Config.Policies[g.thingType]), Target: aws.String(g.certARN)})
		note("detach policy", err)
	}
	if g.activated && !certGone {
		_, err := h.IoT.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: aws.String(g.certID), NewStatus: iottypes.CertificateStatusInactive})
		if !isNotFound(err) {
			note("deactivate certificate", err)
		}
	}
	if g.certID != "" && !certGone {
		err := g.deleteCertificate(ctx)
		if !isNotFound(err) {
			note("delete certificate", err)
		}
	}
	if g.tokenSpent {
		note("give back token", g.giveBackToken(ctx))
	}
	return errs
}

// markRollback turns this request's guard into a ROLLBACK guard free for the next request, with what is left.
func (g *registration) markRollback(ctx context.Context) error {
	_, err := g.h.Table.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(g.h.TableName),
		Key:                      g.key(g.req.ThingName),
		UpdateExpression:         aws.String("SET #s = :rollback, leaseUntil = :now, certificateId = :cid, certificateArn = :arn, thingPlanned = :t REMOVE " + vending.TTLAttribute),
		ConditionExpression:      aws.String("requestId = :rid"),
		ExpressionAttributeNames: map[string]string{"#s": "status"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":rollback": s(vending.StatusRollback), ":now": n(g.h.now().Unix() - 1), ":cid": s(g.certID),
			":arn": s(g.certARN), ":t": &ddbtypes.AttributeValueMemberBOOL{Value: g.thingCreated}, ":rid": s(g.requestID),
		},
	})
	return err
}

// giveBackToken deletes the single-use token's USED record if this request wrote it.
func (g *registration) giveBackToken(ctx context.Context) error {
	_, err := g.h.Table.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(g.h.TableName),
		Key:                       g.key(vending.TokenItemKey(g.who.tokenID)),
		ConditionExpression:       aws.String("requestId = :rid AND #s = :used"),
		ExpressionAttributeNames:  map[string]string{"#s": "status"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":rid": s(g.requestID), ":used": s(vending.StatusUsed)},
	})
	if isConditionFailed(err) {
		return nil
	}
	return err
}

func isNotFound(err error) bool {
	var nf *iottypes.ResourceNotFoundException
	return errors.As(err, &nf)
}

// Back-off of the deletes that wait for a detach to propagate: AWS IoT documents DetachThingPrincipal as
// asynchronous, and DeleteThing and DeleteCertificate fail while the principal is still seen as attached.
const cleanupAttempts = 6

// cleanupBackoff is the first wait, doubled after each attempt: at most 3.1 s of waiting in all. A variable so
// that tests of an unfinished rollback need not wait that long.
var cleanupBackoff = 100 * time.Millisecond

// retryAttached calls op until it succeeds, fails for another reason than a principal still attached, the attempts
// run out or ctx ends.
func retryAttached(ctx context.Context, op func() error, attached func(error) bool) error {
	var err error
	for i := range cleanupAttempts {
		if err = op(); err == nil || !attached(err) || i == cleanupAttempts-1 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(cleanupBackoff << i):
		}
	}
	return err
}

// deleteThing deletes the thing, waiting with bounded back-off while its principal's detach propagates.
func (g *registration) deleteThing(ctx context.Context) error {
	return retryAttached(ctx, func() error {
		_, err := g.h.IoT.DeleteThing(ctx, &iot.DeleteThingInput{ThingName: aws.String(g.req.ThingName)})
		return err
	}, func(err error) bool {
		// AWS IoT answers InvalidRequestException "... is still attached to one or more principals".
		var invalid *iottypes.InvalidRequestException
		return errors.As(err, &invalid) && strings.Contains(invalid.ErrorMessage(), "attached")
	})
}

// deleteCertificate deletes the certificate, waiting with bounded back-off on DeleteConflictException.
func (g *registration) deleteCertificate(ctx context.Context) error {
	return retryAttached(ctx, func() error {
		_, err := g.h.IoT.DeleteCertificate(ctx, &iot.DeleteCertificateInput{CertificateId: aws.String(g.certID)})
		return err
	}, func(err error) bool {
		var conflict *iottypes.DeleteConflictException
		return errors.As(err, &conflict)
	})
}

// deleteOwned deletes a table item only if this request wrote it.
func (g *registration) deleteOwned(ctx context.Context, key string) error {
	_, err := g.h.Table.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(g.h.TableName),
		Key:                       g.key(key),
		ConditionExpression:       aws.String("requestId = :rid"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":rid": s(g.requestID)},
	})
	if isConditionFailed(err) {
		return nil
	}
	return err
}
