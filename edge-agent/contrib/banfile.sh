#!/bin/sh
# Maintain the edge-agent's ban file (BAN_FILE): one `ip[/prefix] [expires-unix]` line
# per ban, replaced atomically (temporary file + rename) under a lock, so the agent
# never reads a half-written list.
#
#   banfile.sh add FILE IP TIME BANTIME   ban IP from TIME (unix s) for BANTIME s (<0: no expiry)
#   banfile.sh del FILE IP                lift the ban
#   banfile.sh flush FILE                 no bans
#
# Used by fail2ban-action-callplane.conf; usable from any other ban source.
set -eu
cmd="${1:?usage: banfile.sh add|del|flush FILE [IP [TIME BANTIME]]}"
file="${2:?ban file}"
ip="${3:-}"
case "$ip" in
  *[!0-9A-Fa-f.:/]*) echo "banfile.sh: refusing address '$ip'" >&2; exit 2 ;;
esac
exec 9>>"$file.lock"
flock -w 10 9
tmp="$(mktemp "$file.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
if [ "$cmd" != flush ] && [ -f "$file" ]; then
  awk -v ip="$ip" '$1 != ip' "$file" > "$tmp"
fi
case "$cmd" in
  add)
    [ -n "$ip" ] || { echo "banfile.sh: add needs IP" >&2; exit 2; }
    t="${4:?ban time}" b="${5:?ban duration}"
    if [ "$b" -lt 0 ]; then echo "$ip" >> "$tmp"; else echo "$ip $((t + b))" >> "$tmp"; fi ;;
  del) [ -n "$ip" ] || { echo "banfile.sh: del needs IP" >&2; exit 2; } ;;
  flush) : ;;
  *) echo "banfile.sh: unknown command $cmd" >&2; exit 2 ;;
esac
chmod 0644 "$tmp"
mv -f "$tmp" "$file"
trap - EXIT
