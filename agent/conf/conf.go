// Package conf defines camgate's configuration: the structs, the embedded
// defaults, loading (defaults, then file, then CAMGATE_* environment),
// and validation. Error messages name the file, the line and the key.
//
// conf knows nothing of the subsystems that consume it; the agent converts
// these structs into each subsystem's options. A rule a subsystem owns (an
// MQTT topic level, a password hash format, a STUN URL) stays with that
// subsystem: the agent hands it to Load as a Check, so that loading
// refuses what the subsystem would, with the same file:line:key errors.
package conf

// Config is the whole configuration.
type Config struct {
	Agent        Agent               `yaml:"agent" json:"agent"`
	RTSP         RTSP                `yaml:"rtsp" json:"rtsp"`
	WebRTC       WebRTC              `yaml:"webrtc" json:"webrtc"`
	HLS          HLS                 `yaml:"hls" json:"hls"`
	API          API                 `yaml:"api" json:"api"`
	Playback     Playback            `yaml:"playback" json:"playback"`
	Uplink       Uplink              `yaml:"uplink" json:"uplink"`
	Auth         Auth                `yaml:"auth" json:"auth"`
	PathDefaults PathDefaults        `yaml:"pathDefaults" json:"pathDefaults"`
	Paths        map[string]PathConf `yaml:"paths" json:"paths"`
	Update       Update              `yaml:"update" json:"update"`

	// fileKeys and envVars are what the file and the environment set
	// (SetByFile); the zero Config has neither.
	fileKeys map[string]int
	envVars  map[string]bool
}

// Agent is the agent section.
type Agent struct {
	ID            string `yaml:"id" json:"id"`
	DataDir       string `yaml:"dataDir" json:"dataDir"`
	LogLevel      string `yaml:"logLevel" json:"logLevel"`
	LogFormat     string `yaml:"logFormat" json:"logFormat"`
	LogFile       string `yaml:"logFile" json:"logFile"`
	LogMaxSizeMB  int    `yaml:"logMaxSizeMB" json:"logMaxSizeMB"`
	LogMaxBackups int    `yaml:"logMaxBackups" json:"logMaxBackups"`
	// GoMemLimit is the soft memory limit handed to the Go runtime; 0 = none.
	GoMemLimit ByteSize `yaml:"goMemLimit" json:"goMemLimit"`
	// GoGC is the heap growth between collections, in percent (GOGC);
	// 0 = the Go default (100, or the GOGC environment variable).
	GoGC int `yaml:"goGC" json:"goGC"`
	// Pprof exposes /debug/pprof on the API listener; off by default.
	Pprof bool `yaml:"pprof" json:"pprof"`
	// UDPGSO lets UDP and WebRTC readers be sent with UDP segmentation
	// offload where the kernel has it (Linux 4.18); on by default, read
	// at start-up.
	UDPGSO bool `yaml:"udpGSO" json:"udpGSO"`
	// Labels describe the box to the fleet (site: plant-3, line: "2"):
	// they are in the retained status and fleet selectors match them.
	// The fleet's desired state may add labels but not change these.
	// None by default.
	Labels map[string]string `yaml:"labels" json:"labels"`
}

// RTSP is the local RTSP server section.
type RTSP struct {
	Address        string   `yaml:"address" json:"address"`
	Transports     []string `yaml:"transports" json:"transports"`
	RTPAddress     string   `yaml:"rtpAddress" json:"rtpAddress"`
	RTCPAddress    string   `yaml:"rtcpAddress" json:"rtcpAddress"`
	WriteQueueSize int      `yaml:"writeQueueSize" json:"writeQueueSize"`
	// MaxConnections bounds the RTSP connections open at once; the excess
	// gets 503 at once. Default 512; 0 = no cap.
	MaxConnections int `yaml:"maxConnections" json:"maxConnections"`
	// MaxConnectionsPerIP bounds those from one client address; an NVR
	// recording 64 cameras, main and sub stream, opens 128. Default 128;
	// 0 = no cap.
	MaxConnectionsPerIP int `yaml:"maxConnectionsPerIP" json:"maxConnectionsPerIP"`
}

