package awsfake

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RolesAnywhere is a fake IAM Roles Anywhere: CRLs (ImportCrl, UpdateCrl, ListCrls) and CreateSession, the call
// aws_signing_helper credential-process makes. CreateSession verifies the request's X.509 signature (SigV4 with the
// certificate's key: AWS4-X509-RSA-SHA256 or AWS4-X509-ECDSA-SHA256), the certificate's validity and chain to the
// trust anchor's CA, the CRL imported for that trust anchor, and the profile and role, and answers with fake
// credentials. Point the helper at it with --endpoint URL().
type RolesAnywhere struct {
	mu       sync.Mutex
	anchors  map[string]*x509.Certificate // trust anchor ARN → CA certificate
	profiles map[string][]string          // profile ARN → role ARNs
	crls     []*raCRL
	listLag  time.Duration // see SetListLag (rolesanywhere_crl.go)
	sessions []RolesAnywhereSession
	now      func() time.Time
}

// RolesAnywhereSession is a CreateSession that succeeded.
type RolesAnywhereSession struct {
	TrustAnchorARN, ProfileARN, RoleARN string
	// Subject is the certificate's subject CN, Serial its serial number in upper-case hex.
	Subject, Serial string
}

// RolesAnywhereCRL is a CRL as the fake holds it.
type RolesAnywhereCRL struct {
	ID, ARN, Name, TrustAnchorARN string
	Data                          []byte // PEM
	Enabled                       bool
	Updates                       int // UpdateCrl calls since ImportCrl
}

type raCRL struct {
	RolesAnywhereCRL
	created, updated time.Time
}

func newRolesAnywhere() *RolesAnywhere {
	return &RolesAnywhere{anchors: map[string]*x509.Certificate{}, profiles: map[string][]string{}, now: time.Now}
}

// AddTrustAnchor makes a trust anchor of a CA certificate (PEM) and returns its ARN.
func (ra *RolesAnywhere) AddTrustAnchor(caPEM []byte) string {
	ca, err := parseCertificatePEM(caPEM)
	if err != nil {
		panic("awsfake: AddTrustAnchor: " + err.Error())
	}
	arn := "arn:aws:rolesanywhere:" + Region + ":" + AccountID + ":trust-anchor/" + newUUID()
	ra.mu.Lock()
	defer ra.mu.Unlock()
	ra.anchors[arn] = ca
	return arn
}

// AddProfile makes a profile allowing roleARNs and returns its ARN.
func (ra *RolesAnywhere) AddProfile(roleARNs ...string) string {
	arn := "arn:aws:rolesanywhere:" + Region + ":" + AccountID + ":profile/" + newUUID()
	ra.mu.Lock()
	defer ra.mu.Unlock()
	ra.profiles[arn] = slices.Clone(roleARNs)
	return arn
}

// SetNow replaces the fake's clock (certificate validity).
func (ra *RolesAnywhere) SetNow(now func() time.Time) {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	ra.now = now
}

// Sessions returns the sessions created, oldest first.
func (ra *RolesAnywhere) Sessions() []RolesAnywhereSession {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	return slices.Clone(ra.sessions)
}

// CRLs returns the CRLs held, oldest first.
func (ra *RolesAnywhere) CRLs() []RolesAnywhereCRL {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	out := make([]RolesAnywhereCRL, 0, len(ra.crls))
	for _, c := range ra.crls {
		cc := c.RolesAnywhereCRL
		cc.Data = slices.Clone(cc.Data)
		out = append(out, cc)
	}
	return out
}

// raMaxCRL is the largest crlData Roles Anywhere accepts.
const raMaxCRL = 300000

func raError(status int, code, format string, args ...any) *apiError {
	return errorf(status, code, format, args...)
}

