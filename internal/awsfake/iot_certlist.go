package awsfake

// Listing certificates: ListCertificates, with the seeding and concurrent-deletion hooks an inventory report is tested
// with. The operations run with f.mu held, like those of iot.go.
//
// ListCertificates (https://docs.aws.amazon.com/iot/latest/apireference/API_ListCertificates.html): GET /certificates,
// pageSize 1 to 250 (default 25), an opaque marker, results by creation date, newest first unless isAscendingOrder.
// The marker here names the last certificate returned rather than an offset, so a certificate deleted between two
// pages neither repeats nor hides another one: a report must not depend on what AWS does there, and this is the
// behaviour under which a missed certificate would be the report's fault.

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// certListState is what iot_certlist.go keeps: certificates to delete once listed, and the principal → things index
// that ListPrincipalThings answers from (a scan of every thing per call made a 10,000-certificate report quadratic).
type certListState struct {
	deleteWhenListed map[string]bool
	byPrincipal      map[string][]string // nil when a write to thingPrincipals made it stale
	sorted           [2][]*iotCert       // certificates in ListCertificates order: [0] newest first, [1] oldest first
}

// certsInOrder returns every certificate in ListCertificates order. The sort of the previous call is reused when it
// still holds exactly the registry's certificates (same count, each still registered), which any change of the set
// breaks: paging through 100,000 certificates then costs one sort, not one per page.
func (f *IoT) certsInOrder(asc bool, order func(a, b *iotCert) int) []*iotCert {
	k := 0
	if asc {
		k = 1
	}
	if cached := f.list.sorted[k]; len(cached) == len(f.certs) && !slices.ContainsFunc(cached, func(c *iotCert) bool {
		return f.certs[c.ID] != c
	}) {
		return cached
	}
	all := make([]*iotCert, 0, len(f.certs))
	for _, c := range f.certs {
		all = append(all, c)
	}
	slices.SortFunc(all, order)
	f.list.sorted[k] = all
	return all
}

// principalsChanged marks the principal index stale; every write to f.thingPrincipals calls it.
func (f *IoT) principalsChanged() { f.list.byPrincipal = nil }

// thingsOfPrincipal returns the things a principal is attached to (a new slice, unordered), rebuilding the index
// after a write. Each hit is checked against thingPrincipals, so a writer that forgot principalsChanged can make the
// answer miss an attachment but never invent one.
func (f *IoT) thingsOfPrincipal(principal string) []string {
	if f.list.byPrincipal == nil {
		f.list.byPrincipal = map[string][]string{}
		for name, ps := range f.thingPrincipals {
			for _, p := range ps {
				f.list.byPrincipal[p] = append(f.list.byPrincipal[p], name)
			}
		}
	}
	var out []string
	for _, name := range f.list.byPrincipal[principal] {
		if slices.Contains(f.thingPrincipals[name], principal) {
			out = append(out, name)
		}
	}
	return out
}

// ImportedCertificate is a certificate put straight into the fake's registry (ImportCertificates), as if a
// capability had registered or created it.
type ImportedCertificate struct {
	PEM    string
	Status string // default ACTIVE
	Mode   string // default DEFAULT
	CAID   string // the registering CA certificate's id, if any
	// Created is the creation date ListCertificates orders by. Default: the time of the import.
	Created time.Time
}

// ImportCertificates adds certificates without going through the API, for tests and benchmarks that need a large
// registry quickly. It returns their ids in the order given. A PEM that does not parse, or one already present, is an
// error and nothing is added.
func (f *IoT) ImportCertificates(certs []ImportedCertificate) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := make([]string, len(certs))
	seen := map[string]bool{}
	for i, in := range certs {
		c, err := parseCertificatePEM([]byte(in.PEM))
		if err != nil {
			return nil, fmt.Errorf("awsfake: import certificate %d: %w", i, err)
		}
		id := certificateID(c.Raw)
		if _, ok := f.certs[id]; ok || seen[id] {
			return nil, fmt.Errorf("awsfake: import certificate %d: %s is already registered", i, id)
		}
		seen[id], ids[i] = true, id
	}
	for i, in := range certs {
		c, _ := parseCertificatePEM([]byte(in.PEM))
		ic := f.addCert(c.Raw, cmp.Or(in.Status, "ACTIVE"), cmp.Or(in.Mode, "DEFAULT"))
		ic.CAID = in.CAID
		if !in.Created.IsZero() {
			ic.created, ic.modified = in.Created.UTC(), in.Created.UTC()
		}
		ids[i] = ic.ID
	}
	return ids, nil
}

