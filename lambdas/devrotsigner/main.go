// Command devrotsigner is the signer of device-certificate rotation: the topic rule on iotcert/+/rotation/csr
// (devrot.CSRRuleSQL: principal(), topic(2), jobId, csr) invokes it asynchronously. It checks the job execution,
// the sender and the CSR, issues the new certificate by the old one's issuer (AWS IoT, or the Private CA of the
// multi-region stacks) and publishes it on iotcert/<thing>/rotation/certificate. See internal/devrot (Signer).
//
// Environment (devrot.ConfigFromEnv): TABLE_NAME, JOB_TEMPLATE_ARN (required); CA_CERTIFICATE_ID and PCA_ARN (both,
// for Private CA devices); SIGNING_ALGORITHM (default SHA256WITHRSA), VALIDITY_DAYS (default 365),
// CONFIRM_TIMEOUT_SECONDS (default 3600); IOT_DATA_ENDPOINT (default https://data-ats.iot.<region>.amazonaws.com;
// AWS_ENDPOINT_URL_IOT_DATA_PLANE wins).
package main

import (
	"github.com/iotcert/iotcert/internal/lambdamain"
)

func main() {
	lambdamain.Start(newHandler, handle)
}
