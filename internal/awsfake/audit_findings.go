package awsfake

// Device Defender audit findings, as the rotation reads them (ListAuditFindings,
// https://docs.aws.amazon.com/iot/latest/apireference/API_ListAuditFindings.html): POST /audit/findings with a
// checkName and either a taskId or a startTime/endTime window (not both: InvalidRequestException); findings carry
// nonCompliantResource.resourceIdentifier.deviceCertificateId for DEVICE_CERTIFICATE_EXPIRING_CHECK, and pages of
// at most 250. A test adds findings with PutAuditFinding, as an audit would.

import (
	"encoding/json"
	"slices"
	"time"
)

// AuditFinding is one finding of a Device Defender audit.
type AuditFinding struct {
	TaskID        string
	CheckName     string // e.g. DEVICE_CERTIFICATE_EXPIRING_CHECK
	CertificateID string // the non-compliant device certificate
	Time          time.Time
	Reason        string
	Suppressed    bool
}

var auditRoutes = []struct{ method, path, op string }{
	{"POST", "/audit/findings", "ListAuditFindings"},
}

// PutAuditFinding records a finding, as a completed audit task does.
func (f *IoT) PutAuditFinding(a AuditFinding) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.audit = append(f.audit, a)
}

func (f *IoT) listAuditFindings(body []byte) (any, *apiError) {
	var in struct {
		CheckName              string   `json:"checkName"`
		TaskID                 string   `json:"taskId"`
		StartTime              *float64 `json:"startTime"`
		EndTime                *float64 `json:"endTime"`
		Max                    int      `json:"maxResults"`
		NextToken              string   `json:"nextToken"`
		ListSuppressedFindings bool     `json:"listSuppressedFindings"`
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, invalidRequest("malformed request body: %v", err)
		}
	}
	if in.TaskID != "" && (in.StartTime != nil || in.EndTime != nil) {
		return nil, invalidRequest("Specify either taskId or startTime and endTime, not both.")
	}
	if in.TaskID == "" && (in.StartTime == nil || in.EndTime == nil) {
		return nil, invalidRequest("Specify a taskId, or both startTime and endTime.")
	}
	var out []map[string]any
	for i, a := range f.audit {
		switch {
		case in.CheckName != "" && a.CheckName != in.CheckName,
			in.TaskID != "" && a.TaskID != in.TaskID,
			in.StartTime != nil && epoch(a.Time) < *in.StartTime,
			in.EndTime != nil && epoch(a.Time) > *in.EndTime,
			a.Suppressed && !in.ListSuppressedFindings:
			continue
		}
		out = append(out, map[string]any{
			"findingId": "finding-" + itoa(i), "taskId": a.TaskID, "checkName": a.CheckName,
			"findingTime": epoch(a.Time), "severity": "MEDIUM", "isSuppressed": a.Suppressed,
			"nonCompliantResource": map[string]any{
				"resourceType":       "DEVICE_CERTIFICATE",
				"resourceIdentifier": map[string]any{"deviceCertificateId": a.CertificateID},
			},
			"reasonForNonCompliance": a.Reason, "reasonForNonComplianceCode": "CERTIFICATE_APPROACHING_EXPIRATION",
		})
	}
	size := in.Max
	if size == 0 {
		size = 25
	}
	page, next, e := iotPage(out, in.NextToken, itoa(size), 25, 250)
	if e != nil {
		return nil, e
	}
	return withNext(map[string]any{"findings": slices.Clip(page)}, "nextToken", next), nil
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }
