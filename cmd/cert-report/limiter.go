package main

import (
	"context"
	"sync"
	"time"
)

// limiter spaces requests to at most rate per second, allowing a burst of up to burst requests after a pause. A nil
// limiter, or one with rate 0, does not wait.
type limiter struct {
	mu       sync.Mutex
	interval time.Duration
	burst    int
	next     time.Time // the earliest time the next request may go
}

func newLimiter(rate float64, burst int) *limiter {
	if rate <= 0 {
		return nil
	}
	return &limiter{interval: time.Duration(float64(time.Second) / rate), burst: max(burst, 1)}
}

// Wait blocks until the caller may send one request, or ctx ends.
func (l *limiter) Wait(ctx context.Context) error {
	if l == nil {
		return ctx.Err()
	}
	l.mu.Lock()
	now := time.Now()
	// Unused slots of a pause are kept only up to the burst.
	if earliest := now.Add(-time.Duration(l.burst-1) * l.interval); l.next.Before(earliest) {
		l.next = earliest
	}
	at := l.next
	l.next = l.next.Add(l.interval)
	l.mu.Unlock()
	d := time.Until(at)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
