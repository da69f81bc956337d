package pki

import (
	"testing"
	"time"
)

// TestValidityBoundaries pins the validity window: notBefore is the start of the day before issuance (UTC), for
// clock skew, and notAfter is the issuing time plus the validity, so even a one-day certificate is valid for a full
// day from the moment it is issued.
func TestValidityBoundaries(t *testing.T) {
	csr := mustCSR(t, "producer1/data")
	day := 24 * time.Hour
	tests := []struct {
		name     string
		now      time.Time
		validity time.Duration
	}{
		{"one day at midnight", time.Date(2026, 5, 10, 0, 0, 0, 0, time.UTC), day},
		{"one day just before midnight", time.Date(2026, 5, 10, 23, 59, 59, 0, time.UTC), day},
		{"one day, fractional second", time.Date(2026, 5, 10, 12, 0, 0, 999_999_999, time.UTC), day},
		{"one day, other zone", time.Date(2026, 5, 11, 1, 30, 0, 0, time.FixedZone("UTC+2", 2*3600)), day},
		{"leap day", time.Date(2028, 2, 29, 18, 0, 0, 0, time.UTC), day},
		{"one year", time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC), 365 * day},
		{"maximum days", time.Date(2026, 1, 1, 6, 0, 0, 0, time.UTC), 36500 * day},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _, err := IssueCrossAccount(IssueRequest{CSR: csr, Topic: "producer1/data", Endpoint: testEndpoint, Validity: tt.validity, Now: tt.now})
			if err != nil {
				t.Fatalf("IssueCrossAccount = %v", err)
			}
			cert, err := ParseCertificate(p)
			if err != nil {
				t.Fatal(err)
			}
			issued := tt.now.UTC().Truncate(time.Second) // X.509 times hold whole seconds
			y, m, d := tt.now.UTC().Date()
			wantNotBefore := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).AddDate(0, 0, -1)
			if !cert.NotBefore.Equal(wantNotBefore) {
				t.Errorf("notBefore = %v, want %v (start of the day before issuance)", cert.NotBefore, wantNotBefore)
			}
			if want := issued.Add(tt.validity); !cert.NotAfter.Equal(want) {
				t.Errorf("notAfter = %v, want %v (issue time + validity)", cert.NotAfter, want)
			}
			if skew := issued.Sub(cert.NotBefore); skew < day {
				t.Errorf("notBefore is %v before issuance, want at least a day for clock skew", skew)
			}
			// Valid at issuance and in the last second of its validity; expired one second later.
			for _, at := range []struct {
				t     time.Time
				valid bool
			}{
				{issued, true},
				{issued.Add(tt.validity - time.Second), true},
				{issued.Add(tt.validity), true},
				{issued.Add(tt.validity + time.Second), false},
				{cert.NotBefore.Add(-time.Second), false},
			} {
				if got := !at.t.Before(cert.NotBefore) && !at.t.After(cert.NotAfter); got != at.valid {
					t.Errorf("valid at %v = %v, want %v", at.t, got, at.valid)
				}
			}
		})
	}
}
