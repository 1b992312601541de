//go:build wasip1

package main

import (
	"net/http"
	"strings"
)

func newRequest(method, url, body string) (*http.Request, error) {
	if body == "" {
		return http.NewRequest(method, url, nil)
	}
	return http.NewRequest(method, url, strings.NewReader(body))
}
