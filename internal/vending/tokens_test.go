package vending

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseTokens(t *testing.T) {
	good := `{"tokens":[{"id":"a1b2c3d4","sha256":"` + HashToken("x") + `","thingPrefix":"sensor-","expires":"2030-01-01T00:00:00Z","singleUse":true}]}`
	tests := []struct {
		name    string
		in      string
		wantN   int
		wantErr string
	}{
		{"good", good, 1, ""},
		{"example file", string(readTestdata(t, "tokens-example.json")), 1, ""},
		{"empty list", `{"tokens":[]}`, 0, ""},
		{"empty string", ``, 0, ErrEmptyTokenSecret.Error()},
		{"placeholder object", `{}`, 0, ErrEmptyTokenSecret.Error()},
		{"generated placeholder", `{"password":"xyz"}`, 0, ErrEmptyTokenSecret.Error()},
		{"not json", `abc`, 0, "not a JSON object"},
		{"bad hash", strings.Replace(good, HashToken("x"), "abcd", 1), 0, "64 hex digits"},
		{"bad id", strings.Replace(good, "a1b2c3d4", "a b", 1), 0, "id must match"},
		{"bad expiry", strings.Replace(good, "2030-01-01T00:00:00Z", "tomorrow", 1), 0, "RFC 3339"},
		{"bad prefix", strings.Replace(good, "sensor-", "sensor/", 1), 0, "thingPrefix"},
		{"unknown field", strings.Replace(good, `"singleUse"`, `"extra":1,"singleUse"`, 1), 0, "unknown field"},
		{"duplicate id", `{"tokens":[` + good[11:len(good)-2] + `,` + good[11:len(good)-2] + `]}`, 0, "duplicate id"},
		{"null entry", `{"tokens":[null]}`, 0, "is null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseTokens([]byte(tt.in))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseTokens() error = %v, want nil", err)
				}
				if len(s.Tokens) != tt.wantN {
					t.Errorf("ParseTokens() has %d tokens, want %d", len(s.Tokens), tt.wantN)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseTokens() error = %v, want one containing %q", err, tt.wantErr)
			}
			if errors.Is(err, ErrEmptyTokenSecret) && (s == nil || len(s.Tokens) != 0) {
				t.Errorf("ParseTokens() set = %v, want an empty set with ErrEmptyTokenSecret", s)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &TokenSet{}
	mustAdd := func(id, token string, exp time.Time) {
		if _, err := s.Add(id, token, "", exp, false); err != nil {
			t.Fatal(err)
		}
	}
	mustAdd("live", "tok-live", now.Add(time.Hour))
	mustAdd("forever", "tok-forever", time.Time{})
	mustAdd("old", "tok-old", now.Add(-time.Second))
	// Round trip through the secret's JSON, as the authorizer sees it.
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "tok-live") {
		t.Fatalf("Marshal() = %s, contains a plaintext token", b)
	}
	s, err = ParseTokens(b)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		token   string
		wantID  string
		wantErr error
	}{
		{"tok-live", "live", nil},
		{"tok-forever", "forever", nil},
		{"tok-old", "old", ErrExpiredToken},
		{"tok-other", "", ErrUnknownToken},
		{"", "", ErrUnknownToken},
	}
	for _, tt := range tests {
		r, err := s.Lookup(tt.token, now)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("Lookup(%q) error = %v, want %v", tt.token, err, tt.wantErr)
		}
		id := ""
		if r != nil {
			id = r.ID
		}
		if id != tt.wantID {
			t.Errorf("Lookup(%q) id = %q, want %q", tt.token, id, tt.wantID)
		}
	}
	if !s.Remove("live") || s.Remove("live") {
		t.Errorf("Remove(live) twice = first true then false, want that")
	}
	if _, err := s.Lookup("tok-live", now); !errors.Is(err, ErrUnknownToken) {
		t.Errorf("Lookup(revoked) error = %v, want %v", err, ErrUnknownToken)
	}
	if _, err := s.Add("forever", "x", "", time.Time{}, false); err == nil {
		t.Errorf("Add(duplicate id) error = nil, want one")
	}
}

func TestNewToken(t *testing.T) {
	id, tok, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) != 32 {
		t.Errorf("NewToken() token decodes to %d bytes (err %v), want 32", len(raw), err)
	}
	if !tokenIDRe.MatchString(id) || len(id) != 8 {
		t.Errorf("NewToken() id = %q, want 8 hex digits", id)
	}
	id2, tok2, _ := NewToken()
	if id2 == id || tok2 == tok {
		t.Errorf("NewToken() twice gave the same id or token")
	}
}

func TestParseAuthHeader(t *testing.T) {
	tests := []struct {
		name   string
		header string
		ident  string
		n      int
		want   string
		ok     bool
	}{
		{"seed shape", "DeviceToken NjWO2tVh6fVAeNuLwRsPi-c6N7SP5-DT", "DeviceToken", 2, "NjWO2tVh6fVAeNuLwRsPi-c6N7SP5-DT", true},
		{"three parts", "DeviceToken ab cd", "DeviceToken", 3, "ab cd", true},
		{"wrong identifier", "Bearer abc", "DeviceToken", 2, "", false},
		{"identifier case", "devicetoken abc", "DeviceToken", 2, "", false},
		{"no token", "DeviceToken", "DeviceToken", 2, "", false},
		{"empty token", "DeviceToken ", "DeviceToken", 2, "", false},
		{"double space", "DeviceToken  abc", "DeviceToken", 2, "", false},
		{"too many parts", "DeviceToken a b", "DeviceToken", 2, "", false},
		{"empty", "", "DeviceToken", 2, "", false},
		{"length below 2", "DeviceToken", "DeviceToken", 1, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAuthHeader(tt.header, tt.ident, tt.n)
			if got != tt.want || (err == nil) != tt.ok {
				t.Errorf("ParseAuthHeader(%q) = %q, %v, want %q, ok=%v", tt.header, got, err, tt.want, tt.ok)
			}
		})
	}
}

func FuzzParseAuthHeader(f *testing.F) {
	for _, s := range []string{"DeviceToken abc", "DeviceToken  abc", "DeviceToken", "", " ", "DeviceToken a b", "x\x00 y"} {
		f.Add(s, 2)
	}
	f.Add("DeviceToken a b", 3)
	f.Fuzz(func(t *testing.T, header string, n int) {
		tok, err := ParseAuthHeader(header, "DeviceToken", n)
		if err != nil {
			if tok != "" {
				t.Fatalf("ParseAuthHeader(%q, %d) = %q with error %v, want empty token", header, n, tok, err)
			}
			return
		}
		if tok == "" {
			t.Fatalf("ParseAuthHeader(%q, %d) = empty token without error", header, n)
		}
		if got := "DeviceToken " + tok; got != header {
			t.Fatalf("ParseAuthHeader(%q, %d) = %q, which does not rebuild the header", header, n, tok)
		}
		if len(strings.Split(header, " ")) != n {
			t.Fatalf("ParseAuthHeader(%q, %d) accepted a header of another length", header, n)
		}
	})
}
