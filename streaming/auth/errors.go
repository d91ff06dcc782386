package auth

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrCredentialsRequired means no anonymous entry allows the request:
	// the client should retry with credentials (401 with a challenge).
	ErrCredentialsRequired = errors.New("credentials required")
	// ErrDenied means the credentials given do not allow the request.
	ErrDenied = errors.New("not allowed")
	// ErrThrottled means the source address failed to log in too often
	// lately: the request was refused without checking its credentials
	// (HTTP 429, RTSP 503, with Retry-After). It comes as a *RetryError.
	ErrThrottled = errors.New("too many failed logins from this address")
	// ErrBusy means no argon2 verification slot became free in time: the
	// request was refused unchecked (503 with Retry-After). It comes as a
	// *RetryError.
	ErrBusy = errors.New("too many logins being checked")
)

// RetryError is a refusal the client may retry after RetryAfter; it wraps
// ErrThrottled or ErrBusy.
type RetryError struct {
	Err        error
	RetryAfter time.Duration
}

func (e *RetryError) Error() string {
	return fmt.Sprintf("%v; retry in %s", e.Err, e.RetryAfter.Round(time.Second))
}

func (e *RetryError) Unwrap() error { return e.Err }

// RetryAfterSeconds is the Retry-After value for err in whole seconds (at
// least 1), or 0 when err is no *RetryError.
func RetryAfterSeconds(err error) int {
	var re *RetryError
	if !errors.As(err, &re) {
		return 0
	}
	return max(1, int((re.RetryAfter+time.Second-1)/time.Second))
}
