package testcam

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// ListenerFD finds the descriptor number, in process pid, of the TCP
// socket listening on addr (127.0.0.1:port), through /proc. Shutting that
// socket down makes the process's accept fail with EINVAL: a listener
// that dies under its server.
func ListenerFD(t testing.TB, pid int, addr string) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(addr)
	pn, _ := strconv.Atoi(port)
	local := fmt.Sprintf("0100007F:%04X", pn)
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		t.Fatal(err)
	}
	inode := ""
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 9 && f[1] == local && f[3] == "0A" { // 0A: LISTEN
			inode = f[9]
		}
	}
	if inode == "" {
		t.Fatalf("no listening socket for %s", addr)
	}
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if l, _ := os.Readlink(filepath.Join(dir, e.Name())); l == "socket:["+inode+"]" {
			n, _ := strconv.Atoi(e.Name())
			return n
		}
	}
	t.Fatalf("socket inode %s not among the descriptors of %d", inode, pid)
	return -1
}
