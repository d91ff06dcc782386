package api

import "errors"

// ErrNoAddress is returned by New when Options.Address is empty.
var ErrNoAddress = errors.New("api: no listen address")
