package agent

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/camgate/camgate/internal/testcam"
)

// commandHelper is the test binary playing a path command:
//
//	cgtest-publish URL   publishes H.264 to URL until SIGTERM, with a
//	                     child process of its own ("child PID")
//	cgtest-idle          never publishes
//	cgtest-child         sleeps; the publisher's child
func commandHelper(mode string, args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	switch mode {
	case "cgtest-publish":
		c := exec.Command(os.Args[0], "cgtest-child")
		c.Stdout = os.Stdout
		if err := c.Start(); err == nil {
			fmt.Printf("child %d\n", c.Process.Pid)
		}
		if err := testcam.Publish(ctx, args[0], 25); err != nil {
			fmt.Println("publish:", err)
			return 1
		}
		return 0
	case "cgtest-idle", "cgtest-child":
		select {
		case <-ctx.Done():
		case <-time.After(time.Minute):
		}
		return 0
	}
	return 3
}