// WebRTC is the WHEP server section.
type WebRTC struct {
	Address               string      `yaml:"address" json:"address"`
	ICEUDPMuxAddress      string      `yaml:"iceUDPMuxAddress" json:"iceUDPMuxAddress"`
	ICETCPMuxAddress      string      `yaml:"iceTCPMuxAddress" json:"iceTCPMuxAddress"`
	IPsFromInterfaces     bool        `yaml:"ipsFromInterfaces" json:"ipsFromInterfaces"`
	IPsFromInterfacesList []string    `yaml:"ipsFromInterfacesList" json:"ipsFromInterfacesList"`
	AdditionalHosts       []string    `yaml:"additionalHosts" json:"additionalHosts"`
	ICEServers            []ICEServer `yaml:"iceServers" json:"iceServers"`
	// MaxConnections bounds the HTTP connections (player page, WHEP) open
	// at once; the excess gets 503 at once. Media goes over ICE, not these;
	// the ICE-TCP listener (iceTCPMuxAddress) has the same caps of its own.
	// Default 256; 0 = no cap.
	MaxConnections int `yaml:"maxConnections" json:"maxConnections"`
	// MaxConnectionsPerIP bounds those from one client address (a browser
	// opens up to 6 per host); the excess gets 429. Default 32; 0 = no cap.
	MaxConnectionsPerIP int `yaml:"maxConnectionsPerIP" json:"maxConnectionsPerIP"`
	// MaxPendingSessions bounds the WHEP sessions answered but not yet
	// connected (each holds a peer connection until its handshake timeout,
	// 10 s); further offers get 503 at once. Default 64; 0 = no cap.
	MaxPendingSessions int `yaml:"maxPendingSessions" json:"maxPendingSessions"`
}

// HLS is the LL-HLS server section.
type HLS struct {
	// Address serves LL-HLS at /<path>/index.m3u8; "" turns HLS off.
	// Default ":8888" (MediaMTX's port and URL shape).
	Address string `yaml:"address" json:"address"`
	// MaxConnections bounds the HTTP connections open at once; the excess
	// gets 503 at once. Default 256; 0 = no cap.
	MaxConnections int `yaml:"maxConnections" json:"maxConnections"`
	// MaxConnectionsPerIP bounds those from one client address; an LL-HLS
	// player keeps two or three open per stream (an NVR reading 24 cameras
	// about 64). The excess gets 429. Default 64; 0 = no cap.
	MaxConnectionsPerIP int `yaml:"maxConnectionsPerIP" json:"maxConnectionsPerIP"`
}

// ICEServer is a STUN or TURN server.
type ICEServer struct {
	URL      string `yaml:"url" json:"url"`
	Username string `yaml:"username" json:"username"`
	Password Secret `yaml:"password" json:"password"`
}

// API is the local HTTP API section.
type API struct {
	Address string `yaml:"address" json:"address"`
	// MaxConnections bounds the API connections open at once; the excess
	// gets 503 at once. Default 64; 0 = no cap.
	MaxConnections int `yaml:"maxConnections" json:"maxConnections"`
	// MaxConnectionsPerIP bounds those from one client address (every
	// local tool is 127.0.0.1); the excess gets 429. Default 32; 0 = no cap.
	MaxConnectionsPerIP int `yaml:"maxConnectionsPerIP" json:"maxConnectionsPerIP"`
	// AllowedHosts are further names the API answers to in the Host header
	// (e.g. the box's DNS name when address is not loopback). Loopback
	// names and addresses and the host of address are always allowed; any
	// other Host gets 403, so DNS rebinding fails. Default none.
	AllowedHosts []string `yaml:"allowedHosts" json:"allowedHosts"`
}

// Playback is the recordings' HTTP listener (GET /list, GET /get).
type Playback struct {
	// Address serves the recordings; "" turns playback off. Default
	// ":9996" (MediaMTX's port and API).
	Address string `yaml:"address" json:"address"`
	// MaxConnections bounds the HTTP connections open at once; the excess
	// gets 503 at once. Default 64; 0 = no cap.
	MaxConnections int `yaml:"maxConnections" json:"maxConnections"`
	// MaxConnectionsPerIP bounds those from one client address (the player
	// page's timeline and a download or two; an NVR fetching clips of
	// several cameras); the excess gets 429. Default 16; 0 = no cap.
	MaxConnectionsPerIP int `yaml:"maxConnectionsPerIP" json:"maxConnectionsPerIP"`
}

// Uplink is the MQTT section.
type Uplink struct {
	Broker         SecretURL `yaml:"broker" json:"broker"`
	Username       string    `yaml:"username" json:"username"`
	Password       Secret    `yaml:"password" json:"password"`
	TLS            TLS       `yaml:"tls" json:"tls"`
	TopicPrefix    string    `yaml:"topicPrefix" json:"topicPrefix"`
	HealthInterval Duration  `yaml:"healthInterval" json:"healthInterval"`
	Outbox         Outbox    `yaml:"outbox" json:"outbox"`
}

