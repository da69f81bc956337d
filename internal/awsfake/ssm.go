package awsfake

import (
	"crypto/sha256"
	"encoding/base64"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

type paramVersion struct {
	value    string
	typ      string
	keyID    string
	version  int64
	modified time.Time
}

// SSM is the fake AWS Systems Manager Parameter Store.
type SSM struct {
	mu     sync.Mutex
	params map[string][]paramVersion // name → versions, oldest first
}

func newSSM() *SSM { return &SSM{params: map[string][]paramVersion{}} }

// Parameter returns the plain-text value of the latest version of the named parameter.
func (m *SSM) Parameter(name string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	vs, ok := m.params[name]
	if !ok {
		return "", false
	}
	return vs[len(vs)-1].value, true
}

// Names returns the names of every parameter, sorted.
func (m *SSM) Names() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.params))
}

// Put stores value as a new version of the named String parameter, creating it if needed.
func (m *SSM) Put(name, value string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.put(name, value, "String", "")
}

func (m *SSM) put(name, value, typ, keyID string) int64 {
	vs := m.params[name]
	v := int64(1)
	if len(vs) > 0 {
		v = vs[len(vs)-1].version + 1
	}
	m.params[name] = append(vs, paramVersion{value: value, typ: typ, keyID: keyID, version: v, modified: time.Now().UTC()})
	return v
}

var (
	paramNameRE   = regexp.MustCompile(`^[a-zA-Z0-9_./-]+$`)
	reservedParam = regexp.MustCompile(`(?i)^/?(aws|ssm)`)
)

func ssmValidation(format string, args ...any) *apiError {
	return errorf(400, "ValidationException", format, args...)
}

func validateParamName(name string) *apiError {
	if len(name) > 2048 || !paramNameRE.MatchString(name) {
		return ssmValidation("Parameter name %q is not valid: use 1 to 2048 characters of [a-zA-Z0-9_.-/]", name)
	}
	if strings.Contains(name, "/") && !strings.HasPrefix(name, "/") {
		return ssmValidation("Parameter name %q: if formed as a path, it must be fully qualified with a leading "+
			"forward slash (/)", name)
	}
	if strings.Count(name, "/") > 15 {
		return ssmValidation("Parameter name %q has more than 15 hierarchy levels", name)
	}
	return nil
}

func paramARN(name string) string {
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	return "arn:aws:ssm:" + Region + ":" + AccountID + ":parameter" + name
}

func (m *SSM) handler(op string) jsonHandler {
	switch op {
	case "GetParameter":
		return m.getParameter
	case "GetParameters":
		return m.getParameters
	case "GetParametersByPath":
		return m.getParametersByPath
	case "PutParameter":
		return m.putParameter
	case "DeleteParameter":
		return m.deleteParameter
	}
	return nil
}

// render is the wire form of one parameter version.
func render(name string, v paramVersion, decrypt bool, selector string) map[string]any {
	value := v.value
	if v.typ == "SecureString" && !decrypt {
		// Without decryption AWS returns the KMS ciphertext: an opaque base64 blob.
		sum := sha256.Sum256([]byte(name + "\x00" + strconv.FormatInt(v.version, 10) + "\x00" + v.value))
		value = "AQICAHh" + base64.StdEncoding.EncodeToString(sum[:])
	}
	out := map[string]any{
		"Name": name, "Type": v.typ, "Value": value, "Version": v.version, "LastModifiedDate": epoch(v.modified),
		"ARN": paramARN(name), "DataType": "text",
	}
	if selector != "" {
		out["Selector"] = selector
	}
	return out
}

// find resolves a name with an optional ":version" selector. Caller holds mu.
// A parameter ARN is accepted in place of the name.
func (m *SSM) find(ref string) (string, paramVersion, string, *apiError) {
	if rest, ok := strings.CutPrefix(ref, "arn:aws:ssm:"+Region+":"+AccountID+":parameter"); ok {
		// "parameter/a/b" names "/a/b"; "parameter/x" names "/x" or, failing that, "x".
		ref = rest
		if base, _, _ := strings.Cut(rest, ":"); m.params[base] == nil {
			ref = strings.TrimPrefix(rest, "/")
		}
	}
	name, selector := ref, ""
	if i := strings.LastIndex(ref, ":"); i > 0 {
		name, selector = ref[:i], ref[i:]
	}
	vs, ok := m.params[name]
	if !ok {
		return "", paramVersion{}, "", errorf(400, "ParameterNotFound", "Parameter %s not found.", name)
	}
	if selector == "" {
		return name, vs[len(vs)-1], "", nil
	}
	n, err := strconv.ParseInt(selector[1:], 10, 64)
	if err == nil {
		for _, v := range vs {
			if v.version == n {
				return name, v, selector, nil
			}
		}
	}
	return "", paramVersion{}, "", errorf(400, "ParameterVersionNotFound",
		"Systems Manager could not find version %s of %s.", selector[1:], name)
}

