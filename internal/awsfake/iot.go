package awsfake

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
)

// Certificate is an AWS IoT certificate as the fake holds it.
type Certificate struct {
	ID     string
	ARN    string
	PEM    string
	Status string // ACTIVE, INACTIVE, PENDING_ACTIVATION or REVOKED
	Mode   string // DEFAULT or SNI_ONLY
	CAID   string // the registering CA certificate's id; empty for certificates AWS IoT issued or registered without CA
}

// Thing is an AWS IoT thing as the fake holds it.
type Thing struct {
	Name       string
	ARN        string
	ID         string
	TypeName   string
	Attributes map[string]string
	Version    int64
}

type iotCert struct {
	Certificate
	created, modified   time.Time
	notBefore, notAfter time.Time
	customerVersion     int64
	generationID        string
}

type thingType struct {
	name, arn, id string
	description   string
	searchable    []string
	created       time.Time
	deprecated    *time.Time // set by DeprecateThingType, cleared by undoDeprecate
}

type iotPolicy struct {
	name, arn, document string
	created, modified   time.Time
	generationID        string
}

// IoT is the fake AWS IoT control plane.
type IoT struct {
	ca             *authority
	endpointPrefix string
	credPrefix     string

	mu              sync.Mutex
	certs           map[string]*iotCert
	things          map[string]*Thing
	thingTypes      map[string]*thingType
	policies        map[string]*iotPolicy
	targetPolicies  map[string][]string // target ARN → attached policy names, in attachment order
	thingPrincipals map[string][]string // thing name → principals, in attachment order; writers call principalsChanged
	events          map[string]bool
	eventsCreated   time.Time
	eventsModified  time.Time
	ext             iotCA // CA certificates, auto-registration, Publish: iot_ca.go

	reg  registryState // thing groups, memberships, hierarchy: iot_registry.go
	jobs jobsState     // job templates, jobs, executions: jobs.go
	list certListState // ListCertificates hooks: iot_certlist.go
	dd   defenderState // Device Defender audit: configuration, tasks and their findings: defender.go

	// detaching holds principals that DetachThingPrincipal removed but AWS IoT still reports: thing name →
	// principal → how many more observing calls (DeleteThing, DeleteCertificate, ListThingPrincipals,
	// ListPrincipalThings) still see it. AWS documents the detach as asynchronous.
	detaching   map[string]map[string]int
	detachDelay int
}

// awsIoTIssuer is the issuer name AWS IoT puts on the certificates it signs.
var awsIoTIssuer = pkix.Name{
	Country:            []string{"US"},
	Province:           []string{"Washington"},
	Locality:           []string{"Seattle"},
	Organization:       []string{"Amazon.com Inc."},
	OrganizationalUnit: []string{"Amazon Web Services"},
}

// iotNotAfter is the end of validity AWS IoT gives the certificates it issues.
var iotNotAfter = time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC)

var iotEventTypes = []string{
	"CA_CERTIFICATE", "CERTIFICATE", "JOB", "JOB_EXECUTION", "POLICY", "THING", "THING_GROUP",
	"THING_GROUP_HIERARCHY", "THING_GROUP_MEMBERSHIP", "THING_TYPE", "THING_TYPE_ASSOCIATION",
}

const lowerAlnum = "abcdefghijklmnopqrstuvwxyz0123456789"

func newIoT() *IoT {
	now := time.Now().UTC()
	iot := &IoT{
		ca:              newAuthority(awsIoTIssuer, iotCAKey()),
		endpointPrefix:  randomString(14, lowerAlnum),
		credPrefix:      randomString(14, lowerAlnum),
		certs:           map[string]*iotCert{},
		things:          map[string]*Thing{},
		thingTypes:      map[string]*thingType{},
		policies:        map[string]*iotPolicy{},
		targetPolicies:  map[string][]string{},
		thingPrincipals: map[string][]string{},
		detaching:       map[string]map[string]int{},
		detachDelay:     DefaultDetachDelay,
		events:          map[string]bool{},
		eventsCreated:   now,
		eventsModified:  now,
	}
	for _, e := range iotEventTypes {
		iot.events[e] = false
	}
	return iot
}

// State accessors.

// Certificate returns a copy of the certificate with that id.
func (f *IoT) Certificate(id string) (Certificate, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.certs[id]
	if !ok {
		return Certificate{}, false
	}
	return c.Certificate, true
}

// Certificates returns every certificate, ordered by id.
func (f *IoT) Certificates() []Certificate {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Certificate, 0, len(f.certs))
	for _, c := range f.certs {
		out = append(out, c.Certificate)
	}
	slices.SortFunc(out, func(a, b Certificate) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Thing returns a copy of the named thing.
func (f *IoT) Thing(name string) (Thing, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.things[name]
	if !ok {
		return Thing{}, false
	}
	return copyThing(t), true
}

// Things returns every thing, ordered by name.
func (f *IoT) Things() []Thing {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Thing, 0, len(f.things))
	for _, t := range f.things {
		out = append(out, copyThing(t))
	}
	slices.SortFunc(out, func(a, b Thing) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func copyThing(t *Thing) Thing {
	c := *t
	c.Attributes = maps.Clone(t.Attributes)
	if c.Attributes == nil {
		c.Attributes = map[string]string{}
	}
	return c
}

// PutThingType defines a thing type if it does not exist.
func (f *IoT) PutThingType(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.thingTypes[name]; !ok {
		f.thingTypes[name] = &thingType{name: name, arn: iotARN("thingtype/" + name), id: newUUID(), created: time.Now().UTC()}
	}
}

// DefaultDetachDelay is how many observing calls still see a principal after DetachThingPrincipal, unless
// SetDetachDelay says otherwise.
const DefaultDetachDelay = 1

// SetDetachDelay sets how many later calls of DeleteThing, DeleteCertificate, ListThingPrincipals and
// ListPrincipalThings still see a principal that DetachThingPrincipal removed, as AWS IoT does while the detach
// propagates: DeleteThing answers "still attached" and DeleteCertificate DeleteConflictException meanwhile. Zero makes
// detach instant. It applies to later detaches.
func (f *IoT) SetDetachDelay(calls int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.detachDelay = max(calls, 0)
}

// DetachingPrincipals returns the principals detached from the named thing that AWS IoT still reports.
func (f *IoT) DetachingPrincipals(thingName string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.detaching[thingName]))
}