// TLS names PEM files for the broker connection.
type TLS struct {
	CA   string `yaml:"ca" json:"ca"`
	Cert string `yaml:"cert" json:"cert"`
	Key  string `yaml:"key" json:"key"`
}

// Outbox bounds the store-and-forward queue.
type Outbox struct {
	MaxMessages int      `yaml:"maxMessages" json:"maxMessages"`
	MaxBytes    ByteSize `yaml:"maxBytes" json:"maxBytes"`
}

// Auth holds the users allowed to read, publish and use the API.
type Auth struct {
	Users []User `yaml:"users" json:"users"`
	// Argon2MaxMemory bounds the memory of the argon2 password checks
	// running at once: each weighs its hash's m parameter, one always
	// runs. Default 64MiB.
	Argon2MaxMemory ByteSize `yaml:"argon2MaxMemory" json:"argon2MaxMemory"`
	// Argon2QueueTimeout is how long a check waits for room before the
	// request is refused (RTSP and HTTP 503 with Retry-After). Default 5s.
	Argon2QueueTimeout Duration `yaml:"argon2QueueTimeout" json:"argon2QueueTimeout"`
}

// User is one credential (or "any") with the IPs it may come from and what it may do.
type User struct {
	User        string       `yaml:"user" json:"user"`
	Pass        Secret       `yaml:"pass" json:"pass"`
	IPs         []string     `yaml:"ips" json:"ips"`
	Permissions []Permission `yaml:"permissions" json:"permissions"`
}

// Permission grants an action (read, publish, api), optionally on one path
// or a "~regexp" of paths.
type Permission struct {
	Action string `yaml:"action" json:"action"`
	Path   string `yaml:"path,omitempty" json:"path,omitempty"`
}

// PathDefaults apply to every path that does not set the key itself.
type PathDefaults struct {
	SourceOnDemand             bool     `yaml:"sourceOnDemand" json:"sourceOnDemand"`
	SourceOnDemandStartTimeout Duration `yaml:"sourceOnDemandStartTimeout" json:"sourceOnDemandStartTimeout"`
	SourceOnDemandCloseAfter   Duration `yaml:"sourceOnDemandCloseAfter" json:"sourceOnDemandCloseAfter"`
	RTSPTransport              string   `yaml:"rtspTransport" json:"rtspTransport"`
	ReadTimeout                Duration `yaml:"readTimeout" json:"readTimeout"`
	MaxReaders                 int      `yaml:"maxReaders" json:"maxReaders"`
	SourceRetryMax             Duration `yaml:"sourceRetryMax" json:"sourceRetryMax"`
	// RunOnInitRestart restarts a path's runOnInit command when it exits.
	RunOnInitRestart bool `yaml:"runOnInitRestart" json:"runOnInitRestart"`
	// RunOnDemandRestart restarts a path's runOnDemand command when it
	// exits while readers still want the path.
	RunOnDemandRestart bool `yaml:"runOnDemandRestart" json:"runOnDemandRestart"`
	// RunOnDemandStartTimeout is how long the first reader waits for the
	// runOnDemand command to publish.
	RunOnDemandStartTimeout Duration `yaml:"runOnDemandStartTimeout" json:"runOnDemandStartTimeout"`
	// RunOnDemandCloseAfter is how long the runOnDemand command outlives
	// the last reader.
	RunOnDemandCloseAfter Duration `yaml:"runOnDemandCloseAfter" json:"runOnDemandCloseAfter"`

	Record                bool     `yaml:"record" json:"record"`
	RecordPath            string   `yaml:"recordPath" json:"recordPath"`
	RecordSegmentDuration Duration `yaml:"recordSegmentDuration" json:"recordSegmentDuration"`
	RecordPartDuration    Duration `yaml:"recordPartDuration" json:"recordPartDuration"`
	RecordDeleteAfter     Duration `yaml:"recordDeleteAfter" json:"recordDeleteAfter"`
	RecordMaxBytes        ByteSize `yaml:"recordMaxBytes" json:"recordMaxBytes"`
	RecordMinFreeBytes    ByteSize `yaml:"recordMinFreeBytes" json:"recordMinFreeBytes"`
}

