package awsfake

import (
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"time"
)

// IAM Roles Anywhere's CRL operations as AWS documents them, and what the documents leave open:
//
//   - ImportCrl (https://docs.aws.amazon.com/rolesanywhere/latest/APIReference/API_ImportCrl.html) takes crlData, a
//     name, a trust anchor ARN, enabled and tags. It has no idempotency token and lists no ConflictException: two
//     imports of the same name for the same trust anchor make two CRLs, and the fake does so.
//   - UpdateCrl (https://docs.aws.amazon.com/rolesanywhere/latest/APIReference/API_UpdateCrl.html, PATCH /crl/{crlId}) replaces crlData and/or name of one CRL;
//     ResourceNotFoundException when the id is unknown.
//   - DeleteCrl (https://docs.aws.amazon.com/rolesanywhere/latest/APIReference/API_DeleteCrl.html, DELETE /crl/{crlId}) deletes one CRL and answers with its detail;
//     ResourceNotFoundException when the id is unknown.
//   - ListCrls (https://docs.aws.amazon.com/rolesanywhere/latest/APIReference/API_ListCrls.html, GET /crls, pageSize up to 100 and nextToken) lists every CRL of the account and
//     region with crlData. No page says whether it reads its own writes: SetListLag lets a test hide CRLs imported
//     less than a given time ago, the worst case a design must survive.

// SetListLag makes ListCrls leave out CRLs imported less than lag ago (by the fake's clock).
func (ra *RolesAnywhere) SetListLag(lag time.Duration) {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	ra.listLag = lag
}

// listedCRLs is what ListCrls shows now. Call with ra.mu held.
func (ra *RolesAnywhere) listedCRLs() []*raCRL {
	if ra.listLag == 0 {
		return ra.crls
	}
	cutoff := ra.now().Add(-ra.listLag)
	var out []*raCRL
	for _, c := range ra.crls {
		if !c.created.After(cutoff) {
			out = append(out, c)
		}
	}
	return out
}

func (ra *RolesAnywhere) deleteCRL(id string) (any, *apiError) {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	for i, c := range ra.crls {
		if c.ID == id {
			ra.crls = append(ra.crls[:i:i], ra.crls[i+1:]...)
			return map[string]any{"crl": ra.crlJSON(c)}, nil
		}
	}
	return nil, raError(404, "ResourceNotFoundException", "CRL %s not found", id)
}

// SignCRL is a CRL of the fake CA, DER-encoded as Private CA writes it to the CRL bucket: numbered number, valid
// until nextUpdate, revoking serials.
func (p *PCA) SignCRL(number int64, nextUpdate time.Time, serials ...*big.Int) []byte {
	p.mu.Lock()
	ca := p.ca
	p.mu.Unlock()
	var revoked []x509.RevocationListEntry
	for _, s := range serials {
		revoked = append(revoked, x509.RevocationListEntry{SerialNumber: s, RevocationTime: time.Now().Add(-time.Minute)})
	}
	thisUpdate := time.Now().Add(-time.Minute)
	if !thisUpdate.Before(nextUpdate) { // an outdated CRL, as a replay would bring
		thisUpdate = nextUpdate.Add(-24 * time.Hour)
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(number), ThisUpdate: thisUpdate, NextUpdate: nextUpdate,
		RevokedCertificateEntries: revoked,
	}, ca.cert, ca.key)
	if err != nil {
		panic("awsfake: sign CRL: " + err.Error())
	}
	return der
}
