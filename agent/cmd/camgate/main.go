// Command camgate is the edge agent for camera gateways. See the README.
package main

import (
	"os"

	"github.com/camgate/camgate/agent"
)

func main() {
	os.Exit(agent.Main(os.Args[1:], os.Stdout, os.Stderr))
}
