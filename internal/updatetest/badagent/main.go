// Command badagent stands in for a broken camgate release in the update
// tests: it passes the self-test (`version`, `check-config`) and then
// fails its trial as its build says (-ldflags "-X main.mode=MODE"):
//
//	exit1   `run` prints an error and exits 1 at once
//	hang    `run` never becomes healthy (and ignores the end of its input)
package main

import (
	"fmt"
	"os"
	"time"
)

var (
	mode    = "exit1"
	version = "bad"
)

func main() {
	cmd := "run"
	if len(os.Args) > 1 {
		cmd = os.Args[1]
	}
	switch cmd {
	case "version":
		fmt.Printf("camgate %s (badagent %s)\n", version, mode)
	case "check-config":
		fmt.Println("ok")
	case "run":
		switch mode {
		case "hang":
			fmt.Fprintln(os.Stderr, "badagent: hanging")
			for {
				time.Sleep(time.Hour)
			}
		default:
			fmt.Fprintln(os.Stderr, "badagent: fatal: this build is broken")
			os.Exit(1)
		}
	default:
		os.Exit(2)
	}
}
