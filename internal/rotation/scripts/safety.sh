# Path safety, the same in both phases. Root runs these scripts, so a path another local user can change would let
# them aim root's writes at a file of their choice (a planted link) or have root run their program. Every directory
# written and the aws_signing_helper run must be owned by root (or the user the document runs as), with no group or
# other write permission and no sticky bit (so /tmp and its like are refused), and so must every directory above
# them up to /, both along the path as written and along the path its links resolve to.
me="$(id -u)"
refuse() {
	echo "refusing $1" >&2
	exit 2
}
safe_chain() { # safe_chain <what> <existing path>
	local what="$1" p="$2" chain=() lines line st uid mode type i
	while :; do
		chain+=("$p")
		if [ "$p" = / ]; then
			break
		fi
		p="${p%/*}"
		p="${p:-/}"
	done
	# One stat for the whole chain, one line per path in order (a process per directory would make the check the
	# bulk of the script's run).
	if ! lines="$(stat -c '%u %a %F' -- "${chain[@]}" 2>/dev/null)"; then
		for p in "${chain[@]}"; do
			stat -c %u -- "$p" >/dev/null 2>&1 || refuse "$what: cannot inspect $p"
		done
		refuse "$what: cannot inspect $2"
	fi
	for i in "${!chain[@]}"; do
		p="${chain[i]}"
		line="${lines%%$'\n'*}"
		lines="${lines#"$line"}"
		lines="${lines#$'\n'}"
		if [ -z "$line" ]; then
			refuse "$what: cannot inspect $p"
		fi
		uid="${line%% *}"
		st="${line#* }"
		mode="${st%% *}"
		type="${st#* }"
		if [ "$uid" != 0 ] && [ "$uid" != "$me" ]; then
			refuse "$what: $p is owned by uid $uid, not by root"
		fi
		if [ "$type" != "symbolic link" ] && ((8#$mode & 8#1022)); then
			refuse "$what: $p is writable by other users or sticky (mode $mode)"
		fi
	done
}
safe_path() { # safe_path <what> <existing path>: the path as written and as resolved
	local real
	safe_chain "$1" "$2"
	real="$(realpath -e -- "$2")" || refuse "$1: cannot resolve $2"
	if [ "$real" != "$2" ]; then
		safe_chain "$1" "$real"
	fi
}
safe_dir() { # safe_dir <what> <dir>: a missing directory is made root-only (0700) below a safe existing one
	local up="$2"
	while [ ! -e "$up" ] && [ ! -L "$up" ]; do
		up="${up%/*}"
		up="${up:-/}"
	done
	safe_path "$1" "$up"
	if [ ! -e "$2" ] && [ ! -L "$2" ]; then
		mkdir -p -m 0700 -- "$2"
	fi
	if [ ! -d "$2" ]; then
		refuse "$1: $2 is not a directory"
	fi
	safe_path "$1" "$2"
}
put() { # put <from> <to>: copy through a new file and one rename, so a link planted at <to> is replaced, never followed
	local tmp
	tmp="$(mktemp "$2.XXXXXX")"
	cat -- "$1" >"$tmp"
	mv -Tf -- "$tmp" "$2"
}
