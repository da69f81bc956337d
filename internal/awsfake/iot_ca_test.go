package awsfake_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"
)

type testCA struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	pem  string
}

func newTestCA(t *testing.T, cn string, isCA bool) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(5, 0, 0),
		BasicConstraintsValid: true, IsCA: isCA}
	if isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{key: key, cert: c, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

func (ca *testCA) sign(t *testing.T, cn string, notAfter time.Time) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestRegisterCACertificate(t *testing.T) {
	srv, c := newIoT(t)
	ctx := context.Background()
	ca := newTestCA(t, "Multi Region CA", true)
	code, err := c.GetRegistrationCode(ctx, &iot.GetRegistrationCodeInput{})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(code.RegistrationCode); got != srv.IoT.RegistrationCode() || len(got) != 64 {
		t.Fatalf("GetRegistrationCode() = %q", got)
	}
	other := newTestCA(t, "Other", true)
	bad := []struct {
		name string
		in   *iot.RegisterCACertificateInput
		want string
	}{
		{"not a CA", &iot.RegisterCACertificateInput{CaCertificate: aws.String(newTestCA(t, "leaf", false).pem),
			CertificateMode: types.CertificateModeSniOnly}, "not a CA certificate"},
		{"DEFAULT without verification", &iot.RegisterCACertificateInput{CaCertificate: aws.String(ca.pem)}, "verificationCertificate is required"},
		{"verification CN", &iot.RegisterCACertificateInput{CaCertificate: aws.String(ca.pem),
			VerificationCertificate: aws.String(ca.sign(t, "not-the-code", time.Now().Add(time.Hour)))}, "registration code"},
		{"verification signer", &iot.RegisterCACertificateInput{CaCertificate: aws.String(ca.pem),
			VerificationCertificate: aws.String(other.sign(t, srv.IoT.RegistrationCode(), time.Now().Add(time.Hour)))}, "not signed"},
		{"SNI_ONLY with verification", &iot.RegisterCACertificateInput{CaCertificate: aws.String(ca.pem),
			CertificateMode:         types.CertificateModeSniOnly,
			VerificationCertificate: aws.String(ca.sign(t, srv.IoT.RegistrationCode(), time.Now().Add(time.Hour)))}, "must be empty"},
	}
	for _, tt := range bad {
		if _, err := c.RegisterCACertificate(ctx, tt.in); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("RegisterCACertificate(%s) error = %v, want %q", tt.name, err, tt.want)
		}
	}
	out, err := c.RegisterCACertificate(ctx, &iot.RegisterCACertificateInput{CaCertificate: aws.String(ca.pem),
		VerificationCertificate: aws.String(ca.sign(t, srv.IoT.RegistrationCode(), time.Now().Add(time.Hour))),
		SetAsActive:             true})
	if err != nil {
		t.Fatalf("RegisterCACertificate(DEFAULT) error = %v", err)
	}
	id := aws.ToString(out.CertificateId)
	_, err = c.RegisterCACertificate(ctx, &iot.RegisterCACertificateInput{CaCertificate: aws.String(ca.pem),
		CertificateMode: types.CertificateModeSniOnly})
	var exists *types.ResourceAlreadyExistsException
	if !errors.As(err, &exists) {
		t.Errorf("second RegisterCACertificate() error = %v, want ResourceAlreadyExistsException", err)
	}
	d, err := c.DescribeCACertificate(ctx, &iot.DescribeCACertificateInput{CertificateId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	desc := d.CertificateDescription
	if desc.Status != types.CACertificateStatusActive || desc.AutoRegistrationStatus != types.AutoRegistrationStatusDisable ||
		desc.CertificateMode != types.CertificateModeDefault || aws.ToString(desc.CertificatePem) != ca.pem ||
		aws.ToString(desc.CertificateArn) != "arn:aws:iot:us-east-1:123456789012:cacert/"+id {
		t.Errorf("DescribeCACertificate() = %+v", desc)
	}

	// Auto-registration is off: a device is refused.
	device := ca.sign(t, "thing-1", time.Now().Add(24*time.Hour))
	if _, err := srv.IoT.AutoRegister([]byte(device)); err == nil {
		t.Error("AutoRegister() with auto-registration off: error = nil")
	}
	if _, err := c.UpdateCACertificate(ctx, &iot.UpdateCACertificateInput{CertificateId: aws.String(id),
		NewAutoRegistrationStatus: types.AutoRegistrationStatusEnable}); err != nil {
		t.Fatal(err)
	}
	reg, err := srv.IoT.AutoRegister([]byte(device))
	if err != nil {
		t.Fatalf("AutoRegister() error = %v", err)
	}
	if reg.CACertificateID != id || reg.CertificateStatus != "PENDING_ACTIVATION" || reg.AWSAccountID != "123456789012" {
		t.Errorf("AutoRegister() = %+v", reg)
	}
	cd, err := c.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: aws.String(reg.CertificateID)})
	if err != nil {
		t.Fatal(err)
	}
	if s := cd.CertificateDescription; s.Status != types.CertificateStatusPendingActivation ||
		aws.ToString(s.CaCertificateId) != id || aws.ToString(s.CertificatePem) != device {
		t.Errorf("DescribeCertificate() = %+v", s)
	}
	again, err := srv.IoT.AutoRegister([]byte(device))
	if err != nil || again.CertificateID != reg.CertificateID {
		t.Errorf("AutoRegister() again = %+v, %v; want the same certificate, pending", again, err)
	}
	if _, err := c.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: aws.String(reg.CertificateID),
		NewStatus: types.CertificateStatusActive}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.IoT.AutoRegister([]byte(device)); err == nil {
		t.Error("AutoRegister() of an active certificate: error = nil, want no event")
	}
	if _, err := srv.IoT.AutoRegister([]byte(ca.sign(t, "old", time.Now().Add(-time.Hour)))); err == nil {
		t.Error("AutoRegister() of an expired certificate: error = nil")
	}
	if _, err := srv.IoT.AutoRegister([]byte(other.sign(t, "x", time.Now().Add(time.Hour)))); err == nil {
		t.Error("AutoRegister() of an unknown CA's certificate: error = nil")
	}

	// Delete: only once inactive.
	_, err = c.DeleteCACertificate(ctx, &iot.DeleteCACertificateInput{CertificateId: aws.String(id)})
	var state *types.CertificateStateException
	if !errors.As(err, &state) {
		t.Errorf("DeleteCACertificate(active) error = %v, want CertificateStateException", err)
	}
	if _, err := c.UpdateCACertificate(ctx, &iot.UpdateCACertificateInput{CertificateId: aws.String(id),
		NewStatus: types.CACertificateStatusInactive}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.IoT.AutoRegister([]byte(ca.sign(t, "thing-2", time.Now().Add(time.Hour)))); err == nil {
		t.Error("AutoRegister() under an inactive CA: error = nil")
	}
	if _, err := c.DeleteCACertificate(ctx, &iot.DeleteCACertificateInput{CertificateId: aws.String(id)}); err != nil {
		t.Fatalf("DeleteCACertificate() error = %v", err)
	}
	_, err = c.DescribeCACertificate(ctx, &iot.DescribeCACertificateInput{CertificateId: aws.String(id)})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("DescribeCACertificate(deleted) error = %v, want ResourceNotFoundException", err)
	}
}
