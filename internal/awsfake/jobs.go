package awsfake

// AWS IoT Jobs: job templates, jobs and their executions, the control-plane operations the rotation functions and
// tools call (CreateJobTemplate, DescribeJobTemplate, CreateJob, DescribeJob, DescribeJobExecution,
// CancelJobExecution), and the device side of the Jobs API (StartNextPendingJobExecution, UpdateJobExecution,
// GetPendingJobExecutions) as Go methods, for a test harness that answers the Jobs MQTT topics the way AWS IoT does.
//
// What the fake relies on, as AWS documents it:
//   - Execution states and transitions: QUEUED → IN_PROGRESS → SUCCEEDED | FAILED | REJECTED | TIMED_OUT, and
//     CANCELED or REMOVED from QUEUED or IN_PROGRESS; a terminal execution accepts no update
//     (https://docs.aws.amazon.com/iot/latest/developerguide/iot-jobs-lifecycle.html). An update of a terminal
//     execution answers InvalidStateTransitionException.
//   - StartNextPendingJobExecution returns the execution already IN_PROGRESS, else starts the oldest QUEUED one
//     (https://docs.aws.amazon.com/iot/latest/apireference/API_iot-jobs-data_StartNextPendingJobExecution.html).
//   - An update with expectedVersion that differs from the current versionNumber answers VersionConflictException
//     (https://docs.aws.amazon.com/iot/latest/apireference/API_iot-jobs-data_UpdateJobExecution.html).
//   - Every terminal change publishes a job execution event on $aws/events/jobExecution/<jobId>/<operation> with
//     eventType JOB_EXECUTION, operation (succeeded, failed, rejected, canceled, removed, timed_out), jobId,
//     thingArn and status (https://docs.aws.amazon.com/iot/latest/developerguide/events-jobs.html). The fake keeps
//     them in order for the test to deliver (JobEvents); AWS delivers events at least once and not in order
//     (https://docs.aws.amazon.com/iot/latest/developerguide/iot-events.html), which tests model by delivering
//     twice or out of order.
//   - A job template's document is used by CreateJob when the job names the template and no document
//     (https://docs.aws.amazon.com/iot/latest/apireference/API_CreateJob.html).
//   - The in-progress timeout is modelled by TimeOutJobExecution (a simulated clock): AWS sets TIMED_OUT when
//     inProgressTimeoutInMinutes passes (https://docs.aws.amazon.com/iot/latest/developerguide/job-timeouts.html).

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Job is an AWS IoT job as the fake holds it.
type Job struct {
	ID          string
	ARN         string
	TemplateARN string
	Document    string
	Targets     []string // thing and thing-group ARNs, as given
	Status      string   // IN_PROGRESS, CANCELED or COMPLETED
	// Config holds the job's rollout, abort and timeout configuration as sent (jobExecutionsRolloutConfig,
	// abortConfig, timeoutConfig), for tests to assert.
	Config map[string]json.RawMessage
}

// JobExecution is one thing's execution of a job.
type JobExecution struct {
	JobID           string            `json:"jobId"`
	ThingName       string            `json:"-"`
	Status          string            `json:"status"`
	StatusDetails   map[string]string `json:"statusDetails,omitempty"`
	QueuedAt        int64             `json:"queuedAt"`
	StartedAt       int64             `json:"startedAt,omitempty"`
	LastUpdatedAt   int64             `json:"lastUpdatedAt"`
	VersionNumber   int64             `json:"versionNumber"`
	ExecutionNumber int64             `json:"executionNumber"`
	Document        string            `json:"jobDocument,omitempty"`
}

// JobsError is an error of the Jobs device API, with AWS's error code (the "code" of an MQTT .../rejected answer).
type JobsError struct {
	Code    string // InvalidRequest, ResourceNotFound, InvalidStateTransition, VersionMismatch, ...
	Message string
}

func (e *JobsError) Error() string { return e.Code + ": " + e.Message }

type jobTemplate struct {
	id, arn, document, description string
	config                         map[string]json.RawMessage
}

type iotJob struct {
	Job
	created, updated time.Time
	executions       map[string]*JobExecution // thing name → execution
}

// jobsState is the fake's Jobs state, zero-value ready.
type jobsState struct {
	templates map[string]*jobTemplate
	jobs      map[string]*iotJob
	order     []string // job ids in creation order
	events    []Message
	execSeq   int64
}

