package rotation

// What the README's rotation section must say about this package (kept next to the code it describes):
//
// What a host needs:
//   - SSM Agent 3.3.2746.0 or later: the documents pass every value as an environment variable (interpolationType
//     ENV_VAR); an older agent would run the scripts without their $SSM_<name> variables, and they stop at once
//     (set -u).
//   - bash, GNU coreutils (mv -T, ln -sfn, readlink, base64 -d, mktemp) and find, openssl 1.1.1 or later.
//   - A key directory only root can write: both documents refuse one that group or others can write (the sample's
//     /tmp), since another user could replace the key files there; phase 2 likewise refuses an aws_signing_helper
//     (or its directory) that group or others can write, since root runs it.
//   - aws_signing_helper in the signing helper directory (default /root, the sample's; per host: signinghelperPath).
//     The tests use the credential helper v1.4.0.
//
// Files on a host (defaults: DefaultDir, /etc/pki/iamra, made root-only 0700 when missing; an existing directory
// keeps its mode; per host: certPath, keyPath, cacertPath):
//   - <KeyDir>/<host>-new.key (0400) is made by phase 1 and never leaves the host;
//   - <KeyDir>/<host>.d/gen-<serial>/{cert.pem,key.pem,chain.pem} are the generations, <KeyDir>/<host>.d/current the
//     live one; <CertDir>/<host>.crt, <KeyDir>/<host>.key and <CACertDir>/ca_chain_certificate.crt (the sample's
//     names) are links through current, so a program reading them (aws_signing_helper serve re-reads its files on
//     every signature) never sees a certificate of one generation with the key of another. The previous generation is
//     kept; older ones are removed.
//   - The certificate and chain links point into the key directory (root-only), so only root reads them through the
//     links; aws_signing_helper runs as root in the sample's set-up.
//   - A host of the sample's layout (plain <host>.crt and <host>.key) moves to this layout at its first rotation; its
//     old pair is kept as the generation gen-files.
//
// The inventory: the selection reads the index renewAt-index, so an item needs renewAt (RFC 3339, UTC) and
// renewShard (RenewShard of the host id) to be picked up. rotation-hosts add writes both (due at once); an item
// written by hand with only hostID, as the sample's README did, is never selected.
//
// Renewal: at RENEW_FRACTION of the lifetime (default two thirds), moved by up to ±1/24 of the lifetime derived from
// the serial, so a fleet rotated together spreads out; a host that failed keeps its renewAt and is retried by every
// run until it succeeds.
//
// Failure notices keep the sample's prefixes: "Certificate rotation failed for <host>: <ErrorName>: <reason>",
// "Certificate rotation trigger failed: …", "Failed to import CRL: …".
//
// CRL: CRLProcessor forwards each .crl object of the CRL bucket: ImportCrl once (name CRL_NAME), UpdateCrl on that
// same CRL afterwards. A CRL over 300,000 bytes as PEM (about 225 KB of DER) is refused with a notice.
//
// Testing: the host-script tests run both documents with bash, the machine's openssl and IAM Roles Anywhere's real
// credential helper (github.com/aws/rolesanywhere-credential-helper v1.4.0), which the first test of a run builds
// with `go install` (CGO: it needs gcc and the Go module proxy) into the user's cache directory
// (os.UserCacheDir()/iotcert-test), outside the repository, and reuses afterwards. scripts/setup.sh test installs
// gcc; under CI=true a missing tool fails the tests instead of skipping them.
