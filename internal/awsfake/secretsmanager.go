package awsfake

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Secret is a Secrets Manager secret as the fake holds it.
type Secret struct {
	ARN      string
	Name     string
	String   string // the SecretString of the AWSCURRENT version
	KmsKeyID string
	// VersionIDs lists every version, oldest first.
	VersionIDs []string
	// Deleted is true once DeleteSecret scheduled the secret for deletion.
	Deleted bool
}

type secretVersion struct {
	id      string
	str     *string
	bin     []byte
	stages  []string
	created time.Time
}

type secret struct {
	arn, name, description, kmsKeyID string
	versions                         []*secretVersion
	created, changed                 time.Time
	deleted                          *time.Time
}

func (s *secret) version(id string) *secretVersion {
	for _, v := range s.versions {
		if v.id == id {
			return v
		}
	}
	return nil
}

func (s *secret) staged(stage string) *secretVersion {
	for _, v := range s.versions {
		if slices.Contains(v.stages, stage) {
			return v
		}
	}
	return nil
}

// SecretsManager is the fake AWS Secrets Manager.
type SecretsManager struct {
	mu      sync.Mutex
	secrets []*secret // creation order
}

func newSecretsManager() *SecretsManager { return &SecretsManager{} }

const secretARNPrefix = "arn:aws:secretsmanager:" + Region + ":" + AccountID + ":secret:"

// lookup finds a secret by name, full ARN or partial ARN (the ARN without its random suffix). Caller holds mu.
func (m *SecretsManager) lookup(id string) *secret {
	for _, s := range m.secrets {
		if s.name == id || s.arn == id || secretARNPrefix+s.name == id {
			return s
		}
	}
	return nil
}

// Secret returns a copy of the secret named or with that ARN.
func (m *SecretsManager) Secret(idOrNameOrARN string) (Secret, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.lookup(idOrNameOrARN)
	if s == nil {
		return Secret{}, false
	}
	out := Secret{ARN: s.arn, Name: s.name, KmsKeyID: s.kmsKeyID, Deleted: s.deleted != nil}
	if v := s.staged("AWSCURRENT"); v != nil && v.str != nil {
		out.String = *v.str
	}
	for _, v := range s.versions {
		out.VersionIDs = append(out.VersionIDs, v.id)
	}
	return out, true
}

// Put stores value as the AWSCURRENT version of the named secret, creating the secret if needed, and returns its ARN.
func (m *SecretsManager) Put(name, value string) (arn string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.lookup(name)
	if s == nil {
		s = m.create(name, "", "")
	}
	s.addVersion(newUUID(), &value, nil, []string{"AWSCURRENT"})
	return s.arn
}

