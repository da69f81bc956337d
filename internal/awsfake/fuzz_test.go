package awsfake

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzServe sends arbitrary requests to the dispatcher: every answer must be a well-formed HTTP answer, never a panic,
// and no error answer may carry a code the SDK cannot type for the operation.
func FuzzServe(f *testing.F) {
	f.Add("GET", "/things/t1/principals", "", "", "")
	f.Add("POST", "/attached-policies/arn%3Aaws%3Aiot%3Aus-east-1%3A123456789012%3Acert%2Fab", "", "", "{}")
	f.Add("POST", "/", "AmazonSSM.GetParametersByPath", "application/x-amz-json-1.1", `{"Path":"/","NextToken":"x"}`)
	f.Add("POST", "/", "secretsmanager.PutSecretValue", "", `{"SecretId":"s","SecretString":"v"}`)
	f.Add("POST", "/", "ACMPrivateCA.IssueCertificate", "", `{"Validity":{"Type":"END_DATE","Value":1}}`)
	f.Add("POST", "/", "", "application/x-www-form-urlencoded", "Action=Publish&TopicArn=x&Message=m")
	f.Add("PUT", "/certificates/%zz", "", "", "")
	f.Add("POST", "/target-policies/missing", "", "", `{"target":"arn:aws:iot:us-east-1:123456789012:cert/ab"}`)
	f.Add("POST", "/thing-types/type/deprecate", "", "", `{"undoDeprecate":false}`)
	f.Add("POST", "/", "ACMPrivateCA.GetCertificate", "", `{"CertificateAuthorityArn":"x","CertificateArn":"y"}`)
	f.Add("POST", "/", "secretsmanager.UpdateSecretVersionStage", "", `{"SecretId":"s","VersionStage":"AWSCURRENT","MoveToVersionId":"v"}`)
	f.Add("POST", "/", "AWSStepFunctions.SendTaskFailure", "application/x-amz-json-1.0", `{"taskToken":"t","cause":"c"}`)
	s := Start()
	defer s.Close()
	s.IoT.PutThingType("type")
	s.Secrets.Put("s", "v")
	f.Fuzz(func(t *testing.T, method, path, target, contentType, body string) {
		if !validMethod(method) || !strings.HasPrefix(path, "/") {
			return
		}
		req, err := http.NewRequest(method, "http://127.0.0.1"+path, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=fake")
		if target != "" {
			req.Header.Set("X-Amz-Target", target)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		rec := httptest.NewRecorder()
		s.serveHTTP(rec, req)
		if rec.Code < 200 || rec.Code > 599 {
			t.Errorf("%s %s answered status %d", method, path, rec.Code)
		}
		// Every error answer carries a code the SDK types for the operation (or an AWS common error).
		s.mu.Lock()
		untyped := s.untyped
		s.untyped = nil
		s.mu.Unlock()
		for _, u := range untyped {
			t.Errorf("%s %s: %s", method, path, u)
		}
	})
}

func validMethod(m string) bool {
	switch m {
	case "GET", "POST", "PUT", "DELETE", "PATCH":
		return true
	}
	return false
}