// Job execution statuses.
const (
	JobQueued     = "QUEUED"
	JobInProgress = "IN_PROGRESS"
	JobSucceeded  = "SUCCEEDED"
	JobFailed     = "FAILED"
	JobRejected   = "REJECTED"
	JobTimedOut   = "TIMED_OUT"
	JobCanceled   = "CANCELED"
	JobRemoved    = "REMOVED"
)

var jobIDRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// Routes of jobs.go, appended to iotRoutes.
var jobRoutes = []struct{ method, path, op string }{
	{"PUT", "/job-templates/{}", "CreateJobTemplate"},
	{"GET", "/job-templates/{}", "DescribeJobTemplate"},
	{"PUT", "/jobs/{}", "CreateJob"},
	{"GET", "/jobs", "ListJobs"},
	{"GET", "/jobs/{}", "DescribeJob"},
	{"GET", "/things/{}/jobs/{}", "DescribeJobExecution"},
	{"PUT", "/things/{}/jobs/{}/cancel", "CancelJobExecution"},
}

func isJobOp(op string) bool {
	return slices.ContainsFunc(jobRoutes, func(r struct{ method, path, op string }) bool { return r.op == op })
}

// serveJobs runs the operations of jobRoutes. Caller holds f.mu.
func (f *IoT) serveJobs(op string, params []string, q url.Values, body []byte) (any, *apiError) {
	f.jobsInit()
	switch op {
	case "CreateJobTemplate":
		return f.createJobTemplate(params[0], body)
	case "DescribeJobTemplate":
		t, ok := f.jobs.templates[params[0]]
		if !ok {
			return nil, notFound("Job template %s does not exist.", params[0])
		}
		out := map[string]any{"jobTemplateId": t.id, "jobTemplateArn": t.arn, "document": t.document, "description": t.description}
		for k, v := range t.config {
			out[k] = v
		}
		return out, nil
	case "CreateJob":
		return f.createJob(params[0], body)
	case "ListJobs":
		return f.listJobs(q)
	case "DescribeJob":
		j, e := f.job(params[0])
		if e != nil {
			return nil, e
		}
		return map[string]any{"job": j.describe()}, nil
	case "DescribeJobExecution":
		j, e := f.job(params[1])
		if e != nil {
			return nil, e
		}
		x, ok := j.executions[params[0]]
		if !ok {
			return nil, notFound("Job execution of job %s for thing %s does not exist.", params[1], params[0])
		}
		return map[string]any{"execution": map[string]any{
			"jobId": x.JobID, "status": x.Status, "thingArn": iotARN("thing/" + x.ThingName),
			"statusDetails": map[string]any{"detailsMap": x.StatusDetails}, "queuedAt": float64(x.QueuedAt),
			"startedAt": float64(x.StartedAt), "lastUpdatedAt": float64(x.LastUpdatedAt),
			"versionNumber": x.VersionNumber, "executionNumber": x.ExecutionNumber,
		}}, nil
	case "CancelJobExecution":
		var in struct {
			ExpectedVersion *int64 `json:"expectedVersion"`
		}
		if len(body) > 0 {
			if err := json.Unmarshal(body, &in); err != nil {
				return nil, invalidRequest("malformed request body: %v", err)
			}
		}
		if _, err := f.updateExecution(params[0], params[1], JobCanceled, nil, in.ExpectedVersion, q.Get("force") == "true"); err != nil {
			switch err.Code {
			case "ResourceNotFound":
				return nil, notFound("%s", err.Message)
			case "VersionMismatch":
				return nil, errorf(409, "VersionConflictException", "%s", err.Message)
			default:
				return nil, errorf(409, "InvalidStateTransitionException", "%s", err.Message)
			}
		}
		return struct{}{}, nil
	}
	return nil, errorf(404, "UnknownOperationException", "awsfake: iot operation %s is not implemented", op)
}

func (f *IoT) jobsInit() {
	if f.jobs.jobs == nil {
		f.jobs.jobs = map[string]*iotJob{}
		f.jobs.templates = map[string]*jobTemplate{}
	}
}

// jobConfigKeys are the configuration members a job and a job template share, kept as sent.
var jobConfigKeys = []string{"jobExecutionsRolloutConfig", "abortConfig", "timeoutConfig", "jobExecutionsRetryConfig"}

