#!/bin/bash
# End-to-end test of `jitgate log ...` and `jitgate verify` with the real
# binary: keygen, init, annotate, checkpoint, entry, prove, verify, tamper,
# a second writer refused while a real process holds the store.
# Usage: cli_store_test.sh JITGATE STORE_WRITER
set -uo pipefail
JITGATE="$1"
WRITER="$2"
work="$(mktemp -d /tmp/jitgate-cli-test.XXXXXX)"
cleanup() { [ -n "${wpid:-}" ] && kill -9 "$wpid" 2>/dev/null; chattr -R -i "$work" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fails=0; passes=0
ok() { passes=$((passes+1)); echo "ok: $*"; }
bad() { fails=$((fails+1)); echo "FAIL: $*"; }
expect_rc() { # expect_rc RC DESC CMD...
  local want="$1" desc="$2"; shift 2
  "$@" >"$work/out" 2>"$work/err"; local rc=$?
  if [ "$rc" = "$want" ]; then ok "$desc"; else bad "$desc (rc $rc, want $want): $(cat "$work/err")"; fi
}
expect_grep() { # expect_grep FILE PATTERN DESC
  if grep -q -- "$2" "$1"; then ok "$3"; else bad "$3: '$2' not in: $(cat "$1")"; fi
}
cd "$work"

expect_rc 0 "keygen" "$JITGATE" log keygen --name cli.test/log --out log
[ "$(stat -c %a log.key)" = 600 ] && ok "key mode 0600" || bad "key mode $(stat -c %a log.key)"
expect_grep log.pub '^cli.test/log+[0-9a-f]\{8\}+A' "pub is a C2SP vkey"
expect_grep log.key '^PRIVATE+KEY+cli.test/log+' "key is a C2SP signer key"
expect_rc 1 "keygen refuses to overwrite a key" "$JITGATE" log keygen --name x --out log
expect_grep "$work/err" "refusing to overwrite" "overwrite message"

chmod 644 log.key
expect_rc 1 "init refuses a key readable by others" "$JITGATE" log init --store s --key log.key
expect_grep "$work/err" "chmod 600" "loose key message"
chmod 600 log.key
expect_rc 0 "init" "$JITGATE" log init --store s --key log.key
expect_grep "$work/out" "origin cli.test/log" "init names the origin"
expect_rc 1 "init refuses an existing store" "$JITGATE" log init --store s --key log.key

expect_rc 0 "checkpoint of the empty store" "$JITGATE" log checkpoint --store s
[ "$(sed -n 2p "$work/out")" = 0 ] && ok "empty checkpoint size 0" || bad "empty checkpoint: $(cat "$work/out")"
[ "$(sed -n 3p "$work/out")" = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=" ] && ok "empty root is SHA-256('')" || bad "empty root"

for i in 1 2 3 4 5; do
  expect_rc 0 "annotate $i" "$JITGATE" log annotate --store s --text "note number $i"
done
expect_grep "$work/out" "entry 4" "annotate prints the index"
"$JITGATE" log checkpoint --store s > saved.cp
[ "$(sed -n 2p saved.cp)" = 5 ] && ok "checkpoint covers 5 entries" || bad "checkpoint: $(cat saved.cp)"
grep -q "^— cli.test/log " saved.cp && ok "checkpoint signed with the log key" || bad "signature line"

expect_rc 0 "entry --json" "$JITGATE" log entry --store s --index 2 --json
expect_grep "$work/out" '"type":"annotation"' "entry type"
expect_grep "$work/out" '"text":"note number 3"' "entry body"
expect_grep "$work/out" "\"author\":\"$(id -un)\"" "author is the caller's user name"
expect_rc 0 "entry raw" "$JITGATE" log entry --store s --index 0
[ "$(head -c 1 "$work/out" | od -An -tu1 | tr -d ' ')" = 1 ] && ok "raw entry starts with version 1" || bad "raw entry"
expect_rc 1 "entry out of range" "$JITGATE" log entry --store s --index 99
expect_grep "$work/err" "does not exist" "out of range message"

expect_rc 0 "inclusion proof" "$JITGATE" log prove --store s --index 2
[ "$(wc -l < "$work/out")" = 3 ] && ok "proof of leaf 2 in a tree of 5 has 3 hashes" || bad "proof length $(wc -l < "$work/out")"
expect_rc 0 "consistency proof" "$JITGATE" log prove --store s --from 3 --size 5
expect_rc 2 "prove needs --index or --from" "$JITGATE" log prove --store s

expect_rc 0 "verify" "$JITGATE" verify --store s --key log.pub --checkpoint saved.cp
expect_grep "$work/out" "intact: 5 entries" "verify summary"
expect_rc 0 "verify --json" "$JITGATE" verify --store s --key log.pub --json
expect_grep "$work/out" '"ok":true' "verify json"

# A real process holds the store: a second writer fails at once, clearly.
"$WRITER" s holder 0 > holder.out 2>&1 &
wpid=$!
for _ in $(seq 1 500); do grep -q "^open" holder.out && break; sleep 0.01; done
expect_rc 1 "annotate while another process holds the store" "$JITGATE" log annotate --store s --text x
expect_grep "$work/err" "in use by another process" "lock message"
kill -9 "$wpid"; wait "$wpid" 2>/dev/null; wpid=
expect_rc 0 "annotate after the holder was killed (recovery)" "$JITGATE" log annotate --store s --text "after kill"
"$JITGATE" log checkpoint --store s > saved2.cp
expect_rc 0 "verify after recovery" "$JITGATE" verify --store s --key log.pub --checkpoint saved.cp

# Tamper with one byte of entry 1 and expect verify to name it.
seg=s/seg/0000000001.seg
off=$(grep -abo 'note number 2' "$seg" | head -1 | cut -d: -f1)
chattr -i "$seg" 2>/dev/null  # as root would; sealed segments are immutable
if printf 'X' | dd of="$seg" bs=1 seek="$off" conv=notrunc status=none; then ok "tampered"; else bad "could not tamper"; fi
expect_rc 1 "verify detects a changed byte" "$JITGATE" verify --store s --key log.pub --checkpoint saved2.cp
expect_grep "$work/err" "entry 1 " "verify names entry 1"

# Another key's public key does not verify this store.
"$JITGATE" log keygen --name cli.test/log --out other >/dev/null
expect_rc 1 "verify with another key fails" "$JITGATE" verify --store s --key other.pub
expect_rc 2 "unknown command" "$JITGATE" log frobnicate

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
