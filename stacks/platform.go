package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"

	"github.com/iotcert/iotcert/internal/selection"
)

// definePlatform defines the platform stacks: the ones that no single-purpose context selects.
func definePlatform(app awscdk.App, ctx selection.Lookup) error {
	return nil
}