func (f *IoT) createJobTemplate(id string, body []byte) (any, *apiError) {
	if !jobIDRE.MatchString(id) {
		return nil, invalidRequest("Job template id %q is not valid.", id)
	}
	var in map[string]json.RawMessage
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, invalidRequest("malformed request body: %v", err)
	}
	var doc, desc string
	_ = json.Unmarshal(in["document"], &doc)
	_ = json.Unmarshal(in["description"], &desc)
	if desc == "" {
		return nil, invalidRequest("description is required.")
	}
	if doc == "" {
		return nil, invalidRequest("A job template needs a document or a documentSource.")
	}
	if _, ok := f.jobs.templates[id]; ok {
		return nil, errorf(409, "ConflictException", "Job template %s already exists.", id)
	}
	t := &jobTemplate{id: id, arn: iotARN("jobtemplate/" + id), document: doc, description: desc, config: map[string]json.RawMessage{}}
	for _, k := range jobConfigKeys {
		if v, ok := in[k]; ok {
			t.config[k] = v
		}
	}
	f.jobs.templates[id] = t
	return map[string]any{"jobTemplateId": id, "jobTemplateArn": t.arn}, nil
}

func (f *IoT) createJob(id string, body []byte) (any, *apiError) {
	if !jobIDRE.MatchString(id) {
		return nil, invalidRequest("Job id %q is not valid.", id)
	}
	var in map[string]json.RawMessage
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, invalidRequest("malformed request body: %v", err)
	}
	var (
		targets          []string
		doc, templateARN string
		selection        string
	)
	_ = json.Unmarshal(in["targets"], &targets)
	_ = json.Unmarshal(in["document"], &doc)
	_ = json.Unmarshal(in["jobTemplateArn"], &templateARN)
	_ = json.Unmarshal(in["targetSelection"], &selection)
	if len(targets) == 0 {
		return nil, invalidRequest("targets must name at least one thing or thing group.")
	}
	if _, ok := f.jobs.jobs[id]; ok {
		return nil, alreadyExists(id, iotARN("job/"+id), "Job %s already exists.", id)
	}
	config := map[string]json.RawMessage{}
	if templateARN != "" {
		tid := strings.TrimPrefix(templateARN, iotARN("jobtemplate/"))
		t, ok := f.jobs.templates[tid]
		if !ok || tid == templateARN {
			return nil, notFound("Job template %s does not exist.", templateARN)
		}
		if doc == "" {
			doc = t.document
		}
		maps.Copy(config, t.config)
	}
	if doc == "" {
		return nil, invalidRequest("A job needs a document, a documentSource or a job template.")
	}
	for _, k := range jobConfigKeys {
		if v, ok := in[k]; ok {
			config[k] = v
		}
	}
	if selection == "CONTINUOUS" {
		return nil, invalidRequest("awsfake: continuous jobs are not modelled")
	}
	// Resolve the targets now: a snapshot job runs on the things targeted when it is created.
	var things []string
	for _, arn := range targets {
		switch {
		case strings.HasPrefix(arn, iotARN("thing/")):
			name := strings.TrimPrefix(arn, iotARN("thing/"))
			if _, ok := f.things[name]; !ok {
				return nil, notFound("Thing %s does not exist.", name)
			}
			things = append(things, name)
		case strings.HasPrefix(arn, iotARN("thinggroup/")):
			g, ok := f.reg.groups[strings.TrimPrefix(arn, iotARN("thinggroup/"))]
			if !ok {
				return nil, notFound("Thing group %s does not exist.", arn)
			}
			things = append(things, f.members(g)...)
		default:
			return nil, invalidRequest("Target %q is not a thing or thing group ARN.", arn)
		}
	}
	now := time.Now().UTC()
	j := &iotJob{
		Job: Job{ID: id, ARN: iotARN("job/" + id), TemplateARN: templateARN, Document: doc, Targets: targets,
			Status: "IN_PROGRESS", Config: config},
		created: now, updated: now, executions: map[string]*JobExecution{},
	}
	for _, name := range things {
		if _, dup := j.executions[name]; dup {
			continue
		}
		f.jobs.execSeq++
		j.executions[name] = &JobExecution{JobID: id, ThingName: name, Status: JobQueued, QueuedAt: now.Unix(),
			LastUpdatedAt: now.Unix(), VersionNumber: 1, ExecutionNumber: f.jobs.execSeq}
	}
	f.jobs.jobs[id] = j
	f.jobs.order = append(f.jobs.order, id)
	return map[string]any{"jobArn": j.ARN, "jobId": id}, nil
}

