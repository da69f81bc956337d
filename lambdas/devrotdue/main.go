// Command devrotdue starts device-certificate rotations by itself. An EventBridge schedule invokes it; it reads the
// DEVICE_CERTIFICATE_EXPIRING_CHECK findings of Device Defender's newest completed scheduled audit run, keeps the
// thing group iotcert-rotation-due equal to the things of those certificates that are still ACTIVE, and starts a
// rotation job from the template on the group unless one is in progress (internal/devrot, Due).
//
// Environment: JOB_TEMPLATE_ARN, ROLLOUT_PER_MINUTE, ABORT_PERCENT, ABORT_MIN_EXECUTED, TIMEOUT_MINUTES (the
// rotation job's options) and optionally SCHEDULED_AUDIT_NAME (only that scheduled audit's runs count).
package main

import (
	"github.com/iotcert/iotcert/internal/lambdamain"
)

func main() {
	lambdamain.Start(newHandler, handle)
}
