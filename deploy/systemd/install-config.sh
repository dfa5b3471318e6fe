#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# meson install script: installs the example configuration ($1) as the live one ($2, an absolute
# path, under $DESTDIR when set) only if no file is there yet. A reinstall or an upgrade must
# never replace the configuration an operator wrote.
set -eu
src=$1
dest=${DESTDIR:-}$2
if [ -e "$dest" ] || [ -L "$dest" ]; then
	echo "Keeping the existing $dest"
	exit 0
fi
mkdir -p "$(dirname "$dest")"
tmp="$dest.new.$$"
trap 'rm -f "$tmp"' EXIT
cp "$src" "$tmp"
chmod 0644 "$tmp"
mv "$tmp" "$dest"
trap - EXIT
echo "Installing $src to $dest"
