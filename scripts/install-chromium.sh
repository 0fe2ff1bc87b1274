#!/usr/bin/env bash
# Headless Chromium and its chromedriver from Debian, for the browser tests of `dtask ui` (tests/Scheduler.Ui.Tests).
# Nothing is downloaded but Debian packages: when the machine has no /usr/lib/chromium/chromium, the chromium,
# chromium-common and chromium-driver packages, and the libraries of theirs a minimal Debian lacks, are extracted into
# .tools/root by scripts/install-deb.sh (nothing installed system-wide; the tests point LD_LIBRARY_PATH at
# .tools/root/usr/lib/x86_64-linux-gnu). Exits non-zero with the reason when the browser cannot start.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tree="$root/.tools/root"

if [[ -x /usr/lib/chromium/chromium && -x /usr/bin/chromedriver ]]; then
  binary=/usr/lib/chromium/chromium
  lib_path="${LD_LIBRARY_PATH:-}"
else
  bash "$root/scripts/install-deb.sh" chromium chromium-common chromium-driver >/dev/null
  binary="$tree/usr/lib/chromium/chromium"
  lib="$tree/usr/lib/x86_64-linux-gnu"
  lib_path="$lib:$lib/pulseaudio${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  # The shared libraries chromium needs that this machine lacks, by Debian package, until none is missing.
  declare -A package_of=(
    [libopenh264.so.7]=libopenh264-7 [libdouble-conversion.so.3]=libdouble-conversion3 [libharfbuzz-subset.so.0]=libharfbuzz-subset0
    [libpulse.so.0]=libpulse0 [libFLAC.so.12]=libflac12 [libopus.so.0]=libopus0 [libXNVCtrl.so.0]=libxnvctrl0
    [libminizip.so.1]=libminizip1 [libopenjp2.so.7]=libopenjp2-7 [libogg.so.0]=libogg0 [libsndfile.so.1]=libsndfile1
    [libasyncns.so.0]=libasyncns0 [libvorbis.so.0]=libvorbis0a [libvorbisenc.so.2]=libvorbisenc2 [libmpg123.so.0]=libmpg123-0
    [libmp3lame.so.0]=libmp3lame0 [libnss3.so]=libnss3 [libnssutil3.so]=libnss3 [libsmime3.so]=libnss3 [libnspr4.so]=libnspr4
    [libplc4.so]=libnspr4 [libplds4.so]=libnspr4 [libatk-1.0.so.0]=libatk1.0-0 [libatk-bridge-2.0.so.0]=libatk-bridge2.0-0
    [libatspi.so.0]=libatspi2.0-0 [libcups.so.2]=libcups2 [libdrm.so.2]=libdrm2 [libgbm.so.1]=libgbm1 [libxkbcommon.so.0]=libxkbcommon0
    [libXcomposite.so.1]=libxcomposite1 [libXdamage.so.1]=libxdamage1 [libXrandr.so.2]=libxrandr2 [libasound.so.2]=libasound2
    [libpango-1.0.so.0]=libpango-1.0-0 [libcairo.so.2]=libcairo2 [libgtk-3.so.0]=libgtk-3-0 [libdbus-1.so.3]=libdbus-1-3
    [libxslt.so.1]=libxslt1.1 [liblcms2.so.2]=liblcms2-2 [libjpeg.so.62]=libjpeg62-turbo [libwebp.so.7]=libwebp7
    [libwebpdemux.so.2]=libwebpdemux2 [libwebpmux.so.3]=libwebpmux3 [libdav1d.so.6]=libdav1d6 [libxml2.so.2]=libxml2
    [libsnappy.so.1]=libsnappy1v5 [libevent-2.1.so.7]=libevent-2.1-7 [libre2.so.9]=libre2-9 [libjsoncpp.so.25]=libjsoncpp25
    [libfontconfig.so.1]=libfontconfig1 [libfreetype.so.6]=libfreetype6 [libharfbuzz.so.0]=libharfbuzz0b [libXss.so.1]=libxss1
  )
  for _ in 1 2 3 4 5; do
    missing="$(for f in "$binary" "$tree"/usr/lib/x86_64-linux-gnu/*.so*; do LD_LIBRARY_PATH="$lib_path" ldd "$f" 2>/dev/null || true; done \
      | awk '/not found/ { print $1 }' | sort -u)"
    [[ -z "$missing" ]] && break
    packages=()
    for so in $missing; do
      [[ -n "${package_of[$so]:-}" ]] || { echo "install-chromium: chromium needs $so, which no known Debian package here provides" >&2; exit 1; }
      packages+=("${package_of[$so]}")
    done
    bash "$root/scripts/install-deb.sh" "${packages[@]}" >/dev/null
  done
fi

if ! LD_LIBRARY_PATH="$lib_path" timeout 60 "$binary" --headless --no-sandbox --disable-gpu --dump-dom 'data:text/html,<p>ok</p>' 2>/dev/null | grep -q '<p>ok</p>'; then
  echo "install-chromium: $binary does not start headless" >&2
  exit 1
fi
echo "install-chromium: $binary" >&2
