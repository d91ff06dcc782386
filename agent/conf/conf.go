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
	API          API                 `yaml:"api" json:"api"`
	Playback     Playback            `yaml:"playback" json:"playback"`
	Uplink       Uplink              `yaml:"uplink" json:"uplink"`
	Auth         Auth                `yaml:"auth" json:"auth"`
	PathDefaults PathDefaults        `yaml:"pathDefaults" json:"pathDefaults"`
	Paths        map[string]PathConf `yaml:"paths" json:"paths"`
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
}

// RTSP is the local RTSP server section.
type RTSP struct {
	Address        string   `yaml:"address" json:"address"`
	Transports     []string `yaml:"transports" json:"transports"`
	RTPAddress     string   `yaml:"rtpAddress" json:"rtpAddress"`
	RTCPAddress    string   `yaml:"rtcpAddress" json:"rtcpAddress"`
	WriteQueueSize int      `yaml:"writeQueueSize" json:"writeQueueSize"`
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
}

// Playback is the recordings' HTTP listener (GET /list, GET /get).
type Playback struct {
	Address string `yaml:"address" json:"address"`
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

	Record                *bool     `yaml:"record,omitempty" json:"record,omitempty"`
	RecordPath            *string   `yaml:"recordPath,omitempty" json:"recordPath,omitempty"`
	RecordSegmentDuration *Duration `yaml:"recordSegmentDuration,omitempty" json:"recordSegmentDuration,omitempty"`
	RecordPartDuration    *Duration `yaml:"recordPartDuration,omitempty" json:"recordPartDuration,omitempty"`
	RecordDeleteAfter     *Duration `yaml:"recordDeleteAfter,omitempty" json:"recordDeleteAfter,omitempty"`
	RecordMaxBytes        *ByteSize `yaml:"recordMaxBytes,omitempty" json:"recordMaxBytes,omitempty"`
	RecordMinFreeBytes    *ByteSize `yaml:"recordMinFreeBytes,omitempty" json:"recordMinFreeBytes,omitempty"`
}
