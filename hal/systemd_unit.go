//go:build linux

package hal

import (
	"fmt"
	"strconv"
	"strings"
)

// unitTemplate is the systemd unit, hardened: a dedicated user, a read-only
// system except the data directory, no new privileges, only the address
// families the agent uses (AF_NETLINK lists interfaces). The unit shipped in
// packages (packaging/camgate.service) is this template rendered for
// /usr/bin/camgate and /etc/camgate/camgate.yml; a test keeps both equal.
//
// Type=notify with WatchdogSec: the agent says READY=1 once its listeners
// are open and pings every WatchdogSec/2; systemd restarts it when the pings
// stop. Restart=always also covers agent.restart, which exits on purpose.
// CAP_NET_BIND_SERVICE lets an integrator move RTSP to port 554.
const unitTemplate = `# camgate edge agent: installed by the camgate package or by
# "camgate service install". Local changes belong in a drop-in
# (systemctl edit @NAME@), which upgrades keep.
[Unit]
Description=@DESCRIPTION@
Wants=network-online.target
After=network-online.target

[Service]
Type=notify
NotifyAccess=main
ExecStart=@EXECSTART@
User=@USER@
Group=@USER@
StateDirectory=camgate
StateDirectoryMode=0750
WorkingDirectory=/var/lib/camgate
Restart=always
RestartSec=5s
TimeoutStartSec=60s
TimeoutStopSec=15s
WatchdogSec=30s
UMask=0027
LimitNOFILE=65536

AmbientCapabilities=CAP_NET_BIND_SERVICE
CapabilityBoundingSet=CAP_NET_BIND_SERVICE
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=/var/lib/camgate
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged
SystemCallErrorNumber=EPERM

[Install]
WantedBy=multi-user.target
`

// renderUnit fills the unit template for c (after withDefaults).
func renderUnit(c ServiceConfig) ([]byte, error) {
	args := append([]string{c.Executable}, c.args()...)
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = quoteUnitArg(a)
	}
	for _, v := range []struct{ key, val string }{{"name", c.Name}, {"description", c.Description}, {"user", c.User}} {
		if strings.ContainsAny(v.val, "\n\r") {
			return nil, fmt.Errorf("render systemd unit: %s %q spans lines", v.key, v.val)
		}
	}
	// A plain replacement: text/template would cost the binary ~3 MB (see
	// streaming/webrtc/page.go) for four fields.
	r := strings.NewReplacer("@NAME@", c.Name, "@DESCRIPTION@", c.Description,
		"@EXECSTART@", strings.Join(quoted, " "), "@USER@", c.User)
	return []byte(r.Replace(unitTemplate)), nil
}

// quoteUnitArg escapes what systemd would expand in ExecStart ("%"
// specifiers, "$" variables) and quotes arguments with spaces, quotes or
// backslashes; systemd's quoting is C-like, as Go's strconv.Quote.
func quoteUnitArg(a string) string {
	a = strings.ReplaceAll(a, "%", "%%")
	a = strings.ReplaceAll(a, "$", "$$")
	if strings.ContainsAny(a, " \t\"'\\") {
		return strconv.Quote(a)
	}
	return a
}