// PutPolicy defines a policy, or replaces the document of an existing one.
func (f *IoT) PutPolicy(name, document string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now().UTC()
	if p, ok := f.policies[name]; ok {
		p.document, p.modified, p.generationID = document, now, newUUID()
		return
	}
	f.policies[name] = &iotPolicy{name: name, arn: iotARN("policy/" + name), document: document,
		created: now, modified: now, generationID: newUUID()}
}

// Policy returns the document of the named policy.
func (f *IoT) Policy(name string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.policies[name]
	if !ok {
		return "", false
	}
	return p.document, true
}

// PrincipalPolicies returns the names of the policies attached to a principal (or any policy target) ARN.
func (f *IoT) PrincipalPolicies(principalARN string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.targetPolicies[principalARN])
}

// ThingPrincipals returns the principals attached to the named thing.
func (f *IoT) ThingPrincipals(thingName string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.thingPrincipals[thingName])
}

// CAPEM is the PEM of the fake "AWS IoT" CA that signs the certificates of CreateCertificateFromCsr and
// CreateKeysAndCertificate.
func (f *IoT) CAPEM() []byte { return slices.Clone(f.ca.certPEM) }

// Endpoint is the iot:Data-ATS host that DescribeEndpoint returns.
func (f *IoT) Endpoint() string { return f.endpointPrefix + "-ats.iot." + Region + ".amazonaws.com" }

// EventConfigurations returns whether each registry event type is enabled.
func (f *IoT) EventConfigurations() map[string]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.events)
}

func iotARN(resource string) string {
	return "arn:aws:iot:" + Region + ":" + AccountID + ":" + resource
}

// Routing.

type iotRoute struct {
	method  string
	pattern []string // "{}" matches one path segment
	op      string
}

var iotRoutes = func() []iotRoute {
	table := []struct{ method, path, op string }{
		{"GET", "/endpoint", "DescribeEndpoint"},
		{"POST", "/certificates", "CreateCertificateFromCsr"},
		{"POST", "/keys-and-certificate", "CreateKeysAndCertificate"},
		{"POST", "/certificate/register-no-ca", "RegisterCertificateWithoutCA"},
		{"POST", "/certificate/register", "RegisterCertificate"}, // iot_register.go
		{"GET", "/certificates/{}", "DescribeCertificate"},
		{"PUT", "/certificates/{}", "UpdateCertificate"},
		{"DELETE", "/certificates/{}", "DeleteCertificate"},
		{"POST", "/things/{}", "CreateThing"},
		{"GET", "/things/{}", "DescribeThing"},
		{"DELETE", "/things/{}", "DeleteThing"},
		{"PUT", "/things/{}/principals", "AttachThingPrincipal"},
		{"DELETE", "/things/{}/principals", "DetachThingPrincipal"},
		{"GET", "/things/{}/principals", "ListThingPrincipals"},
		{"GET", "/principals/things", "ListPrincipalThings"},
		{"POST", "/thing-types/{}", "CreateThingType"},
		{"GET", "/thing-types/{}", "DescribeThingType"},
		{"GET", "/thing-types", "ListThingTypes"},
		{"POST", "/thing-types/{}/deprecate", "DeprecateThingType"},
		{"POST", "/policies/{}", "CreatePolicy"},
		{"GET", "/policies/{}", "GetPolicy"},
		{"DELETE", "/policies/{}", "DeletePolicy"},
		{"PUT", "/target-policies/{}", "AttachPolicy"},
		{"POST", "/target-policies/{}", "DetachPolicy"},
		{"POST", "/attached-policies/{}", "ListAttachedPolicies"},
		{"PATCH", "/event-configurations", "UpdateEventConfigurations"},
		{"GET", "/event-configurations", "DescribeEventConfigurations"},
		// iot_registry.go
		{"PATCH", "/things/{}", "UpdateThing"}, {"GET", "/things", "ListThings"}, {"DELETE", "/thing-types/{}", "DeleteThingType"},
		{"POST", "/thing-groups/{}", "CreateThingGroup"}, {"GET", "/thing-groups/{}", "DescribeThingGroup"},
		{"PATCH", "/thing-groups/{}", "UpdateThingGroup"}, {"DELETE", "/thing-groups/{}", "DeleteThingGroup"},
		{"GET", "/thing-groups", "ListThingGroups"}, {"PUT", "/thing-groups/addThingToThingGroup", "AddThingToThingGroup"},
		{"PUT", "/thing-groups/removeThingFromThingGroup", "RemoveThingFromThingGroup"},
		{"GET", "/thing-groups/{}/things", "ListThingsInThingGroup"}, {"GET", "/things/{}/thing-groups", "ListThingGroupsForThing"},
		{"GET", "/certificates", "ListCertificates"}, // iot_certlist.go
	}
	table = append(table, iotCARoutes...)
	table = append(table, iotDefenderRoutes...)
	table = append(table, jobRoutes...)
	routes := make([]iotRoute, len(table))
	for i, r := range table {
		routes[i] = iotRoute{method: r.method, pattern: strings.Split(strings.Trim(r.path, "/"), "/"), op: r.op}
	}
	return routes
}()