// serve answers the REST-JSON operations: CreateSession (signed with the certificate) and the CRL operations.
func (ra *RolesAnywhere) serve(w http.ResponseWriter, r *http.Request, body []byte) *apiError {
	var (
		out    any
		status = http.StatusOK
		err    *apiError
	)
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/sessions":
		if !isX509Signed(r) {
			return accessDenied("CreateSession must be signed with an X.509 certificate (AWS4-X509-*)")
		}
		out, err = ra.createSession(r, body)
		status = http.StatusCreated
	case r.Method == http.MethodPost && r.URL.Path == "/crls":
		out, err = ra.importCRL(body)
		status = http.StatusCreated
	case r.Method == http.MethodPatch && strings.HasPrefix(r.URL.Path, "/crl/"):
		out, err = ra.updateCRL(strings.TrimPrefix(r.URL.Path, "/crl/"), body)
	case r.Method == http.MethodGet && r.URL.Path == "/crls":
		out, err = ra.listCRLs(r)
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/crl/"):
		out, err = ra.deleteCRL(strings.TrimPrefix(r.URL.Path, "/crl/"))
	default:
		err = raError(404, "UnknownOperationException", "awsfake: rolesanywhere %s %s is not implemented", r.Method, r.URL.Path)
	}
	if err != nil {
		return err
	}
	writeJSON(w, "application/json", status, out)
	return nil
}

func (ra *RolesAnywhere) crlJSON(c *raCRL) map[string]any {
	return map[string]any{
		"crlArn": c.ARN, "crlId": c.ID, "name": c.Name, "trustAnchorArn": c.TrustAnchorARN, "enabled": c.Enabled,
		"crlData":   base64.StdEncoding.EncodeToString(c.Data),
		"createdAt": c.created.Format(time.RFC3339), "updatedAt": c.updated.Format(time.RFC3339),
	}
}

// checkCRLData validates crlData as Roles Anywhere does: PEM, at most 300,000 bytes, a parsable CRL.
func checkCRLData(data []byte) *apiError {
	if len(data) == 0 || len(data) > raMaxCRL {
		return raError(400, "ValidationException", "crlData must be 1 to %d bytes, got %d", raMaxCRL, len(data))
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "X509 CRL" {
		return raError(400, "ValidationException", "crlData is not a PEM X509 CRL")
	}
	if _, err := x509.ParseRevocationList(b.Bytes); err != nil {
		return raError(400, "ValidationException", "crlData: %v", err)
	}
	return nil
}

func (ra *RolesAnywhere) importCRL(body []byte) (any, *apiError) {
	var in struct {
		CrlData        []byte `json:"crlData"`
		Name           string `json:"name"`
		TrustAnchorArn string `json:"trustAnchorArn"`
		Enabled        *bool  `json:"enabled"`
	}
	if e := decodeJSON(body, &in, "ValidationException"); e != nil {
		return nil, e
	}
	if e := checkCRLData(in.CrlData); e != nil {
		return nil, e
	}
	if in.Name == "" || len(in.Name) > 255 {
		return nil, raError(400, "ValidationException", "name must be 1 to 255 characters")
	}
	ra.mu.Lock()
	defer ra.mu.Unlock()
	if _, ok := ra.anchors[in.TrustAnchorArn]; !ok {
		return nil, raError(404, "ResourceNotFoundException", "Trust anchor %s not found", in.TrustAnchorArn)
	}
	id := newUUID()
	now := ra.now().UTC()
	c := &raCRL{RolesAnywhereCRL: RolesAnywhereCRL{
		ID: id, ARN: "arn:aws:rolesanywhere:" + Region + ":" + AccountID + ":crl/" + id, Name: in.Name,
		TrustAnchorARN: in.TrustAnchorArn, Data: in.CrlData, Enabled: in.Enabled != nil && *in.Enabled,
	}, created: now, updated: now}
	ra.crls = append(ra.crls, c)
	return map[string]any{"crl": ra.crlJSON(c)}, nil
}

func (ra *RolesAnywhere) updateCRL(id string, body []byte) (any, *apiError) {
	var in struct {
		CrlData []byte `json:"crlData"`
		Name    string `json:"name"`
	}
	if e := decodeJSON(body, &in, "ValidationException"); e != nil {
		return nil, e
	}
	if in.CrlData != nil {
		if e := checkCRLData(in.CrlData); e != nil {
			return nil, e
		}
	}
	ra.mu.Lock()
	defer ra.mu.Unlock()
	for _, c := range ra.crls {
		if c.ID == id {
			if in.CrlData != nil {
				c.Data = in.CrlData
			}
			if in.Name != "" {
				c.Name = in.Name
			}
			c.Updates++
			c.updated = ra.now().UTC()
			return map[string]any{"crl": ra.crlJSON(c)}, nil
		}
	}
	return nil, raError(404, "ResourceNotFoundException", "CRL %s not found", id)
}

func (ra *RolesAnywhere) listCRLs(r *http.Request) (any, *apiError) {
	q := r.URL.Query()
	size := 50
	if v := q.Get("pageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return nil, raError(400, "ValidationException", "pageSize must be from 1 to 100")
		}
		size = n
	}
	start := 0
	if t := q.Get("nextToken"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			return nil, raError(400, "ValidationException", "nextToken is not valid")
		}
		start = n
	}
	ra.mu.Lock()
	defer ra.mu.Unlock()
	visible := ra.listedCRLs()
	crls := []any{}
	end := min(start+size, len(visible))
	for _, c := range visible[min(start, len(visible)):end] {
		crls = append(crls, ra.crlJSON(c))
	}
	out := map[string]any{"crls": crls}
	if end < len(visible) {
		out["nextToken"] = strconv.Itoa(end)
	}
	return out, nil
}

