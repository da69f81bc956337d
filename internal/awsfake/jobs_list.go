package awsfake

import (
	"net/url"
	"slices"
)

// ListJobs: the jobs in creation order, filtered by status and by thing group
// (https://docs.aws.amazon.com/iot/latest/apireference/API_ListJobs.html: "thingGroupName: A filter that limits the
// returned jobs to those for the specified group"; status is one of IN_PROGRESS, CANCELED, COMPLETED,
// DELETION_IN_PROGRESS, SCHEDULED; maxResults 1 to 250, paged with nextToken). The fake counts a job as one "for" a
// group when the group's ARN is among its targets.

func init() {
	sdkErrorCodes["iot/ListJobs"] = "InvalidRequestException ServiceUnavailableException ThrottlingException"
}

// listJobs answers ListJobs. Caller holds f.mu.
func (f *IoT) listJobs(q url.Values) (any, *apiError) {
	status := q.Get("status")
	if status != "" && !slices.Contains([]string{"IN_PROGRESS", "CANCELED", "COMPLETED", "DELETION_IN_PROGRESS", "SCHEDULED"}, status) {
		return nil, invalidRequest("status %q is not a job status", status)
	}
	group := q.Get("thingGroupName")
	var items []map[string]any
	for _, id := range f.jobs.order {
		j := f.jobs.jobs[id]
		if status != "" && j.Status != status || group != "" && !slices.Contains(j.Targets, iotARN("thinggroup/"+group)) {
			continue
		}
		items = append(items, map[string]any{"jobArn": j.ARN, "jobId": j.ID, "status": j.Status, "targetSelection": "SNAPSHOT",
			"createdAt": epoch(j.created), "lastUpdatedAt": epoch(j.updated)})
	}
	return pageOut(items, q.Get("maxResults"), q.Get("nextToken"), 25, 250, "jobs")
}