// iotMatch finds the operation of a REST request and its path parameters (unescaped).
func iotMatch(r *http.Request) (op string, params []string) {
	raw := strings.Trim(r.URL.EscapedPath(), "/")
	segs := strings.Split(raw, "/")
	for _, rt := range iotRoutes {
		if rt.method != r.Method || len(rt.pattern) != len(segs) {
			continue
		}
		var ps []string
		ok := true
		for i, p := range rt.pattern {
			if p == "{}" {
				v, err := url.PathUnescape(segs[i])
				if err != nil || v == "" {
					ok = false
					break
				}
				ps = append(ps, v)
			} else if p != segs[i] {
				ok = false
				break
			}
		}
		if ok {
			return rt.op, ps
		}
	}
	return "", nil
}

func iotOperation(r *http.Request) string {
	op, _ := iotMatch(r)
	return op
}

var (
	thingNameRE   = regexp.MustCompile(`^[a-zA-Z0-9:_-]{1,128}$`)
	policyNameRE  = regexp.MustCompile(`^[\w+=,.@-]{1,128}$`)
	certIDRE      = regexp.MustCompile(`^(0x)?[a-fA-F0-9]{64}$`)
	attrNameRE    = regexp.MustCompile(`^[a-zA-Z0-9_.,@/:#-]{1,128}$`)
	attrValueRE   = regexp.MustCompile(`^[a-zA-Z0-9_.,@/:#=\[\]-]{0,800}$`)
	iotCertARNPfx = iotARN("cert/")
)

func invalidRequest(format string, args ...any) *apiError {
	return errorf(400, "InvalidRequestException", format, args...)
}

func notFound(format string, args ...any) *apiError {
	return errorf(404, "ResourceNotFoundException", format, args...)
}

func alreadyExists(id, arn, format string, args ...any) *apiError {
	e := errorf(409, "ResourceAlreadyExistsException", format, args...)
	e.Extra = map[string]any{"resourceId": id, "resourceArn": arn}
	return e
}

func (f *IoT) serve(w http.ResponseWriter, r *http.Request, op string, body []byte) *apiError {
	_, params := iotMatch(r)
	if op == "" {
		return errorf(404, "UnknownOperationException", "awsfake: iot operation %s %s is not implemented", r.Method, r.URL.Path)
	}
	q := r.URL.Query()
	var (
		out any
		e   *apiError
	)
	f.mu.Lock()
	switch op {
	case "DescribeEndpoint":
		out, e = f.describeEndpoint(q.Get("endpointType"))
	case "CreateCertificateFromCsr":
		out, e = f.createCertificateFromCsr(body, q.Get("setAsActive") == "true")
	case "CreateKeysAndCertificate":
		out, e = f.createKeysAndCertificate(q.Get("setAsActive") == "true")
	case "RegisterCertificateWithoutCA":
		out, e = f.registerCertificateWithoutCA(body)
	case "RegisterCertificate":
		out, e = f.registerCertificate(body)
	case "DescribeCertificate":
		out, e = f.describeCertificate(params[0])
	case "UpdateCertificate":
		out, e = f.updateCertificate(params[0], q.Get("newStatus"))
	case "DeleteCertificate":
		out, e = f.deleteCertificate(params[0], q.Get("forceDelete") == "true")
	case "CreateThing":
		out, e = f.createThing(params[0], body)
	case "DescribeThing":
		out, e = f.describeThing(params[0])
	case "DeleteThing":
		out, e = f.deleteThing(params[0], q.Get("expectedVersion"))
	case "AttachThingPrincipal":
		out, e = f.attachThingPrincipal(params[0], r.Header.Get("X-Amzn-Principal"))
	case "DetachThingPrincipal":
		out, e = f.detachThingPrincipal(params[0], r.Header.Get("X-Amzn-Principal"))
	case "ListThingPrincipals":
		out, e = f.listThingPrincipals(params[0], q)
	case "ListPrincipalThings":
		out, e = f.listPrincipalThings(r.Header.Get("X-Amzn-Principal"), q)
	case "CreateThingType":
		out, e = f.createThingType(params[0], body)
	case "DescribeThingType":
		out, e = f.describeThingType(params[0])
	case "ListThingTypes":
		out, e = f.listThingTypes(q)
	case "DeprecateThingType":
		out, e = f.deprecateThingType(params[0], body)
	case "CreatePolicy":
		out, e = f.createPolicy(params[0], body)
	case "GetPolicy":
		out, e = f.getPolicy(params[0])
	case "DeletePolicy":
		out, e = f.deletePolicy(params[0])
	case "AttachPolicy":
		out, e = f.attachPolicy(params[0], body)
	case "DetachPolicy":
		out, e = f.detachPolicy(params[0], body)
	case "ListAttachedPolicies":
		out, e = f.listAttachedPolicies(params[0], q)
	case "ListCertificates":
		out, e = f.listCertificates(q)
	case "UpdateEventConfigurations":
		out, e = f.updateEventConfigurations(body)
	case "DescribeEventConfigurations":
		out, e = f.describeEventConfigurations()
	case "UpdateThing", "ListThings", "DeleteThingType", "CreateThingGroup", "DescribeThingGroup", "UpdateThingGroup",
		"DeleteThingGroup", "ListThingGroups", "AddThingToThingGroup", "RemoveThingFromThingGroup", "ListThingsInThingGroup",
		"ListThingGroupsForThing":
		out, e, _ = f.registryOp(op, params, q, body)
	case "RegisterCACertificate", "DescribeCACertificate", "UpdateCACertificate", "DeleteCACertificate",
		"GetRegistrationCode", "Publish":
		out, e = f.serveCA(op, params, q, r.Header, body)
	default:
		if isDefenderOp(op) {
			out, e = f.serveDefender(op, params, q, body)
			break
		}
		if isJobOp(op) {
			out, e = f.serveJobs(op, params, q, body)
			break
		}
		e = errorf(404, "UnknownOperationException", "awsfake: iot operation %s is not implemented", op)
	}
	f.mu.Unlock()
	if e != nil {
		return e
	}
	if out == nil {
		out = struct{}{}
	}
	writeJSON(w, "application/json", http.StatusOK, out)
	return nil
}

