package rotation_test

import (
	"encoding/base64"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/iotcert/iotcert/internal/rotation"
	"github.com/iotcert/iotcert/internal/testsvc"
)

// javaMatcher is java.util.regex run on (pattern, value) pairs: for each it prints two digits, Matcher.find() and
// Matcher.matches(), the two ways a service may apply an allowedPattern.
const javaMatcher = `import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.regex.Pattern;

public class Match {
	public static void main(String[] args) {
		Base64.Decoder d = Base64.getDecoder();
		for (int i = 0; i + 1 < args.length; i += 2) {
			Pattern p = Pattern.compile(new String(d.decode(args[i]), StandardCharsets.UTF_8));
			String v = new String(d.decode(args[i + 1]), StandardCharsets.UTF_8);
			System.out.println((p.matcher(v).find() ? "1" : "0") + (p.matcher(v).matches() ? "1" : "0"));
		}
	}
}
`

// javaMatch runs javaMatcher over the pairs and returns "find matches" digits per pair.
func javaMatch(t *testing.T, pairs [][2]string) []string {
	t.Helper()
	if _, err := exec.LookPath("java"); err != nil {
		testsvc.Require(t, "java (java.util.regex)", "apt-get install default-jdk-headless")
	}
	src := filepath.Join(t.TempDir(), "Match.java")
	if err := os.WriteFile(src, []byte(javaMatcher), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{src}
	for _, p := range pairs {
		args = append(args, base64.StdEncoding.EncodeToString([]byte(p[0])), base64.StdEncoding.EncodeToString([]byte(p[1])))
	}
	out, err := exec.Command("java", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("java Match: %v\n%s", err, out)
	}
	lines := strings.Fields(string(out))
	if len(lines) != len(pairs) {
		t.Fatalf("java Match printed %d results for %d pairs: %s", len(lines), len(pairs), out)
	}
	return lines
}

// validParam is a value each document parameter must accept.
var validParam = map[string]string{
	rotation.ParamHostID: "i-0123456789abcdef0", rotation.ParamKeyDir: "/etc/pki/iamra", rotation.ParamCertDir: "/etc/pki/iamra",
	rotation.ParamCACertDir: "/etc/pki/iamra", rotation.ParamSigningHelperDir: "/root", rotation.ParamKeyAlgorithm: "RSA_2048",
	rotation.ParamCertificate: "TUlJQg==", rotation.ParamChain: "TUlJQg==", rotation.ParamSerial: "0A1B",
	rotation.ParamProfileARN:     "arn:aws:rolesanywhere:us-east-1:123456789012:profile/0f0e0d0c-0b0a-0908-0706-050403020100",
	rotation.ParamTrustAnchorARN: "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/0f0e0d0c-0b0a-0908-0706-050403020100",
	rotation.ParamRoleARN:        "arn:aws:iam::123456789012:role/IAMRA-Role",
}

// TestPatternsNoTrailingNewline: no allowedPattern of either document accepts a valid value followed by a line
// terminator, under Go's regexp (Render) nor under java.util.regex, searched (find) or anchored (matches); each still
// accepts the valid value under all three. The same patterns written with $ are shown to fail under find, so the
// Java harness can tell the difference.
func TestPatternsNoTrailingNewline(t *testing.T) {
	params := map[string]string{}
	for _, doc := range []rotation.Document{rotation.CSRDocument(rotation.DocumentDefaults{}), rotation.InstallDocument(rotation.DocumentDefaults{})} {
		for name, p := range doc.Parameters {
			params[name] = p.AllowedPattern
		}
	}
	terminators := []string{"\n", "\r\n", "\r", "\u0085", "\u2028", "\u2029"}
	var pairs [][2]string
	type check struct {
		name, value string
		want        string // "11" accepted by find and matches, "00" refused by both
	}
	var checks []check
	for _, name := range slices.Sorted(maps.Keys(params)) {
		pat, v := params[name], validParam[name]
		if v == "" {
			t.Fatalf("no valid value for parameter %s: add one to validParam", name)
		}
		if !strings.HasSuffix(pat, `\z`) {
			t.Errorf("parameter %s: allowedPattern %s does not end in \\z", name, pat)
		}
		re := regexp.MustCompile(pat)
		if !re.MatchString(v) {
			t.Errorf("Go: parameter %s refuses its valid value %q", name, v)
		}
		pairs = append(pairs, [2]string{pat, v})
		checks = append(checks, check{name, v, "11"})
		for _, term := range terminators {
			if re.MatchString(v + term) {
				t.Errorf("Go: parameter %s accepts %q", name, v+term)
			}
			pairs = append(pairs, [2]string{pat, v + term})
			checks = append(checks, check{name, v + term, "00"})
		}
		// The control: the same pattern ending in $ lets one newline through a find.
		pairs = append(pairs, [2]string{strings.TrimSuffix(pat, `\z`) + "$", v + "\n"})
		checks = append(checks, check{name + " (with $)", v + "\n", "10"})
	}
	got := javaMatch(t, pairs)
	for i, c := range checks {
		if got[i] != c.want {
			t.Errorf("java.util.regex: parameter %s on %q: find/matches = %s, want %s", c.name, c.value, got[i], c.want)
		}
	}
}