func (m *SecretsManager) create(name, description, kmsKeyID string) *secret {
	now := time.Now().UTC()
	s := &secret{
		arn:  secretARNPrefix + name + "-" + randomString(6, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"),
		name: name, description: description, kmsKeyID: kmsKeyID, created: now, changed: now,
	}
	m.secrets = append(m.secrets, s)
	return s
}

// addVersion adds a version with the given stages; moving AWSCURRENT demotes the old current version to AWSPREVIOUS.
func (s *secret) addVersion(id string, str *string, bin []byte, stages []string) *secretVersion {
	if len(stages) == 0 {
		stages = []string{"AWSCURRENT"}
	}
	if slices.Contains(stages, "AWSCURRENT") {
		if old := s.staged("AWSCURRENT"); old != nil {
			for _, v := range s.versions {
				v.stages = slices.DeleteFunc(v.stages, func(st string) bool { return st == "AWSPREVIOUS" })
			}
			old.stages = slices.DeleteFunc(old.stages, func(st string) bool { return st == "AWSCURRENT" })
			old.stages = append(old.stages, "AWSPREVIOUS")
		}
	}
	for _, st := range stages {
		if st == "AWSCURRENT" {
			continue
		}
		for _, v := range s.versions {
			v.stages = slices.DeleteFunc(v.stages, func(x string) bool { return x == st })
		}
	}
	now := time.Now().UTC()
	v := &secretVersion{id: id, str: str, bin: bin, stages: slices.Clone(stages), created: now}
	s.versions = append(s.versions, v)
	s.changed = now
	return v
}

var secretNameRE = regexp.MustCompile(`^[a-zA-Z0-9/_+=.@-]{1,512}$`)

func smError(code, format string, args ...any) *apiError { return errorf(400, code, format, args...) }

func (m *SecretsManager) handler(op string) jsonHandler {
	switch op {
	case "CreateSecret":
		return m.createSecret
	case "GetSecretValue":
		return m.getSecretValue
	case "PutSecretValue":
		return m.putSecretValue
	case "DescribeSecret":
		return m.describeSecret
	case "UpdateSecret":
		return m.updateSecret
	case "DeleteSecret":
		return m.deleteSecret
	case "UpdateSecretVersionStage":
		return m.updateSecretVersionStage
	}
	return nil
}

// live finds a secret that is not scheduled for deletion. Caller holds mu.
func (m *SecretsManager) live(id string) (*secret, *apiError) {
	if id == "" {
		return nil, smError("InvalidParameterException", "SecretId is required")
	}
	s := m.lookup(id)
	if s == nil {
		return nil, smError("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
	}
	if s.deleted != nil {
		return nil, smError("InvalidRequestException",
			"You can't perform this operation on the secret because it was marked for deletion.")
	}
	return s, nil
}

// maxSecretSize is Secrets Manager's limit on a SecretString or SecretBinary, in bytes.
const maxSecretSize = 65536

// putValue adds a version under token, honouring ClientRequestToken idempotency. Caller holds mu.
func (s *secret) putValue(token string, str *string, bin []byte, stages []string) (*secretVersion, *apiError) {
	if str == nil && bin == nil {
		return nil, smError("InvalidParameterException", "You must provide either SecretString or SecretBinary.")
	}
	if str != nil && bin != nil {
		return nil, smError("InvalidParameterException", "You can't specify both SecretString and SecretBinary.")
	}
	if str != nil && len(*str) > maxSecretSize || len(bin) > maxSecretSize {
		return nil, smError("InvalidParameterException", "The secret value is longer than %d bytes.", maxSecretSize)
	}
	if token == "" {
		token = newUUID()
	}
	if len(token) < 32 || len(token) > 64 {
		return nil, smError("InvalidParameterException", "ClientRequestToken must be 32 to 64 characters long.")
	}
	if v := s.version(token); v != nil {
		if equalPtr(v.str, str) && bytes.Equal(v.bin, bin) {
			return v, nil
		}
		return nil, smError("ResourceExistsException",
			"You can't modify an existing version, you can only create a new version.")
	}
	return s.addVersion(token, str, bin, stages), nil
}

func equalPtr(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func (m *SecretsManager) createSecret(body []byte) (any, *apiError) {
	var in struct {
		Name               string
		Description        string
		KmsKeyID           string `json:"KmsKeyId"`
		SecretString       *string
		SecretBinary       []byte
		ClientRequestToken string
	}
	if e := decodeJSON(body, &in, "InvalidParameterException"); e != nil {
		return nil, e
	}
	if !secretNameRE.MatchString(in.Name) || strings.HasPrefix(in.Name, secretARNPrefix) {
		return nil, smError("InvalidParameterException", "Invalid name %q: use 1 to 512 characters of [a-zA-Z0-9/_+=.@-]",
			in.Name)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.lookup(in.Name); s != nil {
		if s.deleted != nil {
			return nil, smError("InvalidRequestException",
				"You can't create this secret because a secret with this name is already scheduled for deletion.")
		}
		return nil, smError("ResourceExistsException", "The operation failed because the secret %s already exists.",
			in.Name)
	}
	s := m.create(in.Name, in.Description, in.KmsKeyID)
	out := map[string]any{"ARN": s.arn, "Name": s.name}
	if in.SecretString != nil || in.SecretBinary != nil {
		v, e := s.putValue(in.ClientRequestToken, in.SecretString, in.SecretBinary, nil)
		if e != nil {
			m.secrets = m.secrets[:len(m.secrets)-1]
			return nil, e
		}
		out["VersionId"] = v.id
	}
	return out, nil
}

func (m *SecretsManager) getSecretValue(body []byte) (any, *apiError) {
	var in struct{ SecretId, VersionId, VersionStage string }
	if e := decodeJSON(body, &in, "InvalidParameterException"); e != nil {
		return nil, e
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, e := m.live(in.SecretId)
	if e != nil {
		return nil, e
	}
	var v *secretVersion
	switch {
	case in.VersionId != "":
		v = s.version(in.VersionId)
		if v != nil && in.VersionStage != "" && !slices.Contains(v.stages, in.VersionStage) {
			v = nil
		}
	default:
		stage := in.VersionStage
		if stage == "" {
			stage = "AWSCURRENT"
		}
		v = s.staged(stage)
	}
	if v == nil {
		return nil, smError("ResourceNotFoundException",
			"Secrets Manager can't find the specified secret value for VersionId %q, staging label %q",
			in.VersionId, in.VersionStage)
	}
	out := map[string]any{
		"ARN": s.arn, "Name": s.name, "VersionId": v.id, "VersionStages": v.stages, "CreatedDate": epoch(v.created),
	}
	if v.str != nil {
		out["SecretString"] = *v.str
	} else {
		out["SecretBinary"] = v.bin
	}
	return out, nil
}

func (m *SecretsManager) putSecretValue(body []byte) (any, *apiError) {
	var in struct {
		SecretId           string
		ClientRequestToken string
		SecretString       *string
		SecretBinary       []byte
		VersionStages      []string
	}
	if e := decodeJSON(body, &in, "InvalidParameterException"); e != nil {
		return nil, e
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, e := m.live(in.SecretId)
	if e != nil {
		return nil, e
	}
	v, e := s.putValue(in.ClientRequestToken, in.SecretString, in.SecretBinary, in.VersionStages)
	if e != nil {
		return nil, e
	}
	return map[string]any{"ARN": s.arn, "Name": s.name, "VersionId": v.id, "VersionStages": v.stages}, nil
}

func (m *SecretsManager) describeSecret(body []byte) (any, *apiError) {
	var in struct{ SecretId string }
	if e := decodeJSON(body, &in, "InvalidParameterException"); e != nil {
		return nil, e
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if in.SecretId == "" {
		return nil, smError("InvalidParameterException", "SecretId is required")
	}
	s := m.lookup(in.SecretId)
	if s == nil {
		return nil, smError("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
	}
	stages := map[string][]string{}
	for _, v := range s.versions {
		if len(v.stages) > 0 {
			stages[v.id] = v.stages
		}
	}
	out := map[string]any{
		"ARN": s.arn, "Name": s.name, "VersionIdsToStages": stages,
		"CreatedDate": epoch(s.created), "LastChangedDate": epoch(s.changed),
	}
	if s.description != "" {
		out["Description"] = s.description
	}
	if s.kmsKeyID != "" {
		out["KmsKeyId"] = s.kmsKeyID
	}
	if s.deleted != nil {
		out["DeletedDate"] = epoch(*s.deleted)
	}
	return out, nil
}

func (m *SecretsManager) updateSecret(body []byte) (any, *apiError) {
	var in struct {
		SecretId           string
		ClientRequestToken string
		Description        *string
		KmsKeyID           *string `json:"KmsKeyId"`
		SecretString       *string
		SecretBinary       []byte
	}
	if e := decodeJSON(body, &in, "InvalidParameterException"); e != nil {
		return nil, e
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, e := m.live(in.SecretId)
	if e != nil {
		return nil, e
	}
	out := map[string]any{"ARN": s.arn, "Name": s.name}
	if in.SecretString != nil || in.SecretBinary != nil {
		v, e := s.putValue(in.ClientRequestToken, in.SecretString, in.SecretBinary, nil)
		if e != nil {
			return nil, e
		}
		out["VersionId"] = v.id
	}
	if in.Description != nil {
		s.description = *in.Description
	}
	if in.KmsKeyID != nil {
		s.kmsKeyID = *in.KmsKeyID
	}
	s.changed = time.Now().UTC()
	return out, nil
}

func (m *SecretsManager) deleteSecret(body []byte) (any, *apiError) {
	var in struct {
		SecretId                   string
		RecoveryWindowInDays       *int64
		ForceDeleteWithoutRecovery bool
	}
	if e := decodeJSON(body, &in, "InvalidParameterException"); e != nil {
		return nil, e
	}
	if in.RecoveryWindowInDays != nil && in.ForceDeleteWithoutRecovery {
		return nil, smError("InvalidParameterException",
			"You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.")
	}
	days := int64(30)
	if in.RecoveryWindowInDays != nil {
		days = *in.RecoveryWindowInDays
		if days < 7 || days > 30 {
			return nil, smError("InvalidParameterException", "RecoveryWindowInDays must be between 7 and 30, got %d", days)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if in.SecretId == "" {
		return nil, smError("InvalidParameterException", "SecretId is required")
	}
	s := m.lookup(in.SecretId)
	if s == nil {
		return nil, smError("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
	}
	now := time.Now().UTC()
	if in.ForceDeleteWithoutRecovery {
		m.secrets = slices.DeleteFunc(m.secrets, func(x *secret) bool { return x == s })
		return map[string]any{"ARN": s.arn, "Name": s.name, "DeletionDate": epoch(now)}, nil
	}
	if s.deleted == nil {
		s.deleted = &now
	}
	return map[string]any{
		"ARN": s.arn, "Name": s.name, "DeletionDate": epoch(s.deleted.AddDate(0, 0, int(days))),
	}, nil
}

// updateSecretVersionStage moves or removes a staging label. As in Secrets Manager, a label attached to another
// version moves only when RemoveFromVersionId names that version, which makes the call a compare-and-swap.
func (m *SecretsManager) updateSecretVersionStage(body []byte) (any, *apiError) {
	var in struct{ SecretId, VersionStage, MoveToVersionId, RemoveFromVersionId string }
	if e := decodeJSON(body, &in, "InvalidParameterException"); e != nil {
		return nil, e
	}
	if in.VersionStage == "" {
		return nil, smError("InvalidParameterException", "VersionStage is required")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, e := m.live(in.SecretId)
	if e != nil {
		return nil, e
	}
	current := s.staged(in.VersionStage)
	if in.RemoveFromVersionId != "" {
		from := s.version(in.RemoveFromVersionId)
		if from == nil {
			return nil, smError("ResourceNotFoundException", "Secrets Manager can't find the specified secret version %s.",
				in.RemoveFromVersionId)
		}
		if from != current {
			return nil, smError("InvalidParameterException",
				"The parameter RemoveFromVersionId can't be %s: staging label %s is not attached to it.",
				in.RemoveFromVersionId, in.VersionStage)
		}
	}
	if in.MoveToVersionId == "" {
		if in.RemoveFromVersionId == "" {
			return nil, smError("InvalidParameterException", "Specify MoveToVersionId, RemoveFromVersionId or both.")
		}
		if in.VersionStage == "AWSCURRENT" {
			return nil, smError("InvalidParameterException",
				"You can't remove the staging label AWSCURRENT: move it to another version instead.")
		}
		current.stages = slices.DeleteFunc(current.stages, func(st string) bool { return st == in.VersionStage })
		s.changed = time.Now().UTC()
		return map[string]any{"ARN": s.arn, "Name": s.name}, nil
	}
	to := s.version(in.MoveToVersionId)
	if to == nil {
		return nil, smError("ResourceNotFoundException", "Secrets Manager can't find the specified secret version %s.",
			in.MoveToVersionId)
	}
	if current != nil && current != to && in.RemoveFromVersionId == "" {
		return nil, smError("InvalidParameterException",
			"The staging label %s is currently attached to version %s: specify it as RemoveFromVersionId to move the label.",
			in.VersionStage, current.id)
	}
	if current != to {
		if current != nil {
			current.stages = slices.DeleteFunc(current.stages, func(st string) bool { return st == in.VersionStage })
		}
		if in.VersionStage == "AWSCURRENT" {
			for _, v := range s.versions {
				v.stages = slices.DeleteFunc(v.stages, func(st string) bool { return st == "AWSPREVIOUS" })
			}
			if current != nil {
				current.stages = append(current.stages, "AWSPREVIOUS")
			}
		}
		to.stages = append(to.stages, in.VersionStage)
	}
	s.changed = time.Now().UTC()
	return map[string]any{"ARN": s.arn, "Name": s.name}, nil
}
