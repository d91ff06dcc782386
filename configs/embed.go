// Package configs holds the default configuration compiled into camgate.
package configs

import _ "embed"

// Default is configs/camgate.yml: the embedded defaults every config file
// is applied on top of.
//
//go:embed camgate.yml
var Default []byte
