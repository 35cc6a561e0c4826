#!/usr/bin/env bash
# Install the Sensor Commons gateway and its broker on a Raspberry Pi (Raspberry Pi OS,
# Debian 12) as system services. Run from a checkout of the project:
#
#   sudo deploy/install-gateway.sh
#
# Options:
#   --root DIR   install into DIR as if it were / (image building, tests); no services started
#   --no-apt     do not install Debian packages
#   --no-venv    do not create the virtual environment in /opt/sensor-commons
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(cd "$here/.." && pwd)
root=""
apt=1
venv=1
while (($#)); do
  case $1 in
    --root) root=$(realpath -m "$2"); shift 2 ;;
    --no-apt) apt=0; shift ;;
    --no-venv) venv=0; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "install-gateway: unknown option $1" >&2; exit 2 ;;
  esac
done

USER_NAME=commons
PREFIX=/opt/sensor-commons
ETC=/etc/sensor-commons
VAR=/var/lib/sensor-commons
LOG=/var/log/sensor-commons

if [[ -z $root && $(id -u) -ne 0 ]]; then
  echo "install-gateway: run as root (sudo)" >&2
  exit 1
fi

say() { echo "install-gateway: $*"; }

if ((apt)); then
  say "installing Debian packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    mosquitto python3-venv python3-pip
fi

# A dedicated system user; dialout lets it read USB serial sensors.
useradd_args=(--system --home-dir "$VAR" --no-create-home --shell /usr/sbin/nologin)
if [[ -n $root ]]; then prefix_args=(--prefix "$root"); else prefix_args=(); fi
if ! grep -q "^$USER_NAME:" "$root/etc/passwd" 2>/dev/null; then
  say "creating user $USER_NAME"
  useradd "${prefix_args[@]}" "${useradd_args[@]}" --user-group "$USER_NAME"
fi
if grep -q "^dialout:" "$root/etc/group" 2>/dev/null; then
  usermod "${prefix_args[@]}" -a -G dialout "$USER_NAME"
fi
uid=$(awk -F: -v u="$USER_NAME" '$1 == u {print $3}' "$root/etc/passwd")
gid=$(awk -F: -v u="$USER_NAME" '$1 == u {print $4}' "$root/etc/passwd")

install -d -m 0755 "$root$PREFIX" "$root/etc/systemd/system" "$root/etc/logrotate.d"
install -d -m 0750 -o 0 -g "$gid" "$root$ETC" "$root$ETC/secrets"
install -d -m 0750 -o "$uid" -g "$gid" "$root$VAR" "$root$LOG"

if ((venv)); then
  say "creating $PREFIX and installing the project"
  python3 -m venv "$root$PREFIX"
  "$root$PREFIX/bin/pip" install -q --upgrade pip
  "$root$PREFIX/bin/pip" install -q "$source_dir"
fi
install -d -m 0755 "$root$PREFIX/share/docs"
install -m 0644 "$source_dir/docs/install-raspberry-pi.md" "$root$PREFIX/share/docs/"

# Configuration: written once, never overwritten (a volunteer may have edited it).
for name in gateway.toml broker.toml; do
  if [[ ! -e $root$ETC/$name ]]; then
    install -m 0640 -o 0 -g "$gid" "$here/$name" "$root$ETC/$name"
    say "wrote $ETC/$name"
  else
    say "kept $ETC/$name"
  fi
done

install -m 0644 "$here/systemd/sensor-commons-broker.service" "$root/etc/systemd/system/"
install -m 0644 "$here/systemd/sensor-commons-gateway.service" "$root/etc/systemd/system/"
install -m 0644 "$here/logrotate/sensor-commons" "$root/etc/logrotate.d/sensor-commons"

if [[ -n $root ]]; then
  say "installed into $root (no services started)"
  exit 0
fi

if [[ -d /run/systemd/system ]]; then
  # Debian's own broker would hold port 1883.
  systemctl disable --now mosquitto.service >/dev/null 2>&1 || true
  systemctl daemon-reload
  systemctl enable sensor-commons-broker.service sensor-commons-gateway.service
  systemctl restart sensor-commons-broker.service sensor-commons-gateway.service
  say "services started; see 'systemctl status sensor-commons-gateway'"
else
  say "no systemd here: start the services by hand"
fi
