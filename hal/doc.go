// Package hal hides the platform from the rest of camgate: machine identity,
// default directories, system metrics, service-manager integration and the
// watchdog. It is the only package that asks which OS it runs on; each
// platform has its own file selected by build tags, and platforms without an
// implementation return ErrNotSupported.
package hal