// Operations. Each runs with f.mu held.

func (f *IoT) describeEndpoint(typ string) (any, *apiError) {
	var host string
	switch typ {
	case "iot:Data-ATS":
		host = f.Endpoint()
	case "", "iot:Data":
		host = f.endpointPrefix + ".iot." + Region + ".amazonaws.com"
	case "iot:CredentialProvider":
		host = f.credPrefix + ".credentials.iot." + Region + ".amazonaws.com"
	case "iot:Jobs":
		host = f.endpointPrefix + ".jobs.iot." + Region + ".amazonaws.com"
	default:
		return nil, invalidRequest("Endpoint type %s is not valid", typ)
	}
	return map[string]any{"endpointAddress": host}, nil
}

func (f *IoT) addCert(der []byte, status, mode string) *iotCert {
	cert, _ := x509.ParseCertificate(der)
	now := time.Now().UTC()
	id := certificateID(der)
	c := &iotCert{
		Certificate: Certificate{
			ID: id, ARN: iotCertARNPfx + id, PEM: string(pemEncode("CERTIFICATE", der)), Status: status, Mode: mode,
		},
		created: now, modified: now, customerVersion: 1, generationID: newUUID(),
	}
	if cert != nil {
		c.notBefore, c.notAfter = cert.NotBefore, cert.NotAfter
	}
	f.certs[id] = c
	return c
}

func activeOrInactive(setAsActive bool) string {
	if setAsActive {
		return "ACTIVE"
	}
	return "INACTIVE"
}

func (f *IoT) createCertificateFromCsr(body []byte, setAsActive bool) (any, *apiError) {
	var in struct {
		CSR string `json:"certificateSigningRequest"`
	}
	if e := decodeJSON(body, &in, "InvalidRequestException"); e != nil {
		return nil, e
	}
	if in.CSR == "" {
		return nil, invalidRequest("certificateSigningRequest is required")
	}
	csr, err := parseCSR([]byte(in.CSR))
	if err != nil {
		return nil, invalidRequest("The certificate signing request is not valid: %v", err)
	}
	switch k := csr.PublicKey.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, invalidRequest("RSA key size %d is not supported: use 2048 bits or more", k.N.BitLen())
		}
	case *ecdsa.PublicKey:
		if c := k.Curve; c != elliptic.P256() && c != elliptic.P384() && c != elliptic.P521() {
			return nil, invalidRequest("elliptic curve %s is not supported", c.Params().Name)
		}
	default:
		return nil, invalidRequest("public key type %T is not supported", csr.PublicKey)
	}
	der, err := f.ca.issue(iotLeaf(csr.Subject), csr.PublicKey)
	if err != nil {
		return nil, errorf(500, "InternalFailureException", "%v", err)
	}
	c := f.addCert(der, activeOrInactive(setAsActive), "DEFAULT")
	return map[string]any{"certificateArn": c.ARN, "certificateId": c.ID, "certificatePem": c.PEM}, nil
}

