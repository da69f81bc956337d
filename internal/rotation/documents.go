package rotation

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// Document is an SSM Command document (schemaVersion 2.2) as a Go value: the stack defines it as an
// AWS::SSM::Document of type Command from Content, and the tests render and run exactly this value.
type Document struct {
	SchemaVersion string               `json:"schemaVersion"`
	Description   string               `json:"description"`
	Parameters    map[string]Parameter `json:"parameters"`
	MainSteps     []Step               `json:"mainSteps"`
}

// Parameter is one document parameter. Every parameter has an AllowedPattern and reaches the script only as the
// environment variable SSM_<name> (InterpolationType ENV_VAR, SSM Agent 3.3.2746.0 or later).
type Parameter struct {
	Type              string `json:"type"`
	Description       string `json:"description"`
	AllowedPattern    string `json:"allowedPattern"`
	InterpolationType string `json:"interpolationType"`
	Default           string `json:"default,omitempty"`
}

// Step is one aws:runShellScript step.
type Step struct {
	Action string `json:"action"`
	Name   string `json:"name"`
	// Precondition limits the step to Linux hosts: a Windows node skips it instead of failing in PowerShell.
	Precondition map[string][]string `json:"precondition,omitempty"`
	Inputs       StepInput           `json:"inputs"`
}

// StepInput holds the script, one line per element as SSM Agent expects, and the step's timeout.
type StepInput struct {
	RunCommand     []string `json:"runCommand"`
	TimeoutSeconds int      `json:"timeoutSeconds"`
}

