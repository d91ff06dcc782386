package update

import (
	"errors"
	"fmt"
)

var (
	// ErrInProgress is returned by Start while another update is being
	// downloaded, checked or tried (the command's conflict).
	ErrInProgress = errors.New("an update is already in progress")

	// ErrNoKeys is returned by Start when update.publicKeys is empty:
	// nothing could be verified, so nothing is accepted.
	ErrNoKeys = errors.New("update.publicKeys is empty: updates are disabled")

	// ErrBadRequest wraps invalid arguments of Start.
	ErrBadRequest = errors.New("bad update request")

	// ErrTooLarge is returned when a download exceeds the size limit.
	ErrTooLarge = errors.New("download larger than the size limit")
)

// Check names the step of an update that refused it; CheckError carries it
// so the event and the log say which one failed.
type Check string

// The checks of an update, in the order they run.
const (
	CheckDownload  Check = "download"
	CheckSize      Check = "size"
	CheckSHA256    Check = "sha256"
	CheckSignature Check = "signature"
	CheckArchive   Check = "archive"
	CheckSelfTest  Check = "selftest"
	CheckVersion   Check = "version"
	CheckStage     Check = "stage"
)

// CheckError is an update refused by one of its checks.
type CheckError struct {
	Check Check
	Err   error
}

func (e *CheckError) Error() string { return fmt.Sprintf("%s check failed: %v", e.Check, e.Err) }

func (e *CheckError) Unwrap() error { return e.Err }

func checkErr(c Check, format string, args ...any) error {
	return &CheckError{Check: c, Err: fmt.Errorf(format, args...)}
}