func (f *IoT) createKeysAndCertificate(setAsActive bool) (any, *apiError) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, errorf(500, "InternalFailureException", "generate key: %v", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, errorf(500, "InternalFailureException", "marshal key: %v", err)
	}
	der, err := f.ca.issue(iotLeaf(pkix.Name{CommonName: "AWS IoT Certificate"}), &key.PublicKey)
	if err != nil {
		return nil, errorf(500, "InternalFailureException", "%v", err)
	}
	c := f.addCert(der, activeOrInactive(setAsActive), "DEFAULT")
	return map[string]any{
		"certificateArn": c.ARN, "certificateId": c.ID, "certificatePem": c.PEM,
		"keyPair": map[string]string{
			"PublicKey":  string(pemEncode("PUBLIC KEY", pub)),
			"PrivateKey": string(pemEncode("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))),
		},
	}, nil
}

func (f *IoT) registerCertificateWithoutCA(body []byte) (any, *apiError) {
	in, cert, e := parseRegistration(body)
	if e != nil {
		return nil, e
	}
	return f.register(cert, in.Status, "SNI_ONLY", "")
}

func (f *IoT) cert(id string) (*iotCert, *apiError) {
	return lookupByCertID(f.certs, "certificate", "certificateId", id)
}

// lookupByCertID finds a certificate (or CA certificate) by its 64-hex id, answering as AWS IoT does for a malformed
// or an unknown one.
func lookupByCertID[T any](m map[string]*T, what, field, id string) (*T, *apiError) {
	if !certIDRE.MatchString(id) {
		return nil, invalidRequest("%s %q is not valid: want 64 hexadecimal characters", field, id)
	}
	c, ok := m[strings.ToLower(strings.TrimPrefix(id, "0x"))]
	if !ok {
		return nil, notFound("The %s given in the resource identifier does not exist (%s: %s)", what, field, id)
	}
	return c, nil
}

func (f *IoT) describeCertificate(id string) (any, *apiError) {
	c, e := f.cert(id)
	if e != nil {
		return nil, e
	}
	d := map[string]any{
		"certificateArn":   c.ARN,
		"certificateId":    c.ID,
		"status":           c.Status,
		"certificatePem":   c.PEM,
		"ownedBy":          AccountID,
		"creationDate":     epoch(c.created),
		"lastModifiedDate": epoch(c.modified),
		"customerVersion":  c.customerVersion,
		"generationId":     c.generationID,
		"certificateMode":  c.Mode,
		"validity":         map[string]any{"notBefore": epoch(c.notBefore), "notAfter": epoch(c.notAfter)},
	}
	if c.CAID != "" {
		d["caCertificateId"] = c.CAID
	}
	return map[string]any{"certificateDescription": d}, nil
}

func (f *IoT) updateCertificate(id, status string) (any, *apiError) {
	switch status {
	case "ACTIVE", "INACTIVE", "REVOKED":
	case "":
		return nil, invalidRequest("newStatus is required")
	default:
		return nil, invalidRequest("newStatus %s is not valid: use ACTIVE, INACTIVE or REVOKED", status)
	}
	c, e := f.cert(id)
	if e != nil {
		return nil, e
	}
	if c.Status == "REVOKED" && status != "REVOKED" {
		return nil, errorf(406, "CertificateStateException", "Certificate %s is revoked: its status cannot change", c.ID)
	}
	c.Status, c.modified, c.generationID = status, time.Now().UTC(), newUUID()
	c.customerVersion++
	return nil, nil
}

func (f *IoT) deleteCertificate(id string, force bool) (any, *apiError) {
	c, e := f.cert(id)
	if e != nil {
		return nil, e
	}
	if c.Status == "ACTIVE" {
		return nil, errorf(406, "CertificateStateException",
			"Certificate must be deactivated (not ACTIVE) before deletion. Id: %s", c.ID)
	}
	attached := false
	for _, ps := range f.thingPrincipals {
		attached = attached || slices.Contains(ps, c.ARN)
	}
	for thing, ps := range f.detaching {
		if _, ok := ps[c.ARN]; ok {
			f.observeDetach(thing, c.ARN)
			attached = true
		}
	}
	if attached {
		return nil, errorf(409, "DeleteConflictException", "Things must be detached before deletion (arn: %s)", c.ARN)
	}
	if len(f.targetPolicies[c.ARN]) > 0 && !force {
		return nil, errorf(409, "DeleteConflictException",
			"Certificate policies must be detached before deletion (arn: %s)", c.ARN)
	}
	delete(f.targetPolicies, c.ARN)
	delete(f.certs, c.ID)
	return nil, nil
}

func validateThingName(name string) *apiError {
	if !thingNameRE.MatchString(name) {
		return invalidRequest("thingName %q is not valid: want 1 to 128 characters of [a-zA-Z0-9:_-]", name)
	}
	return nil
}

func (f *IoT) createThing(name string, body []byte) (any, *apiError) {
	if e := validateThingName(name); e != nil {
		return nil, e
	}
	var in struct {
		AttributePayload *struct {
			Attributes map[string]string `json:"attributes"`
		} `json:"attributePayload"`
		ThingTypeName string `json:"thingTypeName"`
	}
	if e := decodeJSON(body, &in, "InvalidRequestException"); e != nil {
		return nil, e
	}
	attrs := map[string]string{}
	if in.AttributePayload != nil {
		for k, v := range in.AttributePayload.Attributes {
			if !attrNameRE.MatchString(k) {
				return nil, invalidRequest("attribute name %q is not valid", k)
			}
			if !attrValueRE.MatchString(v) {
				return nil, invalidRequest("attribute value %q of %s is not valid", v, k)
			}
			attrs[k] = v
		}
	}
	if in.ThingTypeName != "" {
		tt, ok := f.thingTypes[in.ThingTypeName]
		if !ok {
			return nil, notFound("Thing type %s does not exist", in.ThingTypeName)
		}
		if tt.deprecated != nil {
			return nil, invalidRequest("Can not create new thing with deprecated thing type: %s", in.ThingTypeName)
		}
		if len(attrs) > 50 {
			return nil, invalidRequest("a thing with a thing type has at most 50 attributes, got %d", len(attrs))
		}
	} else if len(attrs) > 3 {
		return nil, invalidRequest("a thing without a thing type has at most 3 attributes, got %d", len(attrs))
	}
	if t, ok := f.things[name]; ok {
		if t.TypeName != in.ThingTypeName || !maps.Equal(t.Attributes, attrs) {
			return nil, alreadyExists(t.ID, t.ARN, "Thing %s already exists with different tags or attributes", name)
		}
		return map[string]any{"thingName": t.Name, "thingArn": t.ARN, "thingId": t.ID}, nil
	}
	t := &Thing{Name: name, ARN: iotARN("thing/" + name), ID: newUUID(), TypeName: in.ThingTypeName,
		Attributes: attrs, Version: 1}
	f.things[name] = t
	return map[string]any{"thingName": t.Name, "thingArn": t.ARN, "thingId": t.ID}, nil
}

func (f *IoT) thing(name string) (*Thing, *apiError) {
	if e := validateThingName(name); e != nil {
		return nil, e
	}
	t, ok := f.things[name]
	if !ok {
		return nil, notFound("Thing %s cannot be found.", name)
	}
	return t, nil
}

func (f *IoT) describeThing(name string) (any, *apiError) {
	t, e := f.thing(name)
	if e != nil {
		return nil, e
	}
	out := map[string]any{
		"defaultClientId": t.Name, "thingName": t.Name, "thingId": t.ID, "thingArn": t.ARN,
		"attributes": t.Attributes, "version": t.Version,
	}
	if t.TypeName != "" {
		out["thingTypeName"] = t.TypeName
	}
	return out, nil
}

func (f *IoT) deleteThing(name, expectedVersion string) (any, *apiError) {
	if e := validateThingName(name); e != nil {
		return nil, e
	}
	t, ok := f.things[name]
	if !ok {
		return nil, nil // AWS answers success for a thing that does not exist
	}
	if expectedVersion != "" {
		v, err := strconv.ParseInt(expectedVersion, 10, 64)
		if err != nil {
			return nil, invalidRequest("expectedVersion %q is not a number", expectedVersion)
		}
		if v != t.Version {
			return nil, errorf(409, "VersionConflictException",
				"The version for thing %s does not match the expected version.", name)
		}
	}
	attached := len(f.thingPrincipals[name]) > 0
	for p := range f.detaching[name] {
		f.observeDetach(name, p)
		attached = true
	}
	if attached {
		return nil, invalidRequest("Cannot delete. Thing %s is still attached to one or more principals", name)
	}
	delete(f.things, name)
	delete(f.thingPrincipals, name)
	f.principalsChanged()
	delete(f.detaching, name)
	return nil, nil
}

// principal checks a principal given in the x-amzn-principal header; certificates must exist.
func (f *IoT) principal(p string) *apiError {
	if p == "" {
		return invalidRequest("principal is required")
	}
	if id, ok := strings.CutPrefix(p, iotCertARNPfx); ok {
		if _, exists := f.certs[id]; !exists {
			return notFound("The certificate given in the principal does not exist (arn: %s)", p)
		}
	}
	return nil
}

func (f *IoT) attachThingPrincipal(name, principal string) (any, *apiError) {
	t, e := f.thing(name)
	if e != nil {
		return nil, e
	}
	if e := f.principal(principal); e != nil {
		return nil, e
	}
	delete(f.detaching[t.Name], principal)
	if len(f.detaching[t.Name]) == 0 {
		delete(f.detaching, t.Name)
	}
	if !slices.Contains(f.thingPrincipals[t.Name], principal) {
		f.thingPrincipals[t.Name] = append(f.thingPrincipals[t.Name], principal)
		f.principalsChanged()
	}
	return nil, nil
}

func (f *IoT) detachThingPrincipal(name, principal string) (any, *apiError) {
	t, e := f.thing(name)
	if e != nil {
		return nil, e
	}
	if principal == "" {
		return nil, invalidRequest("principal is required")
	}
	if slices.Contains(f.thingPrincipals[t.Name], principal) && f.detachDelay > 0 {
		if f.detaching[t.Name] == nil {
			f.detaching[t.Name] = map[string]int{}
		}
		f.detaching[t.Name][principal] = f.detachDelay
	}
	f.thingPrincipals[t.Name] = slices.DeleteFunc(f.thingPrincipals[t.Name], func(p string) bool { return p == principal })
	f.principalsChanged()
	if len(f.thingPrincipals[t.Name]) == 0 {
		delete(f.thingPrincipals, t.Name)
	}
	return nil, nil
}

// observeDetach counts one call that still saw a detaching principal; the last one it was visible to settles it.
func (f *IoT) observeDetach(thing, principal string) {
	ps := f.detaching[thing]
	if ps == nil {
		return
	}
	if ps[principal]--; ps[principal] <= 0 {
		delete(ps, principal)
	}
	if len(ps) == 0 {
		delete(f.detaching, thing)
	}
}

func (f *IoT) listThingPrincipals(name string, q url.Values) (any, *apiError) {
	t, e := f.thing(name)
	if e != nil {
		return nil, e
	}
	visible := slices.Clone(f.thingPrincipals[t.Name])
	for _, p := range slices.Sorted(maps.Keys(f.detaching[t.Name])) {
		visible = append(visible, p)
		f.observeDetach(t.Name, p)
	}
	page, next, e := iotPage(visible, q.Get("nextToken"), q.Get("maxResults"), 25, 250)
	if e != nil {
		return nil, e
	}
	return withNext(map[string]any{"principals": page}, "nextToken", next), nil
}

func (f *IoT) listPrincipalThings(principal string, q url.Values) (any, *apiError) {
	if e := f.principal(principal); e != nil {
		return nil, e
	}
	names := f.thingsOfPrincipal(principal)
	for name, ps := range f.detaching {
		if _, ok := ps[principal]; ok {
			names = append(names, name)
			f.observeDetach(name, principal)
		}
	}
	slices.Sort(names)
	page, next, e := iotPage(names, q.Get("nextToken"), q.Get("maxResults"), 25, 250)
	if e != nil {
		return nil, e
	}
	return withNext(map[string]any{"things": page}, "nextToken", next), nil
}

func (f *IoT) createThingType(name string, body []byte) (any, *apiError) {
	if !thingNameRE.MatchString(name) {
		return nil, invalidRequest("thingTypeName %q is not valid: want 1 to 128 characters of [a-zA-Z0-9:_-]", name)
	}
	var in struct {
		Properties *struct {
			Description string   `json:"thingTypeDescription"`
			Searchable  []string `json:"searchableAttributes"`
		} `json:"thingTypeProperties"`
	}
	if e := decodeJSON(body, &in, "InvalidRequestException"); e != nil {
		return nil, e
	}
	if tt, ok := f.thingTypes[name]; ok {
		return nil, alreadyExists(tt.id, tt.arn, "Thing type %s already exists", name)
	}
	tt := &thingType{name: name, arn: iotARN("thingtype/" + name), id: newUUID(), created: time.Now().UTC()}
	if in.Properties != nil {
		tt.description, tt.searchable = in.Properties.Description, in.Properties.Searchable
	}
	f.thingTypes[name] = tt
	return map[string]any{"thingTypeName": tt.name, "thingTypeArn": tt.arn, "thingTypeId": tt.id}, nil
}

func (tt *thingType) definition() map[string]any {
	props := map[string]any{}
	if tt.description != "" {
		props["thingTypeDescription"] = tt.description
	}
	if len(tt.searchable) > 0 {
		props["searchableAttributes"] = tt.searchable
	}
	return map[string]any{
		"thingTypeName":       tt.name,
		"thingTypeArn":        tt.arn,
		"thingTypeProperties": props,
		"thingTypeMetadata":   tt.metadata(),
	}
}

func (tt *thingType) metadata() map[string]any {
	m := map[string]any{"deprecated": tt.deprecated != nil, "creationDate": epoch(tt.created)}
	if tt.deprecated != nil {
		m["deprecationDate"] = epoch(*tt.deprecated)
	}
	return m
}

func (f *IoT) deprecateThingType(name string, body []byte) (any, *apiError) {
	var in struct {
		UndoDeprecate bool `json:"undoDeprecate"`
	}
	if e := decodeJSON(body, &in, "InvalidRequestException"); e != nil {
		return nil, e
	}
	tt, ok := f.thingTypes[name]
	if !ok {
		return nil, notFound("Thing type %s does not exist", name)
	}
	if in.UndoDeprecate {
		tt.deprecated = nil
		return nil, nil
	}
	if tt.deprecated == nil {
		now := f.reg.clock()
		tt.deprecated = &now
	}
	return nil, nil
}

func (f *IoT) describeThingType(name string) (any, *apiError) {
	tt, ok := f.thingTypes[name]
	if !ok {
		return nil, notFound("Thing type %s does not exist", name)
	}
	d := tt.definition()
	d["thingTypeId"] = tt.id
	return d, nil
}

func (f *IoT) listThingTypes(q url.Values) (any, *apiError) {
	names := slices.Sorted(maps.Keys(f.thingTypes))
	if want := q.Get("thingTypeName"); want != "" {
		names = slices.DeleteFunc(names, func(n string) bool { return n != want })
	}
	page, next, e := iotPage(names, q.Get("nextToken"), q.Get("maxResults"), 50, 250)
	if e != nil {
		return nil, e
	}
	defs := make([]map[string]any, 0, len(page))
	for _, n := range page {
		defs = append(defs, f.thingTypes[n].definition())
	}
	return withNext(map[string]any{"thingTypes": defs}, "nextToken", next), nil
}

func validatePolicyName(name string) *apiError {
	if !policyNameRE.MatchString(name) {
		return invalidRequest("policyName %q is not valid: want 1 to 128 characters of [a-zA-Z0-9+=,.@_-]", name)
	}
	return nil
}

// maxPolicySize is AWS IoT's limit on a policy document, counted in characters without whitespace.
const maxPolicySize = 2048

func policySize(doc string) int {
	n := 0
	for _, r := range doc {
		if !unicode.IsSpace(r) {
			n++
		}
	}
	return n
}

func (f *IoT) createPolicy(name string, body []byte) (any, *apiError) {
	if e := validatePolicyName(name); e != nil {
		return nil, e
	}
	var in struct {
		Document string `json:"policyDocument"`
	}
	if e := decodeJSON(body, &in, "InvalidRequestException"); e != nil {
		return nil, e
	}
	if n := policySize(in.Document); n > maxPolicySize {
		return nil, errorf(400, "MalformedPolicyException",
			"Policy document is %d characters long without whitespace: the limit is %d", n, maxPolicySize)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(in.Document), &doc); err != nil {
		return nil, errorf(400, "MalformedPolicyException", "Policy document is not valid JSON: %v", err)
	}
	if _, ok := doc["Statement"]; !ok {
		return nil, errorf(400, "MalformedPolicyException", "Policy document has no Statement")
	}
	if p, ok := f.policies[name]; ok {
		return nil, alreadyExists(p.name, p.arn, "Policy %s already exists", name)
	}
	now := time.Now().UTC()
	p := &iotPolicy{name: name, arn: iotARN("policy/" + name), document: in.Document, created: now, modified: now,
		generationID: newUUID()}
	f.policies[name] = p
	return map[string]any{"policyName": p.name, "policyArn": p.arn, "policyDocument": p.document,
		"policyVersionId": "1"}, nil
}

func (f *IoT) policy(name string) (*iotPolicy, *apiError) {
	if e := validatePolicyName(name); e != nil {
		return nil, e
	}
	p, ok := f.policies[name]
	if !ok {
		return nil, notFound("Policy %s does not exist", name)
	}
	return p, nil
}

func (f *IoT) getPolicy(name string) (any, *apiError) {
	p, e := f.policy(name)
	if e != nil {
		return nil, e
	}
	return map[string]any{
		"policyName": p.name, "policyArn": p.arn, "policyDocument": p.document, "defaultVersionId": "1",
		"creationDate": epoch(p.created), "lastModifiedDate": epoch(p.modified), "generationId": p.generationID,
	}, nil
}

func (f *IoT) deletePolicy(name string) (any, *apiError) {
	p, e := f.policy(name)
	if e != nil {
		return nil, e
	}
	for _, names := range f.targetPolicies {
		if slices.Contains(names, name) {
			return nil, errorf(409, "DeleteConflictException",
				"The policy cannot be deleted as the policy is attached to one or more principals (name=%s)", name)
		}
	}
	delete(f.policies, p.name)
	return nil, nil
}

func policyTarget(body []byte) (string, *apiError) {
	var in struct {
		Target string `json:"target"`
	}
	if e := decodeJSON(body, &in, "InvalidRequestException"); e != nil {
		return "", e
	}
	if in.Target == "" {
		return "", invalidRequest("target is required")
	}
	return in.Target, nil
}

// maxPoliciesPerTarget is AWS IoT's quota of policies attached to one certificate or other target.
const maxPoliciesPerTarget = 10

func (f *IoT) attachPolicy(name string, body []byte) (any, *apiError) {
	p, e := f.policy(name)
	if e != nil {
		return nil, e
	}
	target, e := policyTarget(body)
	if e != nil {
		return nil, e
	}
	if e := f.principal(target); e != nil {
		return nil, e
	}
	if slices.Contains(f.targetPolicies[target], p.name) {
		return nil, nil
	}
	if len(f.targetPolicies[target]) >= maxPoliciesPerTarget {
		return nil, errorf(410, "LimitExceededException", "%s already has %d policies attached", target,
			maxPoliciesPerTarget)
	}
	f.targetPolicies[target] = append(f.targetPolicies[target], p.name)
	return nil, nil
}

func (f *IoT) detachPolicy(name string, body []byte) (any, *apiError) {
	if e := validatePolicyName(name); e != nil {
		return nil, e
	}
	// DetachPolicy's error set has no ResourceNotFoundException: a missing policy is an invalid request.
	p, ok := f.policies[name]
	if !ok {
		return nil, invalidRequest("Policy %s does not exist", name)
	}
	target, e := policyTarget(body)
	if e != nil {
		return nil, e
	}
	f.targetPolicies[target] = slices.DeleteFunc(f.targetPolicies[target], func(n string) bool { return n == p.name })
	if len(f.targetPolicies[target]) == 0 {
		delete(f.targetPolicies, target)
	}
	return nil, nil
}

func (f *IoT) listAttachedPolicies(target string, q url.Values) (any, *apiError) {
	if e := f.principal(target); e != nil {
		return nil, e
	}
	page, next, e := iotPage(f.targetPolicies[target], q.Get("marker"), q.Get("pageSize"), 25, 250)
	if e != nil {
		return nil, e
	}
	policies := make([]map[string]string, 0, len(page))
	for _, n := range page {
		policies = append(policies, map[string]string{"policyName": n, "policyArn": iotARN("policy/" + n)})
	}
	return withNext(map[string]any{"policies": policies}, "nextMarker", next), nil
}

func (f *IoT) updateEventConfigurations(body []byte) (any, *apiError) {
	var in struct {
		EventConfigurations map[string]struct {
			Enabled bool `json:"Enabled"`
		} `json:"eventConfigurations"`
	}
	if e := decodeJSON(body, &in, "InvalidRequestException"); e != nil {
		return nil, e
	}
	for typ := range in.EventConfigurations {
		if !slices.Contains(iotEventTypes, typ) {
			return nil, invalidRequest("event type %s is not valid", typ)
		}
	}
	for typ, c := range in.EventConfigurations {
		f.events[typ] = c.Enabled
	}
	f.eventsModified = time.Now().UTC()
	return nil, nil
}

func (f *IoT) describeEventConfigurations() (any, *apiError) {
	cfg := map[string]any{}
	for typ, on := range f.events {
		cfg[typ] = map[string]bool{"Enabled": on}
	}
	return map[string]any{
		"eventConfigurations": cfg,
		"creationDate":        epoch(f.eventsCreated),
		"lastModifiedDate":    epoch(f.eventsModified),
	}, nil
}

// iotPage returns one page of items for a list operation with an optional page size (default def, at most limit).
func iotPage[T any](items []T, token, size string, def, limit int) ([]T, string, *apiError) {
	n := def
	if size != "" {
		v, err := strconv.Atoi(size)
		if err != nil || v < 1 || v > limit {
			return nil, "", invalidRequest("page size %q is not valid: want 1 to %d", size, limit)
		}
		n = v
	}
	page, next, err := paginate(items, token, n)
	if err != nil {
		return nil, "", invalidRequest("%v", err)
	}
	return page, next, nil
}

func withNext(m map[string]any, key, next string) map[string]any {
	if next != "" {
		m[key] = next
	}
	return m
}
