package mcpserver

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// stateSigner issues and checks the requestState of input_required results.
// A state names the suspended call and a fresh nonce (so every round's
// state differs), sealed with HMAC-SHA256: a client cannot forge one, alter
// one, or point one at another call. Front ends that share a store must
// share the key (Options.StateKey).
type stateSigner struct{ key []byte }

func newStateSigner(key []byte) stateSigner {
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	}
	return stateSigner{key: key}
}

var b64 = base64.RawURLEncoding

func (s stateSigner) sign(taskID string) string {
	nonce := make([]byte, 9)
	_, _ = rand.Read(nonce)
	payload := taskID + "." + b64.EncodeToString(nonce)
	return payload + "." + b64.EncodeToString(s.mac(payload))
}

func (s stateSigner) verify(state string) (taskID string, ok bool) {
	i := strings.LastIndexByte(state, '.')
	if i < 0 {
		return "", false
	}
	sig, err := b64.DecodeString(state[i+1:])
	if err != nil || !hmac.Equal(sig, s.mac(state[:i])) {
		return "", false
	}
	taskID, _, ok = strings.Cut(state[:i], ".")
	return taskID, ok
}

func (s stateSigner) mac(payload string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(payload))
	return m.Sum(nil)
}
