package awsfake

import (
	"net/http"
	"strings"
)

// Service names of the rotation fakes, accepted by Inject and Calls. Requests reach them by the service of their
// signature's credential scope.
const (
	ServiceRolesAnywhere = "rolesanywhere"
	ServiceS3            = "s3"
)

// scopeService is the service named in the request signature's credential scope
// ("Credential=<id>/<date>/<region>/<service>/aws4_request"), or "".
func scopeService(r *http.Request) string {
	auth := r.Header.Get("Authorization")
	_, cred, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return ""
	}
	cred, _, _ = strings.Cut(cred, ",")
	parts := strings.Split(strings.TrimSpace(cred), "/")
	if len(parts) != 5 || parts[4] != "aws4_request" {
		return ""
	}
	return parts[3]
}

// s3Operation names an S3 object request for Inject and Calls.
func s3Operation(r *http.Request) string {
	switch r.Method {
	case http.MethodPut:
		return "PutObject"
	case http.MethodGet:
		return "GetObject"
	}
	return r.Method
}