func (f *IoT) job(id string) (*iotJob, *apiError) {
	j, ok := f.jobs.jobs[id]
	if !ok {
		return nil, notFound("Job %s does not exist.", id)
	}
	return j, nil
}

func (j *iotJob) describe() map[string]any {
	counts := map[string]int{}
	for _, x := range j.executions {
		counts[x.Status]++
	}
	out := map[string]any{
		"jobId": j.ID, "jobArn": j.ARN, "status": j.Status, "targets": j.Targets, "targetSelection": "SNAPSHOT",
		"createdAt": epoch(j.created), "lastUpdatedAt": epoch(j.updated),
		"jobProcessDetails": map[string]any{
			"numberOfQueuedThings": counts[JobQueued], "numberOfInProgressThings": counts[JobInProgress],
			"numberOfSucceededThings": counts[JobSucceeded], "numberOfFailedThings": counts[JobFailed],
			"numberOfRejectedThings": counts[JobRejected], "numberOfTimedOutThings": counts[JobTimedOut],
			"numberOfCanceledThings": counts[JobCanceled], "numberOfRemovedThings": counts[JobRemoved],
		},
	}
	if j.TemplateARN != "" {
		out["jobTemplateArn"] = j.TemplateARN
	}
	for k, v := range j.Config {
		out[k] = v
	}
	return out
}

func terminal(status string) bool {
	switch status {
	case JobQueued, JobInProgress:
		return false
	}
	return true
}

// updateExecution applies a status change. Caller holds f.mu.
func (f *IoT) updateExecution(thing, jobID, status string, details map[string]string, expected *int64, force bool) (*JobExecution, *JobsError) {
	j, ok := f.jobs.jobs[jobID]
	if !ok {
		return nil, &JobsError{Code: "ResourceNotFound", Message: fmt.Sprintf("job %s does not exist", jobID)}
	}
	x, ok := j.executions[thing]
	if !ok {
		return nil, &JobsError{Code: "ResourceNotFound", Message: fmt.Sprintf("job %s has no execution for thing %s", jobID, thing)}
	}
	if expected != nil && *expected != x.VersionNumber {
		return nil, &JobsError{Code: "VersionMismatch", Message: fmt.Sprintf("expected version %d, current version is %d", *expected, x.VersionNumber)}
	}
	switch status {
	case JobInProgress, JobSucceeded, JobFailed, JobRejected:
	case JobCanceled, JobTimedOut, JobRemoved:
	default:
		return nil, &JobsError{Code: "InvalidRequest", Message: fmt.Sprintf("status %q is not a job execution status a device may set", status)}
	}
	if terminal(x.Status) {
		return nil, &JobsError{Code: "InvalidStateTransition", Message: fmt.Sprintf("job execution of %s for %s is %s", jobID, thing, x.Status)}
	}
	// Canceling an IN_PROGRESS execution needs force (CancelJobExecution).
	if status == JobCanceled && x.Status == JobInProgress && !force {
		return nil, &JobsError{Code: "InvalidStateTransition", Message: "an IN_PROGRESS execution is canceled only with force"}
	}
	if status == JobTimedOut && x.Status != JobInProgress {
		return nil, &JobsError{Code: "InvalidStateTransition", Message: "only an IN_PROGRESS execution times out"}
	}
	now := time.Now().UTC()
	if status == JobInProgress && x.Status == JobQueued {
		x.StartedAt = now.Unix()
	}
	x.Status = status
	if details != nil {
		if x.StatusDetails == nil {
			x.StatusDetails = map[string]string{}
		}
		maps.Copy(x.StatusDetails, details)
	}
	x.VersionNumber++
	x.LastUpdatedAt = now.Unix()
	j.updated = now
	if terminal(status) {
		f.jobEvent(j, x, now)
		if !slices.ContainsFunc(slices.Collect(maps.Values(j.executions)), func(e *JobExecution) bool { return !terminal(e.Status) }) {
			j.Status = "COMPLETED"
		}
	}
	c := *x
	c.StatusDetails = maps.Clone(x.StatusDetails)
	return &c, nil
}

