package awsfake

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// paginate returns the page of at most n items that token starts, and the token of the next page ("" at the end).
// A token is an opaque encoding of the page's offset.
func paginate[T any](items []T, token string, n int) ([]T, string, error) {
	start := 0
	if token != "" {
		v, err := decodeToken(token)
		if err != nil || v > len(items) {
			//lint:ignore ST1005 AWS's own message text, which the fake answers verbatim
			return nil, "", fmt.Errorf("The next token %q is not valid", token)
		}
		start = v
	}
	end := min(start+n, len(items))
	next := ""
	if end < len(items) {
		next = encodeToken(end)
	}
	return slices.Clone(items[start:end]), next, nil
}

const tokenPrefix = "awsfake-offset:"

func encodeToken(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(tokenPrefix + strconv.Itoa(offset)))
}

func decodeToken(token string) (int, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, err
	}
	s, ok := strings.CutPrefix(string(b), tokenPrefix)
	if !ok {
		return 0, fmt.Errorf("not a token")
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("not a token")
	}
	return v, nil
}
