# Sourced by scripts/build-myrocks.sh and scripts/myrocks-port-check.sh: the one place that knows
# which MariaDB source ringmerge's MyRocks port targets and how to fetch it, so both share one
# download. Expects CACHE and a log function; sets VERSION, UPSTREAM, root and dl.
VERSION=1:10.11.18-0+deb12u1
UPSTREAM=10.11.18
root="$CACHE/mariadb-$UPSTREAM"
dl="$root/download"

# Debian's source packages need a deb-src entry (the machine's sources are binary-only).
mariadb_deb_src() {
  local src_list=/etc/apt/sources.list.d/ringmerge-src.sources
  [ -f "$src_list" ] && return 0
  log "adding a deb-src entry for bookworm main ($src_list)"
  printf '%s\n' "Types: deb-src" "URIs: http://deb.debian.org/debian" "Suites: bookworm" \
    "Components: main" "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" >"$src_list"
  apt-get update -qq
}

# The source package into $dl; call it holding $root.lock.
mariadb_download() {
  [ -f "$dl/mariadb_${UPSTREAM}.orig.tar.gz" ] && return 0
  log "downloading the source package mariadb=$VERSION"
  mkdir -p "$dl"
  (cd "$dl" && apt-get source -qq --download-only "mariadb=$VERSION")
}
