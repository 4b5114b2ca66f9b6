# What the Lanterne packages depend on, in one place: scripts/build-packages.sh writes it into
# the packages' control files, and scripts/build-image.sh configures the image's system from
# it before the box package exists (so that the long part of the image can start first).
# Sourced, not run.

# Shared-library dependencies of both binaries (what they link: glibc, libgcc, GLib,
# GStreamer core and base libraries), as dpkg-shlibdeps computes them for amd64. The arm64
# binaries are built from the same sources against the same Debian release's libraries,
# which the check below confirms by their NEEDED entries.
LIB_DEPENDS="libc6 (>= 2.34), libgcc-s1 (>= 4.2), libglib2.0-0 (>= 2.53.1), libgstreamer1.0-0 (>= 1.20.0), libgstreamer-plugins-base1.0-0 (>= 1.20.0)"
KNOWN_NEEDED="libc.so.6 libm.so.6 libgcc_s.so.1 ld-linux-x86-64.so.2 ld-linux-aarch64.so.1 libglib-2.0.so.0 libgobject-2.0.so.0 libgio-2.0.so.0 libgstreamer-1.0.so.0 libgstbase-1.0.so.0 libgstvideo-1.0.so.0 libgstapp-1.0.so.0"
# The GStreamer elements the pipelines make (appliance/media): videoconvert, videoscale,
# compositor, textoverlay, appsrc/appsink (base); v4l2src, the V4L2 hardware codecs, jpeg,
# videocrop (good); h264parse (bad); x264enc, the software encoder (ugly); avdec_h264, the
# software decoder (libav).
BOX_GST="gstreamer1.0-plugins-base, gstreamer1.0-plugins-good, gstreamer1.0-plugins-bad, gstreamer1.0-plugins-ugly, gstreamer1.0-libav"
# The station also shows the demo stream in a window (ximagesink).
STATION_GST="$BOX_GST, gstreamer1.0-x"
# The box package's Depends line, as build-packages.sh writes it.
BOX_DEPENDS="$LIB_DEPENDS, adduser, $BOX_GST"