// AttachPolicyToCertificate attaches a policy (defined if missing, with a minimal document) to a certificate, and
// AttachThingToCertificate a thing (defined if missing, with these attributes), without going through the API.
func (f *IoT) AttachPolicyToCertificate(certID, policy string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.policies[policy]; !ok {
		now := time.Now().UTC()
		f.policies[policy] = &iotPolicy{name: policy, arn: iotARN("policy/" + policy),
			document: `{"Version":"2012-10-17","Statement":[]}`, created: now, modified: now, generationID: newUUID()}
	}
	arn := iotCertARNPfx + certID
	if !slices.Contains(f.targetPolicies[arn], policy) {
		f.targetPolicies[arn] = append(f.targetPolicies[arn], policy)
	}
}

// AttachThingToCertificate attaches the named thing to a certificate; the thing is defined with typeName and attrs
// when it does not exist (an existing thing is left as it is).
func (f *IoT) AttachThingToCertificate(certID, thing, typeName string, attrs map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.things[thing]; !ok {
		if typeName != "" {
			if _, ok := f.thingTypes[typeName]; !ok {
				f.thingTypes[typeName] = &thingType{name: typeName, arn: iotARN("thingtype/" + typeName), id: newUUID(),
					created: time.Now().UTC()}
			}
		}
		a := map[string]string{}
		for k, v := range attrs {
			a[k] = v
		}
		f.things[thing] = &Thing{Name: thing, ARN: iotARN("thing/" + thing), ID: newUUID(), TypeName: typeName,
			Attributes: a, Version: 1}
	}
	arn := iotCertARNPfx + certID
	if !slices.Contains(f.thingPrincipals[thing], arn) {
		f.thingPrincipals[thing] = append(f.thingPrincipals[thing], arn)
		f.principalsChanged()
	}
}

// DeleteWhenListed makes each of these certificates disappear right after a ListCertificates page that contains it
// is answered, with its thing and policy attachments: what another operator deleting it while a report runs looks
// like. DescribeCertificate and the principal lists then answer ResourceNotFoundException for it.
func (f *IoT) DeleteWhenListed(ids ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.list.deleteWhenListed == nil {
		f.list.deleteWhenListed = map[string]bool{}
	}
	for _, id := range ids {
		f.list.deleteWhenListed[strings.ToLower(id)] = true
	}
}

func (f *IoT) removeCert(c *iotCert) {
	delete(f.targetPolicies, c.ARN)
	f.principalsChanged()
	for thing, ps := range f.thingPrincipals {
		f.thingPrincipals[thing] = slices.DeleteFunc(ps, func(p string) bool { return p == c.ARN })
		if len(f.thingPrincipals[thing]) == 0 {
			delete(f.thingPrincipals, thing)
		}
	}
	delete(f.certs, c.ID)
}

// certMarker is the opaque position after one certificate in creation order: base64 of "<unix nanos>:<id>", which
// fits the marker pattern [A-Za-z0-9+/]+={0,2} of the API reference.
func certMarker(c *iotCert) string {
	return base64.StdEncoding.EncodeToString([]byte(strconv.FormatInt(c.created.UnixNano(), 10) + ":" + c.ID))
}

func parseCertMarker(m string) (int64, string, bool) {
	b, err := base64.StdEncoding.DecodeString(m)
	if err != nil {
		return 0, "", false
	}
	ns, id, ok := strings.Cut(string(b), ":")
	if !ok {
		return 0, "", false
	}
	v, err := strconv.ParseInt(ns, 10, 64)
	return v, id, err == nil
}

func (f *IoT) listCertificates(q url.Values) (any, *apiError) {
	size := 25
	if s := q.Get("pageSize"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > 250 {
			return nil, invalidRequest("pageSize %q is not valid: want 1 to 250", s)
		}
		size = v
	}
	asc := q.Get("isAscendingOrder") == "true"
	order := func(a, b *iotCert) int {
		r := cmp.Or(a.created.Compare(b.created), strings.Compare(a.ID, b.ID))
		if asc {
			return r
		}
		return -r
	}
	all := f.certsInOrder(asc, order)
	start := 0
	if m := q.Get("marker"); m != "" {
		ns, id, ok := parseCertMarker(m)
		if !ok {
			return nil, invalidRequest("marker %q is not valid", m)
		}
		pos := &iotCert{Certificate: Certificate{ID: id}, created: time.Unix(0, ns)}
		start, _ = slices.BinarySearchFunc(all, pos, order)
		if start < len(all) && all[start].ID == id {
			start++
		}
	}
	end := min(start+size, len(all))
	page := all[start:end]
	out := make([]map[string]any, 0, len(page))
	for _, c := range page {
		out = append(out, map[string]any{
			"certificateArn": c.ARN, "certificateId": c.ID, "status": c.Status, "certificateMode": c.Mode,
			"creationDate": epoch(c.created),
		})
	}
	next := ""
	if end < len(all) {
		next = certMarker(page[len(page)-1])
	}
	for _, c := range page {
		if f.list.deleteWhenListed[c.ID] {
			delete(f.list.deleteWhenListed, c.ID)
			f.removeCert(c)
		}
	}
	return withNext(map[string]any{"certificates": out}, "nextMarker", next), nil
}