// jobEvent records the job execution event AWS IoT publishes for a terminal status.
func (f *IoT) jobEvent(j *iotJob, x *JobExecution, now time.Time) {
	op := strings.ToLower(x.Status)
	payload, _ := json.Marshal(map[string]any{
		"eventType": "JOB_EXECUTION", "eventId": newUUID(), "timestamp": now.UnixMilli(), "operation": op,
		"jobId": j.ID, "thingArn": iotARN("thing/" + x.ThingName), "status": x.Status,
		"statusDetails": x.StatusDetails,
	})
	f.jobs.events = append(f.jobs.events, Message{Topic: "$aws/events/jobExecution/" + j.ID + "/" + op, Payload: payload, QoS: 1})
}

// The device side of the Jobs API, as a harness answering $aws/things/<thing>/jobs/... calls it.

// StartNextPendingJobExecution returns the thing's execution IN_PROGRESS, else starts its oldest QUEUED one; ok is
// false when the thing has none.
func (f *IoT) StartNextPendingJobExecution(thing string, details map[string]string) (x JobExecution, ok bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jobsInit()
	next := f.nextExecution(thing)
	if next == nil {
		return JobExecution{}, false, nil
	}
	if next.Status == JobQueued {
		if _, e := f.updateExecution(thing, next.JobID, JobInProgress, details, nil, false); e != nil {
			return JobExecution{}, false, e
		}
	}
	c := *next
	c.StatusDetails = maps.Clone(next.StatusDetails)
	c.Document = f.jobs.jobs[next.JobID].Document
	return c, true, nil
}

// nextExecution is the thing's IN_PROGRESS execution, else its oldest QUEUED one. Caller holds f.mu.
func (f *IoT) nextExecution(thing string) *JobExecution {
	var queued *JobExecution
	for _, id := range f.jobs.order {
		x, ok := f.jobs.jobs[id].executions[thing]
		if !ok {
			continue
		}
		if x.Status == JobInProgress {
			return x
		}
		if x.Status == JobQueued && queued == nil {
			queued = x
		}
	}
	return queued
}

// NextJobExecution is what $aws/things/<thing>/jobs/notify-next carries: the thing's next pending execution (with
// its document), or ok false.
func (f *IoT) NextJobExecution(thing string) (x JobExecution, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jobsInit()
	next := f.nextExecution(thing)
	if next == nil {
		return JobExecution{}, false
	}
	c := *next
	c.StatusDetails = maps.Clone(next.StatusDetails)
	c.Document = f.jobs.jobs[next.JobID].Document
	return c, true
}

// UpdateJobExecution changes an execution's status as a device does (UpdateJobExecution of the Jobs data plane).
// expectedVersion, when not nil, must equal the execution's versionNumber.
func (f *IoT) UpdateJobExecution(thing, jobID, status string, details map[string]string, expectedVersion *int64) (JobExecution, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jobsInit()
	if status == JobCanceled || status == JobTimedOut || status == JobRemoved {
		return JobExecution{}, &JobsError{Code: "InvalidRequest", Message: "a device may not set status " + status}
	}
	x, e := f.updateExecution(thing, jobID, status, details, expectedVersion, false)
	if e != nil {
		return JobExecution{}, e
	}
	return *x, nil
}

// TimeOutJobExecution marks an IN_PROGRESS execution TIMED_OUT, as AWS IoT does when its in-progress timer ends.
func (f *IoT) TimeOutJobExecution(thing, jobID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jobsInit()
	if _, e := f.updateExecution(thing, jobID, JobTimedOut, nil, nil, false); e != nil {
		return e
	}
	return nil
}

// JobExecutionOf returns a copy of the thing's execution of the job.
func (f *IoT) JobExecutionOf(thing, jobID string) (JobExecution, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jobsInit()
	j, ok := f.jobs.jobs[jobID]
	if !ok {
		return JobExecution{}, false
	}
	x, ok := j.executions[thing]
	if !ok {
		return JobExecution{}, false
	}
	c := *x
	c.StatusDetails = maps.Clone(x.StatusDetails)
	return c, true
}

// JobOf returns a copy of the job.
func (f *IoT) JobOf(id string) (Job, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jobsInit()
	j, ok := f.jobs.jobs[id]
	if !ok {
		return Job{}, false
	}
	c := j.Job
	c.Targets = slices.Clone(j.Targets)
	c.Config = maps.Clone(j.Config)
	return c, true
}

// JobEvents returns the job execution events published so far, in order.
func (f *IoT) JobEvents() []Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.jobs.events)
}
