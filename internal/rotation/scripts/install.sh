#!/bin/bash
# Certificate rotation, phase 2: install the new certificate on this host, but only once it has been proved to work.
#
# Layout (the live names are the sample's):
#   <KeyDir>/<host>.d/gen-<serial>/{cert.pem,key.pem,chain.pem}   one directory per certificate generation
#   <KeyDir>/<host>.d/current -> gen-<serial>                      the live generation
#   <CertDir>/<host>.crt, <KeyDir>/<host>.key, <CACertDir>/ca_chain_certificate.crt   links through current
# The new pair goes live by one rename of the current link, so a reader never sees a certificate of one generation
# with the key of another, and a stop at any point leaves one consistent live pair. The previous generation is kept.
# Values arrive only as environment variables set by SSM Agent from the document's checked parameters.
set -eu
set -o pipefail
umask 077
# @path-safety@ (scripts/safety.sh is inserted here)

host="$SSM_HostId"
certdir="$SSM_CertDir"
keydir="$SSM_KeyDir"
cadir="$SSM_CACertDir"
helperdir="$SSM_SigningHelperDir"
serial="$SSM_Serial"
profile="$SSM_ProfileArn"
role="$SSM_RoleArn"
anchor="$SSM_TrustAnchorArn"

# The same rules as the document's allowedPattern, checked again here.
if ! [[ "$host" =~ ^(i-([A-Za-z0-9_]{8}|[A-Za-z0-9_]{17})|mi-[A-Za-z0-9_]{17})$ ]]; then
	echo "refusing host id: not an SSM managed node id" >&2
	exit 2
fi
for dir in "$certdir" "$keydir" "$cadir" "$helperdir"; do
	if ! [[ "$dir" =~ ^(/[A-Za-z0-9_-][A-Za-z0-9._-]*)+$ ]]; then
		echo "refusing directory: not an absolute path of safe segments" >&2
		exit 2
	fi
done
if ! [[ "$serial" =~ ^[0-9A-F]{1,40}$ ]]; then
	echo "refusing serial: not upper-case hex" >&2
	exit 2
fi

helper="$helperdir/aws_signing_helper"
if [ ! -x "$helper" ]; then
	echo "$helper not found" >&2
	exit 1
fi
# Root runs the helper: one that another user owns or can replace, or whose directory (or any above it) they can
# write, would run their code as root.
safe_path "aws_signing_helper" "$helper"
if [ ! -f "$(realpath -e -- "$helper")" ]; then
	refuse "aws_signing_helper: $helper is not a file"
fi
if ! command -v openssl >/dev/null 2>&1; then
	echo "openssl not found" >&2
	exit 1
fi
# Every directory written must be safe from other users (the sample's /tmp is not): a user who could write the key,
# certificate or CA directory could plant <host>-new.crt or a link name as a link to a file of root's.
if [ -e "$keydir" ] || [ -L "$keydir" ]; then
	safe_path "key directory" "$keydir"
fi
newkey="$keydir/$host-new.key"
store="$keydir/$host.d"
gen="gen-$serial"

link() { # link <path> <target>: point path at target by one rename
	if [ "$(readlink "$1" 2>/dev/null || true)" != "$2" ]; then
		ln -sfn "$2" "$1.tmp"
		mv -Tf "$1.tmp" "$1"
	fi
}
links() { # the sample's names, through current
	link "$certdir/$host.crt" "$store/current/cert.pem"
	link "$keydir/$host.key" "$store/current/key.pem"
	link "$cadir/ca_chain_certificate.crt" "$store/current/chain.pem"
}

# Sent again after it went live (a retried step, or a run stopped after the rename): finish what is left.
if [ "$(readlink "$store/current" 2>/dev/null || true)" = "$gen" ]; then
	safe_dir "certificate directory" "$certdir"
	safe_dir "CA certificate directory" "$cadir"
	safe_dir "certificate store" "$store"
	links
	rm -f "$newkey" "$certdir/$host-new.crt"
	echo "certificate $serial is already live for $host"
	exit 0
