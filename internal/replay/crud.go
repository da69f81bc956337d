package replay

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/iotcert/iotcert/internal/awsconfig"
)

// The errors the CRUD functions return. The Lambda Go runtime names a function error by its type (the errorType of the
// function's error document), and the state machine's Retry and Catch match that name
// (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html): ThingCrudException,
// ThingTypeCrudException and ThingGroupCrudException are retried (the sample's names and retry),
// ReplayNotReadyException is retried at long intervals (an event that can apply only later, such as a thing type's
// delete within five minutes of its deprecation), InvalidEventException is not retried; every one is caught and sent
// to the dead-letter queue.
type (
	// ThingCrudException is a failure of ThingCrud that may pass on retry.
	ThingCrudException struct{ Err error }
	// ThingTypeCrudException is a failure of ThingTypeCrud that may pass on retry.
	ThingTypeCrudException struct{ Err error }
	// ThingGroupCrudException is a failure of ThingGroupCrud that may pass on retry.
	ThingGroupCrudException struct{ Err error }
	// InvalidEventException is an event that can never apply.
	InvalidEventException struct{ Err error }
	// ReplayNotReadyException is an event that can apply only later (see NotReadyError).
	ReplayNotReadyException struct{ Err error }
)

func (e *ThingCrudException) Error() string      { return e.Err.Error() }
func (e *ThingCrudException) Unwrap() error      { return e.Err }
func (e *ThingTypeCrudException) Error() string  { return e.Err.Error() }
func (e *ThingTypeCrudException) Unwrap() error  { return e.Err }
func (e *ThingGroupCrudException) Error() string { return e.Err.Error() }
func (e *ThingGroupCrudException) Unwrap() error { return e.Err }
func (e *InvalidEventException) Error() string   { return e.Err.Error() }
func (e *InvalidEventException) Unwrap() error   { return e.Err }

func (e *ReplayNotReadyException) Error() string { return e.Err.Error() }
func (e *ReplayNotReadyException) Unwrap() error { return e.Err }

// Function is one CRUD function: the event types it accepts and the error type it retries with.
type Function struct {
	Name   string
	Types  []string
	Failed func(error) error
}

// The three CRUD functions of the state machine, routed as its ChoiceEventType routes.
var (
	ThingCrud = Function{Name: "ThingCrud", Types: []string{ThingEvent},
		Failed: func(err error) error { return &ThingCrudException{err} }}
	ThingTypeCrud = Function{Name: "ThingTypeCrud", Types: []string{ThingTypeEvent, ThingTypeAssocEvent},
		Failed: func(err error) error { return &ThingTypeCrudException{err} }}
	ThingGroupCrud = Function{Name: "ThingGroupCrud", Types: []string{ThingGroupEvent, GroupMembershipEvent, GroupHierarchyEvent},
		Failed: func(err error) error { return &ThingGroupCrudException{err} }}
)

// Handle validates and applies one replay execution's record.
func (f Function) Handle(ctx context.Context, a *Applier, rec Record) (Outcome, error) {
	ev, err := ParseRecord(rec)
	if err != nil {
		a.log().Warn("invalid registry event", "function", f.Name, "error", err.Error())
		return Outcome{}, &InvalidEventException{err}
	}
	if !slices.Contains(f.Types, ev.Type) {
		err := invalid("%s does not apply %s events", f.Name, ev.Type)
		return Outcome{EventID: ev.ID}, &InvalidEventException{err}
	}
	if err := a.Admission.Check(ev); err != nil {
		a.log().Warn("registry event refused", "function", f.Name, "eventId", ev.ID, "error", err.Error())
		return Outcome{EventID: ev.ID}, &InvalidEventException{err}
	}
	out, err := a.Apply(ctx, ev)
	if err != nil {
		a.log().Warn("replay failed", "function", f.Name, "eventId", ev.ID, "entity", ev.Entity(), "error", err.Error())
		var nr *NotReadyError
		switch {
		case IsInvalid(err):
			return out, &InvalidEventException{err}
		case errors.As(err, &nr):
			return out, &ReplayNotReadyException{err}
		}
		return out, f.Failed(err)
	}
	return out, nil
}

// NewApplierFromEnv builds the Applier of a CRUD function from its environment: VERSIONS_TABLE (required),
// ORIGIN_REGIONS (required: the regions whose events are replayed, comma-separated; read-repair reads their
// registries), JITR_POLICY_NAME (default jitr-mr-policy), CA_CERTIFICATE_ID (optional).
func NewApplierFromEnv(ctx context.Context) (*Applier, error) {
	table := os.Getenv("VERSIONS_TABLE")
	if table == "" {
		return nil, errors.New("VERSIONS_TABLE must be set")
	}
	origins, err := ParseOrigins(os.Getenv("ORIGIN_REGIONS"))
	if err != nil {
		return nil, fmt.Errorf("ORIGIN_REGIONS: %w", err)
	}
	policy := os.Getenv("JITR_POLICY_NAME")
	if policy == "" {
		policy = "jitr-mr-policy"
	}
	// A short back-off: the state machine retries the whole event after 3, 6 and 12 s.
	cfg, err := awsconfig.Load(ctx, 2*time.Second)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	clients := map[string]OriginAPI{}
	for _, r := range origins {
		// The same configuration in the origin's region (AWS_ENDPOINT_URL_IOT, when set, points every client at it).
		clients[r] = iot.NewFromConfig(cfg, func(o *iot.Options) { o.Region = r })
	}
	return &Applier{
		IoT:        iot.NewFromConfig(cfg),
		Versions:   &Versions{DB: dynamodb.NewFromConfig(cfg), Table: table},
		PolicyName: policy,
		CAID:       os.Getenv("CA_CERTIFICATE_ID"),
		Origin: func(region string) (OriginAPI, error) {
			if c, ok := clients[region]; ok {
				return c, nil
			}
			return nil, fmt.Errorf("%s is not an origin region", region)
		},
		Admission: Admission{Origins: origins},
	}, nil
}