// Content is the document as the map AWS::SSM::Document's Content takes.
func (d Document) Content() map[string]any {
	b, err := json.Marshal(d)
	if err != nil {
		panic("rotation: marshal document: " + err.Error()) // a Document always marshals
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

// Script is the shell text of every step, as SSM Agent writes it to the host.
func (d Document) Script() string {
	var b strings.Builder
	for _, s := range d.MainSteps {
		b.WriteString(strings.Join(s.Inputs.RunCommand, "\n"))
		b.WriteString("\n")
	}
	return b.String()
}

var (
	//go:embed scripts/csr.sh
	csrScript string
	//go:embed scripts/install.sh
	installScript string
	//go:embed scripts/safety.sh
	safetyScript string
)

// safetyMarker is the line of each script that the path-safety functions (scripts/safety.sh) replace.
const safetyMarker = "# @path-safety@ (scripts/safety.sh is inserted here)\n"

// withSafety returns a script with the path-safety functions in place of its marker line.
func withSafety(script string) string {
	if !strings.Contains(script, safetyMarker) {
		panic("rotation: a host script lacks the path-safety marker") // the embedded scripts all have it
	}
	return strings.Replace(script, safetyMarker, safetyScript, 1)
}

// DefaultDir is the default directory of keys, certificates and the CA chain on a host: root-only (made 0700 when
// missing), unlike the sample's /tmp, which every local user can read and where files vanish on reboot.
const DefaultDir = "/etc/pki/iamra"

// DefaultSigningHelperDir is the sample's default directory of aws_signing_helper.
const DefaultSigningHelperDir = "/root"

// DocumentDefaults are the per-deployment defaults of the documents' directory parameters; the functions always pass
// every parameter, so the defaults matter only to an operator running a document by hand.
type DocumentDefaults struct {
	CertDir, KeyDir, CACertDir, SigningHelperDir string
	// KeyAlgorithm of the host key: RSA_2048 (the sample's) or EC_prime256v1.
	KeyAlgorithm string
}

func (d DocumentDefaults) withDefaults() DocumentDefaults {
	if d.CertDir == "" {
		d.CertDir = DefaultDir
	}
	if d.KeyDir == "" {
		d.KeyDir = DefaultDir
	}
	if d.CACertDir == "" {
		d.CACertDir = DefaultDir
	}
	if d.SigningHelperDir == "" {
		d.SigningHelperDir = DefaultSigningHelperDir
	}
	if d.KeyAlgorithm == "" {
		d.KeyAlgorithm = "RSA_2048"
	}
	return d
}

// Validate checks the defaults against the parameters' patterns, naming the bad value.
func (d DocumentDefaults) Validate() error {
	d = d.withDefaults()
	for _, c := range []struct{ name, v string }{
		{"certificate directory", d.CertDir}, {"key directory", d.KeyDir}, {"CA certificate directory", d.CACertDir},
		{"signing helper directory", d.SigningHelperDir},
	} {
		if err := CheckPath(c.name, c.v); err != nil {
			return err
		}
	}
	if !regexp.MustCompile(KeyAlgorithmPattern).MatchString(d.KeyAlgorithm) {
		return fmt.Errorf("key algorithm %q is not RSA_2048 or EC_prime256v1", d.KeyAlgorithm)
	}
	return nil
}

// Document parameter names; a script reads parameter X as $SSM_X.
const (
	ParamHostID           = "HostId"
	ParamKeyDir           = "KeyDir"
	ParamKeyAlgorithm     = "KeyAlgorithm"
	ParamCertDir          = "CertDir"
	ParamCACertDir        = "CACertDir"
	ParamSigningHelperDir = "SigningHelperDir"
	ParamCertificate      = "Certificate"
	ParamChain            = "Chain"
	ParamSerial           = "Serial"
	ParamProfileARN       = "ProfileArn"
	ParamRoleARN          = "RoleArn"
	ParamTrustAnchorARN   = "TrustAnchorArn"
)

// CommandTimeoutSeconds bounds each document's step on the host.
const CommandTimeoutSeconds = 300

func param(desc, pattern, def string) Parameter {
	return Parameter{Type: "String", Description: desc, AllowedPattern: pattern, InterpolationType: "ENV_VAR", Default: def}
}

func step(name, script string) Step {
	return Step{
		Action:       "aws:runShellScript",
		Name:         name,
		Precondition: map[string][]string{"StringEquals": {"platformType", "Linux"}},
		Inputs:       StepInput{RunCommand: strings.Split(strings.TrimRight(script, "\n"), "\n"), TimeoutSeconds: CommandTimeoutSeconds},
	}
}

// CSRDocument is phase 1: make the key <KeyDir>/<host>-new.key (mode 0400) and print a CSR with CN = the host id.
func CSRDocument(d DocumentDefaults) Document {
	d = d.withDefaults()
	return Document{
		SchemaVersion: "2.2",
		Description:   "Certificate rotation, phase 1: make a new private key (it never leaves the host) and print its CSR.",
		Parameters: map[string]Parameter{
			ParamHostID:       param("The managed node id; the CSR's subject CN.", HostIDPattern, ""),
			ParamKeyDir:       param("Directory of the private key.", PathPattern, d.KeyDir),
			ParamKeyAlgorithm: param("Key type: RSA_2048 or EC_prime256v1.", KeyAlgorithmPattern, d.KeyAlgorithm),
		},
		MainSteps: []Step{step("makeKeyAndCSR", withSafety(csrScript))},
	}
}

// InstallDocument is phase 2: write the new certificate and chain, test them with aws_signing_helper
// credential-process against IAM Roles Anywhere, and only then make them live by one rename.
func InstallDocument(d DocumentDefaults) Document {
	d = d.withDefaults()
	return Document{
		SchemaVersion: "2.2",
		Description: "Certificate rotation, phase 2: test the new certificate with aws_signing_helper and make it live " +
			"by one rename; on failure the old pair stays live.",
		Parameters: map[string]Parameter{
			ParamHostID:           param("The managed node id.", HostIDPattern, ""),
			ParamCertDir:          param("Directory of <host>.crt.", PathPattern, d.CertDir),
			ParamKeyDir:           param("Directory of <host>.key and the certificate generations.", PathPattern, d.KeyDir),
			ParamCACertDir:        param("Directory of ca_chain_certificate.crt.", PathPattern, d.CACertDir),
			ParamSigningHelperDir: param("Directory holding aws_signing_helper.", PathPattern, d.SigningHelperDir),
			ParamCertificate:      param("The new certificate: PEM as one line of base64.", PEMBase64Pattern, ""),
			ParamChain:            param("The CA chain: PEM as one line of base64.", PEMBase64Pattern, ""),
			ParamSerial:           param("The new certificate's serial number in upper-case hex.", SerialPattern, ""),
			ParamProfileARN:       param("IAM Roles Anywhere profile to test against.", ProfileARNPattern, ""),
			ParamRoleARN:          param("IAM role to test against.", RoleARNPattern, ""),
			ParamTrustAnchorARN:   param("IAM Roles Anywhere trust anchor to test against.", TrustAnchorARNPattern, ""),
		},
		MainSteps: []Step{step("testAndInstall", withSafety(installScript))},
	}
}

// Render is what SSM Agent does with a document and the parameters of a SendCommand: every parameter is checked
// against its allowedPattern (a missing one takes its default; an unknown one, or a missing one without default, is
// refused), and the script receives them as SSM_<name> environment variables. The script itself is never edited.
func Render(doc Document, params map[string]string) (script string, env []string, err error) {
	for name := range params {
		if _, ok := doc.Parameters[name]; !ok {
			return "", nil, fmt.Errorf("parameter %q is not defined by the document", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(doc.Parameters)) {
		p := doc.Parameters[name]
		v, ok := params[name]
		if !ok {
			if p.Default == "" {
				return "", nil, fmt.Errorf("parameter %q is required", name)
			}
			v = p.Default
		}
		if p.AllowedPattern == "" {
			return "", nil, fmt.Errorf("parameter %q has no allowedPattern", name)
		}
		re, err := regexp.Compile(p.AllowedPattern)
		if err != nil {
			return "", nil, fmt.Errorf("parameter %q: allowedPattern: %w", name, err)
		}
		if !re.MatchString(v) {
			return "", nil, fmt.Errorf("parameter %q value %q does not match the allowed pattern %s", name, v, p.AllowedPattern)
		}
		if p.InterpolationType != "ENV_VAR" {
			return "", nil, fmt.Errorf("parameter %q is not interpolated as ENV_VAR", name)
		}
		env = append(env, "SSM_"+name+"="+v)
	}
	return doc.Script(), env, nil
}