// PathConf is one entry of paths. Unset keys (nil) take pathDefaults.
type PathConf struct {
	Source                     SecretURL `yaml:"source" json:"source"`
	SourceOnDemand             *bool     `yaml:"sourceOnDemand,omitempty" json:"sourceOnDemand,omitempty"`
	SourceOnDemandStartTimeout *Duration `yaml:"sourceOnDemandStartTimeout,omitempty" json:"sourceOnDemandStartTimeout,omitempty"`
	SourceOnDemandCloseAfter   *Duration `yaml:"sourceOnDemandCloseAfter,omitempty" json:"sourceOnDemandCloseAfter,omitempty"`
	RTSPTransport              *string   `yaml:"rtspTransport,omitempty" json:"rtspTransport,omitempty"`
	ReadTimeout                *Duration `yaml:"readTimeout,omitempty" json:"readTimeout,omitempty"`
	MaxReaders                 *int      `yaml:"maxReaders,omitempty" json:"maxReaders,omitempty"`
	SourceRetryMax             *Duration `yaml:"sourceRetryMax,omitempty" json:"sourceRetryMax,omitempty"`

	// The runOn* keys start commands on the box (MediaMTX's hooks of the
	// same names). They come from the config file only: a fleet command,
	// the desired state or the local API that sets one is refused (the
	// `origin:"file"` tag, see DecodeJSON).

	// RunOnInit is a command started with the path (a publisher of it, for
	// example ffmpeg reading a webcam) and stopped, with its children, when
	// the path closes. Not on all_others or "~regexp" entries.
	RunOnInit        Command `yaml:"runOnInit,omitempty" json:"runOnInit,omitempty" origin:"file"`
	RunOnInitRestart *bool   `yaml:"runOnInitRestart,omitempty" json:"runOnInitRestart,omitempty" origin:"file"`
	// RunOnDemand is a command started when the first reader asks for a
	// publisher path that has no publisher; the reader waits for the
	// command to publish, up to RunOnDemandStartTimeout. It is stopped,
	// with its children, RunOnDemandCloseAfter after the last reader left.
	RunOnDemand             Command   `yaml:"runOnDemand,omitempty" json:"runOnDemand,omitempty" origin:"file"`
	RunOnDemandRestart      *bool     `yaml:"runOnDemandRestart,omitempty" json:"runOnDemandRestart,omitempty" origin:"file"`
	RunOnDemandStartTimeout *Duration `yaml:"runOnDemandStartTimeout,omitempty" json:"runOnDemandStartTimeout,omitempty" origin:"file"`
	RunOnDemandCloseAfter   *Duration `yaml:"runOnDemandCloseAfter,omitempty" json:"runOnDemandCloseAfter,omitempty" origin:"file"`

	// SourceFingerprint pins an rtsps:// camera's certificate (hex SHA-256
	// of its DER) instead of verifying it against the system roots; for
	// self-signed cameras. Empty: verified as a web browser would.
	SourceFingerprint Fingerprint `yaml:"sourceFingerprint,omitempty" json:"sourceFingerprint,omitempty"`

	Record                *bool     `yaml:"record,omitempty" json:"record,omitempty"`
	RecordPath            *string   `yaml:"recordPath,omitempty" json:"recordPath,omitempty"`
	RecordSegmentDuration *Duration `yaml:"recordSegmentDuration,omitempty" json:"recordSegmentDuration,omitempty"`
	RecordPartDuration    *Duration `yaml:"recordPartDuration,omitempty" json:"recordPartDuration,omitempty"`
	RecordDeleteAfter     *Duration `yaml:"recordDeleteAfter,omitempty" json:"recordDeleteAfter,omitempty"`
	RecordMaxBytes        *ByteSize `yaml:"recordMaxBytes,omitempty" json:"recordMaxBytes,omitempty"`
	RecordMinFreeBytes    *ByteSize `yaml:"recordMinFreeBytes,omitempty" json:"recordMinFreeBytes,omitempty"`
}

// Update configures agent.update (signed self-update with a trial).
type Update struct {
	// PublicKeys are the minisign public keys (the base64 line of a
	// minisign.pub, "RW...") an update must be signed with; empty refuses
	// every update.
	PublicKeys []string `yaml:"publicKeys" json:"publicKeys"`
	// TrialTimeout is how long a new binary has to become healthy before
	// it is rolled back; default 60s.
	TrialTimeout Duration `yaml:"trialTimeout" json:"trialTimeout"`
}
