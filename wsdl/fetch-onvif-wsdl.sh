#!/usr/bin/env bash
# Documents (and, on a machine with Internet access, performs) how to obtain the
# ONVIF WSDL/XSD tree the build reads. The build expects the layout of the
# ONVIF specs repository's wsdl/ folder (ver10/, ver20/) plus external/ with the
# OASIS/W3C schemas the ONVIF files import by absolute URL.
# usage: wsdl/fetch-onvif-wsdl.sh DEST_DIR      then: cmake -DONVIF_WSDL_DIR=DEST_DIR ...
set -euo pipefail
dest=${1:?usage: $0 DEST_DIR}
mkdir -p "$dest"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git clone --depth 1 https://github.com/onvif/specs.git "$tmp/specs"
cp -r "$tmp/specs/wsdl/ver10" "$tmp/specs/wsdl/ver20" "$dest/"
mkdir -p "$dest/external"
for url in \
    http://docs.oasis-open.org/wsn/b-2.xsd http://docs.oasis-open.org/wsrf/bf-2.xsd \
    http://docs.oasis-open.org/wsn/t-1.xsd http://docs.oasis-open.org/wsn/bw-2.wsdl \
    http://docs.oasis-open.org/wsrf/rw-2.wsdl http://docs.oasis-open.org/wsrf/r-2.xsd \
    http://www.w3.org/2005/08/addressing/ws-addr.xsd http://www.w3.org/2001/xml.xsd; do
    curl -fsSL -o "$dest/external/$(basename "$url")" "$url"
done
echo "ONVIF WSDLs in $dest"