fi
if [ ! -f "$newkey" ]; then
	echo "$newkey not found: the key is made by the CSR step" >&2
	exit 1
fi
if [ -L "$newkey" ]; then
	refuse "key: $newkey is a symbolic link"
fi
safe_dir "certificate directory" "$certdir"
safe_dir "CA certificate directory" "$cadir"
safe_dir "certificate store" "$store"

stage="$store/.stage-$serial"
rm -rf "$stage"
mkdir -m 0700 "$stage"
trap 'rm -rf "$stage"' EXIT
printf '%s' "$SSM_Certificate" | base64 -d >"$stage/cert.pem"
printf '%s' "$SSM_Chain" | base64 -d >"$stage/chain.pem"
cp "$newkey" "$stage/key.pem"
chmod 0400 "$stage/key.pem"
put "$stage/cert.pem" "$certdir/$host-new.crt"

certpub="$(openssl x509 -in "$stage/cert.pem" -noout -pubkey)"
keypub="$(openssl pkey -in "$stage/key.pem" -pubout)"
if [ "$certpub" != "$keypub" ]; then
	echo "certificate $serial does not match the key $newkey" >&2
	exit 1
fi

if ! creds="$("$helper" credential-process \
	--certificate "$stage/cert.pem" --intermediates "$stage/chain.pem" --private-key "$stage/key.pem" \
	--profile-arn "$profile" --role-arn "$role" --trust-anchor-arn "$anchor" 2>"$stage/helper.err")"; then
	echo "aws_signing_helper credential-process failed with certificate $serial: $(head -c 2000 "$stage/helper.err")" >&2
	exit 1
fi
case "$creds" in
*'"SessionToken"'*) ;;
*)
	echo "aws_signing_helper credential-process returned no credentials for certificate $serial" >&2
	exit 1
	;;
esac
rm -f "$stage/helper.err"

# The pair works: move it into place.
rm -rf "${store:?}/$gen"
mv "$stage" "$store/$gen"
trap - EXIT

# A host still on plain files (the sample's layout) first gets them as a generation of their own, so that turning the
# files into links never shows a mixed pair.
if [ ! -L "$store/current" ] && [ -f "$certdir/$host.crt" ] && [ ! -L "$certdir/$host.crt" ] &&
	[ -f "$keydir/$host.key" ] && [ ! -L "$keydir/$host.key" ]; then
	rm -rf "$store/gen-files" "$store/.stage-files"
	mkdir -m 0700 "$store/.stage-files"
	cp "$certdir/$host.crt" "$store/.stage-files/cert.pem"
	cp "$keydir/$host.key" "$store/.stage-files/key.pem"
	if [ -f "$cadir/ca_chain_certificate.crt" ]; then
		cp "$cadir/ca_chain_certificate.crt" "$store/.stage-files/chain.pem"
	else
		cp "$store/$gen/chain.pem" "$store/.stage-files/chain.pem"
	fi
	mv "$store/.stage-files" "$store/gen-files"
	ln -sfn gen-files "$store/.current.tmp"
	mv -Tf "$store/.current.tmp" "$store/current"
fi

prev="$(readlink "$store/current" 2>/dev/null || true)"
# The links go in before the rename, also on a first install (where they wait for current): a stop right after the
# rename leaves the configured paths holding the new pair.
links

# The one rename that makes the new pair live.
ln -sfn "$gen" "$store/.current.tmp"
mv -Tf "$store/.current.tmp" "$store/current"

links

rm -f "$newkey" "$certdir/$host-new.crt"
for dir in "$store"/gen-*; do
	case "${dir##*/}" in
	"$gen" | "$prev") ;;
	*) rm -rf "$dir" ;;
	esac
done
echo "certificate $serial is live for $host"
