// Package auditrun finds Device Defender audit runs: the newest completed run of a scheduled audit, which both the
// operations stack's findings counter and device rotation's due function read.
package auditrun

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	iottypes "github.com/aws/aws-sdk-go-v2/service/iot/types"
)

// API is what Newest calls on AWS IoT.
type API interface {
	iot.ListAuditTasksAPIClient
	DescribeAuditTask(context.Context, *iot.DescribeAuditTaskInput, ...func(*iot.Options)) (*iot.DescribeAuditTaskOutput, error)
}

// Newest is the id and start of the newest completed run of a scheduled audit that started between from and to, or
// "" when there is none. scheduledAudit names the scheduled audit whose runs count; empty: any scheduled audit.
// ListAuditTasks answers ids and statuses only, so each run is described for its start time and scheduled audit
// (https://docs.aws.amazon.com/iot/latest/apireference/API_DescribeAuditTask.html).
func Newest(ctx context.Context, c API, scheduledAudit string, from, to time.Time) (string, time.Time, error) {
	p := iot.NewListAuditTasksPaginator(c, &iot.ListAuditTasksInput{
		StartTime: aws.Time(from), EndTime: aws.Time(to),
		TaskType: iottypes.AuditTaskTypeScheduledAuditTask, TaskStatus: iottypes.AuditTaskStatusCompleted,
	})
	var (
		best      string
		bestStart time.Time
	)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return "", time.Time{}, fmt.Errorf("list audit tasks: %w", err)
		}
		for _, t := range page.Tasks {
			d, err := c.DescribeAuditTask(ctx, &iot.DescribeAuditTaskInput{TaskId: t.TaskId})
			if err != nil {
				return "", time.Time{}, fmt.Errorf("describe audit task %s: %w", aws.ToString(t.TaskId), err)
			}
			if scheduledAudit != "" && aws.ToString(d.ScheduledAuditName) != scheduledAudit {
				continue
			}
			if start := aws.ToTime(d.TaskStartTime); best == "" || start.After(bestStart) {
				best, bestStart = aws.ToString(t.TaskId), start
			}
		}
	}
	return best, bestStart, nil
}
