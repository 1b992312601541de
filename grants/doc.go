// Package grants is the operator's capability policy: it reads the grants
// file (JSON, errors naming file, line and key), checks every grant against
// what the plugin declared (abi.Needs; a grant never exceeds a
// declaration), and answers the host's questions during a call: may this
// plugin send this request, read this config key, this secret? It also keeps
// the file of answers a person gave "always" to.
//
// It sits beside host in the data flow (CLI → MCP front end → tasks ↔ elicit
// relay → host → abi ← SDK): the CLI loads a [Policy] and hands it to the
// host, which asks it for each plugin's [Grant] at load and consults that
// Grant in its capability import. The policy is pure: it performs no
// network requests, mounts nothing and asks nobody; it must not reach into
// wazero, MCP, tasks or Redis. Deny by default: a nil *Policy grants
// nothing, and so does a plugin absent from the file.
//
// Secrets resolved here travel only to the host of the process that loaded
// the file, and from there only to the guest they are granted to; error
// messages built here name secrets, never their values.
package grants