func (m *SSM) getParameter(body []byte) (any, *apiError) {
	var in struct {
		Name           string
		WithDecryption bool
	}
	if e := decodeJSON(body, &in, "ValidationException"); e != nil {
		return nil, e
	}
	if in.Name == "" {
		return nil, ssmValidation("Name is required")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	name, v, sel, e := m.find(in.Name)
	if e != nil {
		return nil, e
	}
	return map[string]any{"Parameter": render(name, v, in.WithDecryption, sel)}, nil
}

func (m *SSM) getParameters(body []byte) (any, *apiError) {
	var in struct {
		Names          []string
		WithDecryption bool
	}
	if e := decodeJSON(body, &in, "ValidationException"); e != nil {
		return nil, e
	}
	if len(in.Names) < 1 || len(in.Names) > 10 {
		return nil, ssmValidation("Names must hold 1 to 10 names, got %d", len(in.Names))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	params, invalid := []map[string]any{}, []string{}
	for _, ref := range in.Names {
		name, v, sel, e := m.find(ref)
		if e != nil {
			invalid = append(invalid, ref)
			continue
		}
		params = append(params, render(name, v, in.WithDecryption, sel))
	}
	return map[string]any{"Parameters": params, "InvalidParameters": invalid}, nil
}

func (m *SSM) getParametersByPath(body []byte) (any, *apiError) {
	var in struct {
		Path           string
		Recursive      bool
		WithDecryption bool
		MaxResults     *int
		NextToken      string
	}
	if e := decodeJSON(body, &in, "ValidationException"); e != nil {
		return nil, e
	}
	if !strings.HasPrefix(in.Path, "/") || !paramNameRE.MatchString(in.Path) {
		return nil, ssmValidation("Path %q is not valid: it must begin with /", in.Path)
	}
	n := 10
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 10 {
			return nil, ssmValidation("MaxResults must be 1 to 10, got %d", *in.MaxResults)
		}
		n = *in.MaxResults
	}
	prefix := strings.TrimSuffix(in.Path, "/") + "/"
	m.mu.Lock()
	defer m.mu.Unlock()
	var names []string
	for _, name := range slices.Sorted(maps.Keys(m.params)) {
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok || rest == "" || (!in.Recursive && strings.Contains(rest, "/")) {
			continue
		}
		names = append(names, name)
	}
	page, next, err := paginate(names, in.NextToken, n)
	if err != nil {
		return nil, errorf(400, "InvalidNextToken", "The specified token isn't valid.")
	}
	params := make([]map[string]any, 0, len(page))
	for _, name := range page {
		vs := m.params[name]
		params = append(params, render(name, vs[len(vs)-1], in.WithDecryption, ""))
	}
	return withNext(map[string]any{"Parameters": params}, "NextToken", next), nil
}

func (m *SSM) putParameter(body []byte) (any, *apiError) {
	var in struct {
		Name      string
		Value     *string
		Type      string
		KeyID     string `json:"KeyId"`
		Overwrite bool
		Tier      string
	}
	if e := decodeJSON(body, &in, "ValidationException"); e != nil {
		return nil, e
	}
	if e := validateParamName(in.Name); e != nil {
		return nil, e
	}
	if reservedParam.MatchString(in.Name) {
		return nil, ssmValidation("Parameter name %q: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive).",
			in.Name)
	}
	if in.Value == nil || *in.Value == "" {
		return nil, ssmValidation("Value is required and must not be empty")
	}
	limit := 4096
	switch in.Tier {
	case "", "Standard", "Intelligent-Tiering":
	case "Advanced":
		limit = 8192
	default:
		return nil, ssmValidation("Tier %q is not valid", in.Tier)
	}
	if len(*in.Value) > limit {
		return nil, ssmValidation("Value is longer than %d characters", limit)
	}
	switch in.Type {
	case "", "String", "StringList", "SecureString":
	default:
		return nil, ssmValidation("Type %q is not valid: use String, StringList or SecureString", in.Type)
	}
	if in.KeyID != "" && in.Type != "SecureString" {
		return nil, ssmValidation("KeyId is only valid for SecureString parameters")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	typ := in.Type
	if vs, ok := m.params[in.Name]; ok {
		if !in.Overwrite {
			return nil, errorf(400, "ParameterAlreadyExists",
				"The parameter already exists. To overwrite this value, set the overwrite option in the request to true.")
		}
		if typ == "" {
			typ = vs[len(vs)-1].typ
		}
	}
	if typ == "" {
		typ = "String"
	}
	keyID := in.KeyID
	if typ == "SecureString" && keyID == "" {
		keyID = "alias/aws/ssm"
	}
	tier := in.Tier
	if tier == "" || tier == "Intelligent-Tiering" {
		tier = "Standard"
	}
	v := m.put(in.Name, *in.Value, typ, keyID)
	return map[string]any{"Version": v, "Tier": tier}, nil
}

func (m *SSM) deleteParameter(body []byte) (any, *apiError) {
	var in struct{ Name string }
	if e := decodeJSON(body, &in, "ValidationException"); e != nil {
		return nil, e
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.params[in.Name]; !ok {
		return nil, errorf(400, "ParameterNotFound", "Parameter %s not found.", in.Name)
	}
	delete(m.params, in.Name)
	return struct{}{}, nil
}
