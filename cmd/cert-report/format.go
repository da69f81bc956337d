package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/iotcert/iotcert/internal/capability"
)

// jsonRow is one certificate in the JSON output.
type jsonRow struct {
	ID              string   `json:"id"`
	Status          string   `json:"status"`
	NotAfter        string   `json:"notAfter"`
	DaysLeft        int      `json:"daysLeft"`
	Capability      string   `json:"capability"`
	CapabilityName  string   `json:"capabilityName"`
	AttributedBy    string   `json:"attributedBy"`
	IssuerKind      string   `json:"issuerKind"`
	Issuer          string   `json:"issuer"`
	CACertificateID string   `json:"caCertificateId,omitempty"`
	Mode            string   `json:"certificateMode"`
	Things          []string `json:"things"`
	Policies        []string `json:"policies"`
}

var header = []string{"NOT AFTER", "DAYS", "STATUS", "CAPABILITY", "ISSUER", "ID", "THINGS", "POLICIES", "ATTRIBUTED BY"}

// daysLeft is the number of whole days from now to notAfter, negative once expired.
func daysLeft(notAfter, now time.Time) int {
	return int(math.Floor(notAfter.Sub(now).Hours() / 24))
}

func capName(letter, none string) string {
	if letter == "" {
		return none
	}
	return letter + " " + capability.Names[letter]
}

func join(items []string, none string) string {
	if len(items) == 0 {
		return none
	}
	return strings.Join(items, ",")
}

// clean keeps a value that came from AWS (an issuer name from a certificate anyone may have registered) from moving
// the terminal or breaking a row: control and other non-graphic characters become '?'.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsGraphic(r) && r != '\t' {
			return r
		}
		return '?'
	}, s)
}

// csvCell also defuses a cell a spreadsheet would take for a formula (OWASP "CSV injection"): a leading = + - @ gets
// a quote.
func csvCell(s string) string {
	s = clean(s)
	if s != "" && strings.ContainsRune("=+-@", rune(s[0])) {
		return "'" + s
	}
	return s
}

// fields are a row's columns; none stands for an empty value (the table shows "-", CSV leaves the cell empty).
func fields(r certRow, now time.Time, none string) []string {
	return []string{
		r.NotAfter.UTC().Format(time.RFC3339), strconv.Itoa(daysLeft(r.NotAfter, now)), r.Status, capName(r.Capability, none),
		r.Issuer, r.ID, join(r.Things, none), join(r.Policies, none), r.Basis,
	}
}

// textColumns are the columns whose values come from outside the report (names and issuers).
var textColumns = []int{4, 6, 7, 8}

func write(w io.Writer, format string, rows []certRow, now time.Time) error {
	switch format {
	case "json":
		out := make([]jsonRow, 0, len(rows))
		for _, r := range rows {
			out = append(out, jsonRow{
				ID: r.ID, Status: r.Status, NotAfter: r.NotAfter.UTC().Format(time.RFC3339), DaysLeft: daysLeft(r.NotAfter, now),
				Capability: r.Capability, CapabilityName: capability.Names[r.Capability], AttributedBy: r.Basis,
				IssuerKind: r.IssuerKind, Issuer: r.Issuer, CACertificateID: r.CAID, Mode: r.Mode,
				Things: nonNil(r.Things), Policies: nonNil(r.Policies),
			})
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	case "csv":
		cw := csv.NewWriter(w)
		_ = cw.Write(header)
		for _, r := range rows {
			f := fields(r, now, "")
			for _, i := range textColumns {
				f[i] = csvCell(f[i])
			}
			if err := cw.Write(f); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	default:
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(header, "\t"))
		for _, r := range rows {
			f := fields(r, now, "-")
			for i := range f {
				f[i] = clean(f[i])
			}
			fmt.Fprintln(tw, strings.Join(f, "\t"))
		}
		return tw.Flush()
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
