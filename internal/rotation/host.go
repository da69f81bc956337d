package rotation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Host is one inventory item, with the directories resolved (item value, else the deployment's default) and
// checked.
type Host struct {
	ID               string
	CertDir          string
	KeyDir           string
	CACertDir        string
	SigningHelperDir string
	// PendingCSRHash and PendingCertificateARN record the last certificate issued for a CSR (see Steps.Issue).
	PendingCSRHash        string
	PendingCertificateARN string
	// LeaseOwner is the run rotating the host, LeaseUntil when its lease ends (RFC 3339).
	LeaseOwner, LeaseUntil string
}

func stringAttr(item map[string]types.AttributeValue, name string) (string, bool, error) {
	v, ok := item[name]
	if !ok {
		return "", false, nil
	}
	s, isS := v.(*types.AttributeValueMemberS)
	if !isS {
		return "", true, fmt.Errorf("attribute %s is not a string", name)
	}
	return s.Value, true, nil
}

// loadHost reads and checks the host item. A missing item, or a value an operator wrote that breaks the patterns, is
// ErrHostInvalid: nothing is sent to any host.
func (s *Steps) loadHost(ctx context.Context, hostID string) (Host, error) {
	if err := CheckHostID(hostID); err != nil {
		return Host{}, stepErr(ErrHostInvalid, "%v", err)
	}
	out, err := s.Table.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.Config.TableName),
		Key:            map[string]types.AttributeValue{AttrHostID: &types.AttributeValueMemberS{Value: hostID}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Host{}, classify(fmt.Errorf("get host %s: %w", hostID, err))
	}
	if out.Item == nil {
		return Host{}, stepErr(ErrHostInvalid, "host %s is not in table %s", hostID, s.Config.TableName)
	}
	h := Host{ID: hostID}
	d := s.Config.Documents.withDefaults()
	for _, f := range []struct {
		attr, def string
		dst       *string
	}{
		{AttrCertPath, d.CertDir, &h.CertDir},
		{AttrKeyPath, d.KeyDir, &h.KeyDir},
		{AttrCACertPath, d.CACertDir, &h.CACertDir},
		{AttrSigningHelper, d.SigningHelperDir, &h.SigningHelperDir},
	} {
		v, ok, err := stringAttr(out.Item, f.attr)
		if err != nil {
			return Host{}, stepErr(ErrHostInvalid, "host %s: %v", hostID, err)
		}
		if !ok || v == "" {
			v = f.def
		}
		if err := CheckPath(f.attr, v); err != nil {
			return Host{}, stepErr(ErrHostInvalid, "host %s: %v", hostID, err)
		}
		*f.dst = v
	}
	h.PendingCSRHash, _, _ = stringAttr(out.Item, AttrPendingCSRHash)
	h.PendingCertificateARN, _, _ = stringAttr(out.Item, AttrPendingCertARN)
	h.LeaseOwner, _, _ = stringAttr(out.Item, AttrLeaseOwner)
	h.LeaseUntil, _, _ = stringAttr(out.Item, AttrLeaseUntil)
	return h, nil
}

// takeLease makes run the host's rotator for LeaseDuration, unless another run's lease is still running: one
// rotation per host at a time (an on-demand run during the scheduled one finds the host busy and leaves it alone).
// The same run takes its lease again (a retried or redriven step).
func (s *Steps) takeLease(ctx context.Context, hostID, run string) error {
	now := s.now()
	_, err := s.Table.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:        aws.String(s.Config.TableName),
		Key:              map[string]types.AttributeValue{AttrHostID: &types.AttributeValueMemberS{Value: hostID}},
		UpdateExpression: aws.String("SET #owner = :run, #until = :until"),
		// A leaseUntil that is not a string (written by hand) cannot hold a host forever.
		ConditionExpression: aws.String("attribute_exists(#id) AND (attribute_not_exists(#owner) OR #owner = :run OR " +
			"attribute_not_exists(#until) OR NOT attribute_type(#until, :S) OR #until < :now)"),
		ExpressionAttributeNames: map[string]string{"#owner": AttrLeaseOwner, "#until": AttrLeaseUntil, "#id": AttrHostID},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":run":   &types.AttributeValueMemberS{Value: run},
			":until": &types.AttributeValueMemberS{Value: now.Add(LeaseDuration).Format(RenewAtLayout)},
			":now":   &types.AttributeValueMemberS{Value: now.Format(RenewAtLayout)},
			":S":     &types.AttributeValueMemberS{Value: "S"},
		},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return stepErr(ErrHostBusy, "host %s is being rotated by another run", hostID)
	}
	if err != nil {
		return classify(fmt.Errorf("take the lease of host %s: %w", hostID, err))
	}
	return nil
}

// releaseLease ends run's lease on the host, if it still holds it.
func (s *Steps) releaseLease(ctx context.Context, hostID, run string) {
	_, err := s.Table.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.Config.TableName),
		Key:                       map[string]types.AttributeValue{AttrHostID: &types.AttributeValueMemberS{Value: hostID}},
		UpdateExpression:          aws.String("REMOVE #owner, #until"),
		ConditionExpression:       aws.String("#owner = :run"),
		ExpressionAttributeNames:  map[string]string{"#owner": AttrLeaseOwner, "#until": AttrLeaseUntil},
		ExpressionAttributeValues: map[string]types.AttributeValue{":run": &types.AttributeValueMemberS{Value: run}},
	})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		// The lease then ends on its own, at leaseUntil.
		slog.ErrorContext(ctx, "release lease", "host", hostID, "error", err.Error())
	}
}
