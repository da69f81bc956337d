// Command devrotconfirm completes device-certificate rotations. Three triggers invoke it (internal/devrot,
// Completion): the topic rule on iotcert/+/rotation/confirm (devrot.ConfirmRuleSQL: principal(), topic(2), jobId),
// the topic rule on AWS IoT's job execution events ($aws/events/jobExecution/+/+, rotation jobs only), and an
// EventBridge schedule (the sweep: confirmation timeouts, the grace period, unfinished steps).
//
// Environment: as devrotsigner, plus GRACE_SECONDS (default 604800, 7 days) between the confirmation and the
// revocation of the old certificate.
package main

import (
	"github.com/iotcert/iotcert/internal/lambdamain"
)

func main() {
	lambdamain.Start(newHandler, handle)
}