// isX509Signed reports whether r is signed by aws_signing_helper (SigV4 with an X.509 certificate).
func isX509Signed(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-X509-")
}

func accessDenied(format string, args ...any) *apiError {
	return raError(403, "AccessDeniedException", format, args...)
}

func (ra *RolesAnywhere) createSession(r *http.Request, body []byte) (any, *apiError) {
	// The ARNs travel in the query string, the certificate in the X-Amz-X509 header, the duration in the body.
	var in struct {
		ProfileArn      string
		RoleArn         string
		TrustAnchorArn  string
		DurationSeconds *int `json:"durationSeconds"`
	}
	if e := decodeJSON(body, &in, "ValidationException"); e != nil {
		return nil, e
	}
	q := r.URL.Query()
	in.ProfileArn, in.RoleArn, in.TrustAnchorArn = q.Get("profileArn"), q.Get("roleArn"), q.Get("trustAnchorArn")
	leafDER, err := base64.StdEncoding.DecodeString(r.Header.Get("X-Amz-X509"))
	if err != nil {
		return nil, accessDenied("X-Amz-X509 is not base64")
	}
	leaf, err := x509.ParseCertificate(leafDER)
	if err != nil {
		return nil, accessDenied("X-Amz-X509: %v", err)
	}
	if e := verifyX509Signature(r, body, leaf); e != nil {
		return nil, e
	}
	ra.mu.Lock()
	defer ra.mu.Unlock()
	now := ra.now()
	ca, ok := ra.anchors[in.TrustAnchorArn]
	if !ok {
		return nil, accessDenied("Untrusted: trust anchor %s not found", in.TrustAnchorArn)
	}
	roles, ok := ra.profiles[in.ProfileArn]
	if !ok {
		return nil, accessDenied("Profile %s not found", in.ProfileArn)
	}
	if !slices.Contains(roles, in.RoleArn) {
		return nil, accessDenied("Role %s is not in profile %s", in.RoleArn, in.ProfileArn)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	inter := x509.NewCertPool()
	if chain := r.Header.Get("X-Amz-X509-Chain"); chain != "" {
		for _, part := range strings.Split(chain, ",") {
			der, err := base64.StdEncoding.DecodeString(part)
			if err != nil {
				return nil, accessDenied("X-Amz-X509-Chain is not base64")
			}
			c, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, accessDenied("X-Amz-X509-Chain: %v", err)
			}
			inter.AddCert(c)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return nil, accessDenied("Untrusted signing certificate: %v", err)
	}
	for _, c := range ra.crls {
		if c.TrustAnchorARN != in.TrustAnchorArn || !c.Enabled {
			continue
		}
		b, _ := pem.Decode(c.Data)
		crl, err := x509.ParseRevocationList(b.Bytes)
		if err != nil || crl.CheckSignatureFrom(ca) != nil {
			continue
		}
		for _, rev := range crl.RevokedCertificateEntries {
			if rev.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
				return nil, accessDenied("Certificate revoked")
			}
		}
	}
	dur := 3600
	if in.DurationSeconds != nil {
		dur = *in.DurationSeconds
	}
	if dur < 900 || dur > 43200 {
		return nil, raError(400, "ValidationException", "durationSeconds must be from 900 to 43200")
	}
	serial := strings.ToUpper(leaf.SerialNumber.Text(16))
	ra.sessions = append(ra.sessions, RolesAnywhereSession{
		TrustAnchorARN: in.TrustAnchorArn, ProfileARN: in.ProfileArn, RoleARN: in.RoleArn,
		Subject: leaf.Subject.CommonName, Serial: serial,
	})
	return map[string]any{
		"credentialSet": []any{map[string]any{
			"credentials": map[string]any{
				"accessKeyId":     "ASIA" + randomString(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
				"secretAccessKey": randomString(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
				"sessionToken":    "FQoGZXIvYXdzE" + randomString(64, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
				"expiration":      now.Add(time.Duration(dur) * time.Second).UTC().Format(time.RFC3339),
			},
			"roleArn":         in.RoleArn,
			"sourceIdentity":  leaf.Subject.CommonName,
			"assumedRoleUser": map[string]any{"arn": in.RoleArn + "/" + serial, "assumedRoleId": "AROAFAKE:" + serial},
		}},
		"subjectArn": "arn:aws:rolesanywhere:" + Region + ":" + AccountID + ":subject/" + newUUID(),
	}, nil
}

// verifyX509Signature checks the SigV4-X509 signature the way Roles Anywhere does: the canonical request over the
// signed headers and the body, the string to sign with the date and scope, signed by the certificate's key.
func verifyX509Signature(r *http.Request, body []byte, leaf *x509.Certificate) *apiError {
	auth := r.Header.Get("Authorization")
	alg, rest, _ := strings.Cut(auth, " ")
	fields := map[string]string{}
	for _, f := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		fields[k] = v
	}
	cred, signed, sigHex := fields["Credential"], fields["SignedHeaders"], fields["Signature"]
	serial, scope, ok := strings.Cut(cred, "/")
	if !ok || signed == "" || sigHex == "" {
		return accessDenied("malformed Authorization header")
	}
	if serial != leaf.SerialNumber.String() {
		return accessDenied("Credential names serial %s, not the certificate's", serial)
	}
	if !strings.HasSuffix(scope, "/rolesanywhere/aws4_request") {
		return accessDenied("credential scope %q is not for rolesanywhere", scope)
	}
	date := r.Header.Get("X-Amz-Date")
	var canon bytes.Buffer
	canon.WriteString(r.Method + "\n" + r.URL.Path + "\n" + strings.ReplaceAll(r.URL.Query().Encode(), "+", "%20") + "\n")
	names := strings.Split(signed, ";")
	sort.Strings(names)
	for _, n := range names {
		var v string
		if n == "host" {
			v = r.Host
		} else {
			v = strings.Join(r.Header.Values(n), ",")
		}
		canon.WriteString(n + ":" + strings.Join(strings.Fields(v), " ") + "\n")
	}
	sum := sha256.Sum256(body)
	payload := hex.EncodeToString(sum[:])
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" {
		payload = h
	}
	canon.WriteString("\n" + signed + "\n" + payload)
	creq := sha256.Sum256(canon.Bytes())
	sts := alg + "\n" + date + "\n" + scope + "\n" + hex.EncodeToString(creq[:])
	digest := sha256.Sum256([]byte(sts))
	sig, err := hex.DecodeString(sigHex)
	if err != nil {
		return accessDenied("signature is not hex")
	}
	var verr error
	switch pub := leaf.PublicKey.(type) {
	case *rsa.PublicKey:
		if alg != "AWS4-X509-RSA-SHA256" {
			return accessDenied("algorithm %s does not fit an RSA certificate", alg)
		}
		verr = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig)
	case *ecdsa.PublicKey:
		if alg != "AWS4-X509-ECDSA-SHA256" {
			return accessDenied("algorithm %s does not fit an EC certificate", alg)
		}
		if !ecdsa.VerifyASN1(pub, digest[:], sig) {
			verr = fmt.Errorf("ECDSA verification failed")
		}
	default:
		return accessDenied("unsupported certificate key %T", leaf.PublicKey)
	}
	if verr != nil {
		return accessDenied("Signature does not match the signing certificate")
	}
	return nil
}
