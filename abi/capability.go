package abi

// Capabilities: what a plugin may reach beyond computing and asking, under
// the operator's grants. A plugin declares its [Needs] in its
// [Description]; the operator grants some or all of them; the guest uses
// them through one import, [ImportCapability], whose every call is one
// [CapabilityRequest] answered by one [CapabilityResult]. Directories are
// the exception: they are WASI preopens, mounted when the instance starts,
// and used with ordinary file calls.

// ImportCapability is (req_ptr, req_len i32) -> i32. The message is one
// [CapabilityRequest]; the host performs or refuses it and returns the
// length of the [CapabilityResult] waiting to be collected with
// [ImportResponse], or a negative [Status]. One request, one result: the
// pair is everything a journal needs to replay the call without the
// outside world.
const ImportCapability = "capability"

// Capability operations ([CapabilityRequest.Op]).
const (
	// OpHTTP performs one HTTP request ([CapabilityRequest.HTTP]); the
	// result carries the whole response ([CapabilityResult.HTTP]).
	OpHTTP = "http"
	// OpConfig reads one configuration value ([CapabilityRequest.Name]).
	OpConfig = "config"
	// OpSecret reads one secret ([CapabilityRequest.Name]).
	OpSecret = "secret"
	// OpDir asks whether the directory declared at the guest path
	// [CapabilityRequest.Name] is mounted: Value "ro" or "rw", or an error
	// naming the missing grant. The files themselves are reached through
	// WASI, not this import.
	OpDir = "dir"
)

// Needs is what a plugin declares it may use, in its [Description]. The
// host shows it to the operator and the client, and grants nothing beyond
// it. Every entry says why the plugin needs it, for the person deciding.
type Needs struct {
	Hosts   []HostNeed   `json:"hosts,omitempty"`
	Dirs    []DirNeed    `json:"dirs,omitempty"`
	Config  []ConfigNeed `json:"config,omitempty"`
	Secrets []SecretNeed `json:"secrets,omitempty"`
}

// Empty reports whether n declares nothing.
func (n Needs) Empty() bool {
	return len(n.Hosts) == 0 && len(n.Dirs) == 0 && len(n.Config) == 0 && len(n.Secrets) == 0
}

// HostNeed is a host name (no scheme, port or path; lower case) the plugin
// may send HTTP requests to.
type HostNeed struct {
	Host string `json:"host"`
	Why  string `json:"why,omitempty"`
}

// DirNeed is a directory the plugin expects at an absolute guest path.
// Write says it needs to change what is there; without it the host mounts
// the directory read-only whatever the grant says.
type DirNeed struct {
	Path  string `json:"path"`
	Write bool   `json:"write,omitempty"`
	Why   string `json:"why,omitempty"`
}

// ConfigNeed is a configuration value the plugin reads by key.
type ConfigNeed struct {
	Key string `json:"key"`
	Why string `json:"why,omitempty"`
}

// SecretNeed is a secret the plugin reads by name. Secrets differ from
// configuration only in how the host treats them: never logged, never in
// an error, redacted from what the guest sends out.
type SecretNeed struct {
	Name string `json:"name"`
	Why  string `json:"why,omitempty"`
}

// CapabilityRequest is the message passed to [ImportCapability].
type CapabilityRequest struct {
	Op string `json:"op"`
	// Name is the config key, secret name or guest path for [OpConfig],
	// [OpSecret] and [OpDir].
	Name string `json:"name,omitempty"`
	// HTTP is the request for [OpHTTP].
	HTTP *HTTPRequest `json:"http,omitempty"`
}

// HTTPRequest is one outbound request. The host follows redirects itself,
// checking each against the grant, so the guest sees the final response.
type HTTPRequest struct {
	Method string `json:"method"`
	// URL is absolute, http or https.
	URL    string              `json:"url"`
	Header map[string][]string `json:"header,omitempty"`
	// Body is base64 in JSON (a []byte).
	Body []byte `json:"body,omitempty"`
}

// HTTPResponse is the final response to an [HTTPRequest], body read whole.
type HTTPResponse struct {
	Status int                 `json:"status"`
	Header map[string][]string `json:"header,omitempty"`
	Body   []byte              `json:"body,omitempty"`
	// URL is where the response came from (after redirects).
	URL string `json:"url"`
}

// CapabilityResult is what [ImportCapability] answers: the outcome, or
// Error.
type CapabilityResult struct {
	HTTP *HTTPResponse `json:"http,omitempty"`
	// Value is the config value, secret or mount mode for [OpConfig],
	// [OpSecret] and [OpDir].
	Value string           `json:"value,omitempty"`
	Error *CapabilityError `json:"error,omitempty"`
}

// CapabilityError says why a capability request was not carried out. The
// message is for a person and says what to do; Code is for the guest.
type CapabilityError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Codes of a [CapabilityError].
const (
	// CapNotGranted: the plugin declared the need but the operator has not
	// granted it (or the person asked said no). The message names the
	// missing grant and how to add it.
	CapNotGranted = "not_granted"
	// CapNotDeclared: the plugin never declared this need; no grant can
	// allow it. The plugin must declare it and be rebuilt.
	CapNotDeclared = "not_declared"
	// CapRefused: granted, but this request breaks a rule of the grant or
	// of the host (method, path, a private address, a size or time limit).
	CapRefused = "refused"
	// CapFailed: the request was allowed and failed (DNS, connection, TLS).
	CapFailed = "failed"
	// CapBadRequest: the request itself is malformed.
	CapBadRequest = "bad_request"
)

// Limits of the capability import. A grant may lower them.
const (
	// MaxHTTPRequestBody caps an outbound request body.
	MaxHTTPRequestBody = 1 << 20
	// MaxHTTPResponseBody caps a response body (base64 in the result must
	// stay under [MaxMessageSize]).
	MaxHTTPResponseBody = 2 << 20
	// MaxHTTPRedirects caps the redirects the host follows for one request.
	MaxHTTPRedirects = 5
)
