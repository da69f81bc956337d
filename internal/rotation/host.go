package rotation

import (
	"context"
	"fmt"

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
	return h, nil
}
