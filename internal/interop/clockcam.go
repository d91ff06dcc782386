package interop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// Clock camera: a 320x240, 25 fps picture whose top carries the time it
// was drawn, published with ffmpeg (libx264, ultrafast, zerolatency, no
// B-frames, a keyframe a second) to an RTSP URL. The picture is made
// here and written to ffmpeg's stdin at the moment it is stamped, so
// "glass" is the encoder's input: a browser that reads the stamp back
// from a shown frame (browser_play.mjs latency) measures encoding, the
// relay and the player together, with one clock on one machine.
//
// The stamp is the low 20 bits of the Unix time in milliseconds (it
// wraps every 17 minutes, far above any latency), as 20 blocks of 16x32
// pixels, white for 1, black for 0, most significant first, in rows
// 0-31; rows 32-63 hold the same bits inverted so that a reader can
// tell a damaged read. Below, a bar moves, so the picture moves.
const (
	clockW, clockH = 320, 240
	clockFPS       = 25
	clockBits      = 20
)

// ClockCamera is a running clock camera.
type ClockCamera struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	done   chan struct{}
	log    *os.File
	once   sync.Once
}

// StartClockCamera starts publishing to url (rtsp://...), logging
// ffmpeg's output to logDir/clockcam.log.
func StartClockCamera(logDir, url string) (*ClockCamera, error) {
	logf, err := os.Create(filepath.Join(logDir, "clockcam.log"))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "warning",
		"-f", "rawvideo", "-pix_fmt", "gray", "-s", fmt.Sprintf("%dx%d", clockW, clockH), "-r", fmt.Sprint(clockFPS), "-i", "-",
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", fmt.Sprint(clockFPS), "-bf", "0",
		"-pix_fmt", "yuv420p", "-f", "rtsp", "-rtsp_transport", "tcp", url)
	cmd.Stdout, cmd.Stderr = logf, logf
	setProcAttr(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		logf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		cancel()
		logf.Close()
		return nil, fmt.Errorf("start ffmpeg: %w", err)
	}
	c := &ClockCamera{cmd: cmd, cancel: cancel, done: make(chan struct{}), log: logf}
	go func() {
		defer close(c.done)
		c.feed(ctx, stdin)
	}()
	return c, nil
}

// feed writes a stamped picture every 40 ms until ctx ends or ffmpeg goes.
func (c *ClockCamera) feed(ctx context.Context, w io.WriteCloser) {
	defer w.Close()
	frame := make([]byte, clockW*clockH)
	tick := time.NewTicker(time.Second / clockFPS)
	defer tick.Stop()
	for n := 0; ; n++ {
		drawClock(frame, n, time.Now().UnixMilli())
		if _, err := w.Write(frame); err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// drawClock paints frame n stamped with ms.
func drawClock(frame []byte, n int, ms int64) {
	for i := range frame {
		frame[i] = 128
	}
	stamp := uint32(ms) & (1<<clockBits - 1)
	for b := range clockBits {
		bit := stamp>>(clockBits-1-b)&1 == 1
		for y := range 64 {
			v := byte(0)
			if bit != (y >= 32) {
				v = 255
			}
			row := frame[y*clockW+b*16 : y*clockW+b*16+16]
			for i := range row {
				row[i] = v
			}
		}
	}
	x := (n * 4) % (clockW - 20)
	for y := 100; y < 220; y++ {
		for i := x; i < x+20; i++ {
			frame[y*clockW+i] = 230
		}
	}
}

// Stop ends the camera (by its PID) and waits for it.
func (c *ClockCamera) Stop() error {
	var err error
	c.once.Do(func() {
		c.cancel()
		<-c.done
		_ = c.cmd.Process.Signal(os.Interrupt)
		t := time.AfterFunc(5*time.Second, func() { _ = c.cmd.Process.Kill() })
		werr := c.cmd.Wait()
		t.Stop()
		var ee *exec.ExitError
		if werr != nil && !errors.As(werr, &ee) {
			err = werr
		}
		c.log.Close()
	})
	return err
}
