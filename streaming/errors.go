package streaming

import "errors"

var (
	// ErrPathNotFound means no path entry matches the requested name.
	ErrPathNotFound = errors.New("path not found")
	// ErrNoStream means the path exists but has nothing to read: a publisher
	// path with no publisher.
	ErrNoStream = errors.New("no stream is available on the path")
	// ErrStartTimeout means an on-demand source did not describe its tracks
	// within sourceOnDemandStartTimeout.
	ErrStartTimeout = errors.New("source did not start in time")
	// ErrTooManyReaders means the path's maxReaders is reached.
	ErrTooManyReaders = errors.New("too many readers")
	// ErrPublisherExists means another publisher is already publishing.
	ErrPublisherExists = errors.New("another publisher is already publishing to the path")
	// ErrNotPublisherPath means the path takes its stream from a source, not a publisher.
	ErrNotPublisherPath = errors.New("path does not accept publishers")
	// ErrPathExists means AddPath was given a name that is already configured.
	ErrPathExists = errors.New("path already exists")
	// ErrStreamClosed is given to readers when their stream ends.
	ErrStreamClosed = errors.New("stream closed")
	// ErrTracksChanged is given to readers when the source came back with other tracks.
	ErrTracksChanged = errors.New("source tracks changed")
	// ErrClosed means the manager is shut down.
	ErrClosed = errors.New("streaming manager closed")
)
