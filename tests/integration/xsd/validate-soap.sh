#!/usr/bin/env bash
# validate-soap.sh [--schema-cache DIR] RESPONSE.xml
#
# Checks one SOAP 1.2 response of the daemon:
#   - well-formed, root {soap-envelope}Envelope with [Header] Body, nothing else;
#   - a Fault is checked by hand (Code/Value, Subcode chain, Reason/Text);
#   - any other Body child is validated with xmllint against the official
#     ONVIF schemas (embedded WSDL schemas extracted into a cache directory).
# Exit: 0 valid, 1 invalid, 2 usage or setup error.  See README.md here.
# Needs only bash, coreutils and xmllint (libxml2); never touches the network.
set -Eeuo pipefail

PROG=${0##*/}
# Any unexpected failure is a setup error (2), never "invalid" (1).
trap 'printf "%s: internal error (line %s)\n" "$PROG" "$LINENO" >&2; exit 2' ERR
SOAP_NS=http://www.w3.org/2003/05/soap-envelope
TER_NS=http://www.onvif.org/ver10/error
XS_NS=http://www.w3.org/2001/XMLSchema
# Bump when the layout of the generated cache changes.
CACHE_FORMAT=1

# The service WSDLs whose embedded schemas go into the wrapper (paths relative
# to the WSDL root).  Add a line to support another service.
SERVICE_WSDLS=(
    ver10/device/wsdl/devicemgmt.wsdl
    ver10/media/wsdl/media.wsdl
    ver20/media/wsdl/media.wsdl
    ver10/advancedsecurity/wsdl/advancedsecurity.wsdl
    ver10/events/wsdl/event.wsdl
    ver20/imaging/wsdl/imaging.wsdl
)
# Absolute URLs used by the ONVIF/OASIS files -> file under external/.
EXTERNAL_MAP=(
    "docs.oasis-open.org/wsn/b-2.xsd b-2.xsd"
    "docs.oasis-open.org/wsrf/bf-2.xsd bf-2.xsd"
    "docs.oasis-open.org/wsn/t-1.xsd t-1.xsd"
    "docs.oasis-open.org/wsn/bw-2.wsdl bw-2.wsdl"
    "docs.oasis-open.org/wsrf/rw-2.wsdl rw-2.wsdl"
    "docs.oasis-open.org/wsrf/r-2.xsd r-2.xsd"
    "www.w3.org/2005/08/addressing/ws-addr.xsd ws-addr.xsd"
    "www.w3.org/2001/xml.xsd xml.xsd"
)
# Schemas onvif.xsd imports that are not in the shared tree: replaced by
# small stand-ins this script writes (see write_stubs).
STUB_MAP=(
    "www.w3.org/2005/05/xmlmime xmlmime.xsd"
    "www.w3.org/2004/08/xop/include xop-include.xsd"
    "www.w3.org/2003/05/soap-envelope soap-envelope.xsd"
)
# Namespaces the wrapper imports besides the service schemas, by their
# canonical location (resolved through the catalog).
EXTRA_IMPORTS=(
    "http://docs.oasis-open.org/wsn/b-2 http://docs.oasis-open.org/wsn/b-2.xsd"
    "http://docs.oasis-open.org/wsn/t-1 http://docs.oasis-open.org/wsn/t-1.xsd"
    "http://www.w3.org/2005/08/addressing http://www.w3.org/2005/08/addressing/ws-addr.xsd"
    "http://docs.oasis-open.org/wsrf/bf-2 http://docs.oasis-open.org/wsrf/bf-2.xsd"
    "http://docs.oasis-open.org/wsrf/r-2 http://docs.oasis-open.org/wsrf/r-2.xsd"
)
# Schema files of the tree the cache holds a (localized, patched) copy of.
COPIED_SCHEMAS=(ver10/schema/onvif.xsd)
# Work-arounds for content models libxml2 rejects as not deterministic (Unique
# Particle Attribution, XSD 1.0 3.8.6): "FILE COMPLEXTYPE" turns that type's
# xs:any namespace="##targetNamespace" into namespace="##other".
SCHEMA_PATCHES=(
    "ver10/schema/onvif.xsd VideoSourceConfigurationOptionsExtension2"
)
SOAP_CODES=" Sender Receiver VersionMismatch MustUnderstand DataEncodingUnknown "
# Subcodes the ONVIF specifications define (in ter:); used to recognise an
# ONVIF subcode put in a wrong namespace.
ONVIF_SUBCODES=" AccesslogUnavailable Action ActionNotSupported AnonymousNotAllowed Argument
 AudioClipDeleteError AudioDecodingNotSupported AudioNotSupported AudioOutputNotSupported
 AuxiliaryDataNotSupported BadCRL BadCertificate BadPKCS12File BadPassphrase CRLID
 CertPathValidationParameters CertPathValidationPolicyID CertificateCreationFailed
 CertificateDeletionFailed CertificateID CertificationPathCreationFailed
 CertificationPathDeletionFailed CertificationPathID CnMapsToUserFailed ConfigModify
 ConfigurationConflict CriticalError DataLengthOver DecryptionFailed DeletionOfFixedProfile
 DelimiterNotSupported Dot1XConfigurationID Dot1XMethod Dot1XMethodCombination Duplicate
 EmptyList EmptyPolicy EmptyScope EnablingClientAuthenticationFailed EnablingTlsFailed Fixed
 FixedScope FixedUser FunctionNotImplemented IPFilterListIsFull IncompatibleConfiguration
 IncompatibleDot1X IncompleteConfiguration InvalidAddress InvalidArgVal InvalidArgs
 InvalidAttribute InvalidBackupFile InvalidCertificationPath InvalidConfig InvalidDHCPv6
 InvalidDateTime InvalidDnsName InvalidDot11 InvalidFilter InvalidGatewayAddress
 InvalidHostname InvalidIPv4Address InvalidIPv6Address InvalidInterfaceSpeed
 InvalidInterfaceType InvalidKeyStatus InvalidKeyType InvalidLanguage InvalidMtuValue
 InvalidMulticastSettings InvalidNetworkInterface InvalidPolygon InvalidProtocol
 InvalidSecurityMode InvalidSerialPort InvalidStationMode InvalidStreamSetup InvalidSubject
 InvalidTimeZone InvalidUserRole KeyDeletionFailed KeyID KeyLength
 KeySignatureAlgorithmMismatch MaxAudioClipLimit MaxAuthorizationServers MaxIssuersExceeded
 MaxMasks MaxNVTProfiles MaxOSDs MaxStorageConfigurations MaxWebRTCConfiguration
 MaximumNumberOfCRLsReached MaximumNumberOfCertPathValidationPoliciesReached
 MaximumNumberOfCertificatesReached MaximumNumberOfCertificationPathsReached
 MaximumNumberOfDot1XConfigurationsReached MaximumNumberOfKeysReached
 MaximumNumberOfPassphrasesReached MaximumNumberOfTLSCertPathValidationPoliciesReached
 MaximumNumberOfTLSCertificationPathsReached MissingAttr MissingDot11 MissingDot1X MissingPSK
 ModeError Namespace NewCertPathValidationPolicyID NewCertificationPathID NoAudioClip
 NoAudioOutput NoAuthorizationServer NoAutoGeo NoConfig NoIPv4Address NoIPv6Address
 NoImagingForSource NoMatchingPrivateKey NoPrivateKey NoProfile NoScope NoSuchService
 NoVideoOutput NoVideoSource NoVideoSourceMode NotAuthorized NotConnectedDot11 NotDot11
 NotRemoteUser NotScanAvailable NtpServerUndefined OldCertPathValidationPolicyID
 OldCertificationPathID OnvifPrefix OperationProhibited OutofMemory PTZNotSupported
 PassphraseDeletionFailed PassphraseID Password PasswordTooLong PasswordTooWeak
 PlayAudioClipError PolicyFormat PortAlreadyInUse ProfileExists ProhibAttr
 PublicPrivateKeyMismatch ReferenceExists RelayToken ServiceNotSupported SettingsInvalid
 StreamConflict SupportInformation SystemlogUnavailable TLSVersion Tag TagMismatch
 TimeSyncedToNtp TooManyAudiences TooManyEntries TooManyEventBrokers TooManyScopes
 TooManyUserRoles TooManyUsers UnknownAction UnsupportedEllipticCurve
 UnsupportedPublicKeyAlgorithm UnsupportedSignatureAlgorithm UnsupportedX509Version
 UsernameClash UsernameMissing UsernameTooLong UsernameTooShort VideoAnalyticsNotSupported
 WellFormed X509VersionExtensionsMismatch "

usage() {
    printf 'usage: %s [--schema-cache DIR] RESPONSE.xml\n' "$PROG" >&2
    exit 2
}
setup_error() { printf '%s: setup error: %s\n' "$PROG" "$*" >&2; exit 2; }

# ---------------------------------------------------------------- arguments
CACHE_ROOT=""
RESPONSE=""
while [ $# -gt 0 ]; do
    case $1 in
        --schema-cache) [ $# -ge 2 ] || usage; CACHE_ROOT=$2; shift 2 ;;
        --schema-cache=*) CACHE_ROOT=${1#*=}; shift ;;
        -h|--help) usage ;;
        --) shift; break ;;
        -*) printf '%s: unknown option %s\n' "$PROG" "$1" >&2; usage ;;
        *) [ -z "$RESPONSE" ] || usage; RESPONSE=$1; shift ;;
    esac
done
if [ $# -gt 0 ]; then
    if [ -n "$RESPONSE" ] || [ $# -ne 1 ]; then usage; fi
    RESPONSE=$1
fi
[ -n "$RESPONSE" ] || usage
if [ ! -f "$RESPONSE" ] || [ ! -r "$RESPONSE" ]; then setup_error "cannot read $RESPONSE"; fi
command -v xmllint >/dev/null 2>&1 || setup_error "xmllint not found (install libxml2-utils)"
for tool in sha256sum realpath find awk sed; do
    command -v "$tool" >/dev/null 2>&1 || setup_error "$tool not found"
done

# The script lives in <repo>/tests/integration/xsd; the ONVIF tree is by
# default in the repository's sibling directory <repo>/../shared/onvif/wsdl.
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/../../.." && pwd)
DEFAULT_WSDL_DIR="$REPO_DIR/../shared/onvif/wsdl"
WSDL_DIR=${ONVIF_WSDL_DIR:-$DEFAULT_WSDL_DIR}
[ -d "$WSDL_DIR" ] || setup_error "ONVIF WSDL directory not found: $WSDL_DIR (set ONVIF_WSDL_DIR)"
WSDL_DIR=$(cd "$WSDL_DIR" && pwd -P)
for f in "${SERVICE_WSDLS[@]}" ver10/schema/onvif.xsd ver10/schema/common.xsd; do
    [ -f "$WSDL_DIR/$f" ] || setup_error "missing $WSDL_DIR/$f (is ONVIF_WSDL_DIR the ver10/ver20/external tree?)"
done
for m in "${EXTERNAL_MAP[@]}"; do
    [ -f "$WSDL_DIR/external/${m#* }" ] || setup_error "missing $WSDL_DIR/external/${m#* }"
done
CACHE_ROOT=${CACHE_ROOT:-${TMPDIR:-/tmp}/opennvt-onvif-xsd-cache}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/validate-soap.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# ---------------------------------------------------------------- helpers
# xp FILE EXPR: evaluates an XPath expression; empty output for an empty node-set.
xp() { xmllint --nonet --xpath "$2" "$1" 2>/dev/null || true; }

# file_uri ABSPATH: file:// URI with everything but unreserved chars and / escaped.
file_uri() {
    local LC_ALL=C p=$1 out="" c i
    for ((i = 0; i < ${#p}; i++)); do
        c=${p:i:1}
        case $c in
            [A-Za-z0-9/._~-]) out+=$c ;;
            *) printf -v c '%%%02X' "'$c"; out+=$c ;;
        esac
    done
    printf 'file://%s' "$out"
}

xml_escape() {
    local s=$1
    s=${s//&/&amp;}; s=${s//</&lt;}; s=${s//>/&gt;}; s=${s//\"/&quot;}
    printf '%s' "$s"
}

# extract_with_ns FILE XPATH: prints the single element XPATH selects, its start
# tag completed with every namespace declaration in scope at its parent that it
# does not make itself, so the result is a stand-alone document.
extract_with_ns() {
    local file=$1 path=$2 el decls stag name rest own=" " line prefix add=""
    el=$(xmllint --nonet --xpath "$path" "$file" 2>/dev/null) || return 1
    decls=$(xp "$file" "$path/../namespace::*")
    stag=${el%%>*}
    name=${stag#<}
    name=${name%%[[:space:]/]*}
    # libxml2 serializes an element's own namespace declarations first.
    rest=${stag#"<$name"}
    local re='^[[:space:]]+(xmlns(:[^=[:space:]]+)?)=("[^"]*"|'"'[^']*'"')'
    while [[ $rest =~ $re ]]; do
        own+="${BASH_REMATCH[1]} "
        rest=${rest:${#BASH_REMATCH[0]}}
    done
    while IFS= read -r line; do
        [[ $line =~ ^[[:space:]]*(xmlns(:[^=[:space:]]+)?)= ]] || continue
        prefix=${BASH_REMATCH[1]}
        [ "$prefix" != xmlns:xml ] || continue
        [[ $own == *" $prefix "* ]] && continue
        add+=" ${line#"${line%%[![:space:]]*}"}"
    done <<< "$decls"
    printf '%s\n' "<$name$add${el#"<$name"}"
}

# ---------------------------------------------------------------- schema cache
write_stubs() { # DIR
    # Stand-ins, written for this tool, for schemas onvif.xsd imports by URL but
    # that are not in the shared tree.  They declare what onvif.xsd references
    # (xmime:contentType, xop:Include, soapenv:Envelope, soapenv:Fault) following
    # the W3C documents' structure; only tt:BinaryData, tt:AttachmentData and
    # tt:ActionEngineEventPayload use them.
    cat > "$1/xmlmime.xsd" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<!-- Stand-in for http://www.w3.org/2005/05/xmlmime, generated by validate-soap.sh -->
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xmime="http://www.w3.org/2005/05/xmlmime"
           targetNamespace="http://www.w3.org/2005/05/xmlmime">
  <xs:attribute name="contentType">
    <xs:simpleType><xs:restriction base="xs:string"><xs:minLength value="3"/></xs:restriction></xs:simpleType>
  </xs:attribute>
  <xs:attribute name="expectedContentTypes" type="xs:string"/>
  <xs:complexType name="base64Binary">
    <xs:simpleContent><xs:extension base="xs:base64Binary"><xs:attribute ref="xmime:contentType"/></xs:extension></xs:simpleContent>
  </xs:complexType>
  <xs:complexType name="hexBinary">
    <xs:simpleContent><xs:extension base="xs:hexBinary"><xs:attribute ref="xmime:contentType"/></xs:extension></xs:simpleContent>
  </xs:complexType>
</xs:schema>
EOF
    cat > "$1/xop-include.xsd" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<!-- Stand-in for http://www.w3.org/2004/08/xop/include, generated by validate-soap.sh -->
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="http://www.w3.org/2004/08/xop/include"
           elementFormDefault="qualified">
  <xs:element name="Include">
    <xs:complexType>
      <xs:sequence><xs:any namespace="##other" minOccurs="0" maxOccurs="unbounded" processContents="lax"/></xs:sequence>
      <xs:attribute name="href" type="xs:anyURI" use="required"/>
      <xs:anyAttribute namespace="##other" processContents="lax"/>
    </xs:complexType>
  </xs:element>
</xs:schema>
EOF
    cat > "$1/soap-envelope.xsd" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<!-- Stand-in for http://www.w3.org/2003/05/soap-envelope (SOAP 1.2 Part 1 structure),
     generated by validate-soap.sh.  Only used for the tt types that reference
     soapenv:Envelope / soapenv:Fault; SOAP faults in responses are checked by hand. -->
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:tns="http://www.w3.org/2003/05/soap-envelope"
           targetNamespace="http://www.w3.org/2003/05/soap-envelope" elementFormDefault="qualified">
  <xs:import namespace="http://www.w3.org/XML/1998/namespace" schemaLocation="http://www.w3.org/2001/xml.xsd"/>
  <xs:element name="Envelope" type="tns:Envelope"/>
  <xs:complexType name="Envelope">
    <xs:sequence>
      <xs:element ref="tns:Header" minOccurs="0"/>
      <xs:element ref="tns:Body"/>
    </xs:sequence>
    <xs:anyAttribute namespace="##other" processContents="lax"/>
  </xs:complexType>
  <xs:element name="Header" type="tns:Header"/>
  <xs:complexType name="Header">
    <xs:sequence><xs:any namespace="##any" processContents="lax" minOccurs="0" maxOccurs="unbounded"/></xs:sequence>
    <xs:anyAttribute namespace="##other" processContents="lax"/>
  </xs:complexType>
  <xs:element name="Body" type="tns:Body"/>
  <xs:complexType name="Body">
    <xs:sequence><xs:any namespace="##any" processContents="lax" minOccurs="0" maxOccurs="unbounded"/></xs:sequence>
    <xs:anyAttribute namespace="##other" processContents="lax"/>
  </xs:complexType>
  <xs:attribute name="mustUnderstand" type="xs:boolean" default="0"/>
  <xs:attribute name="relay" type="xs:boolean" default="0"/>
  <xs:attribute name="role" type="xs:anyURI"/>
  <xs:attribute name="encodingStyle" type="xs:anyURI"/>
  <xs:element name="Fault" type="tns:Fault"/>
  <xs:complexType name="Fault" final="extension">
    <xs:sequence>
      <xs:element name="Code" type="tns:faultcode"/>
      <xs:element name="Reason" type="tns:faultreason"/>
      <xs:element name="Node" type="xs:anyURI" minOccurs="0"/>
      <xs:element name="Role" type="xs:anyURI" minOccurs="0"/>
      <xs:element name="Detail" type="tns:detail" minOccurs="0"/>
    </xs:sequence>
  </xs:complexType>
  <xs:complexType name="faultreason">
    <xs:sequence><xs:element name="Text" type="tns:reasontext" maxOccurs="unbounded"/></xs:sequence>
  </xs:complexType>
  <xs:complexType name="reasontext">
    <xs:simpleContent>
      <xs:extension base="xs:string"><xs:attribute ref="xml:lang" use="required"/></xs:extension>
    </xs:simpleContent>
  </xs:complexType>
  <xs:complexType name="faultcode">
    <xs:sequence>
      <xs:element name="Value" type="tns:faultcodeEnum"/>
      <xs:element name="Subcode" type="tns:subcode" minOccurs="0"/>
    </xs:sequence>
  </xs:complexType>
  <xs:simpleType name="faultcodeEnum">
    <xs:restriction base="xs:QName">
      <xs:enumeration value="tns:DataEncodingUnknown"/>
      <xs:enumeration value="tns:MustUnderstand"/>
      <xs:enumeration value="tns:Receiver"/>
      <xs:enumeration value="tns:Sender"/>
      <xs:enumeration value="tns:VersionMismatch"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:complexType name="subcode">
    <xs:sequence>
      <xs:element name="Value" type="xs:QName"/>
      <xs:element name="Subcode" type="tns:subcode" minOccurs="0"/>
    </xs:sequence>
  </xs:complexType>
  <xs:complexType name="detail">
    <xs:sequence><xs:any namespace="##any" processContents="lax" minOccurs="0" maxOccurs="unbounded"/></xs:sequence>
    <xs:anyAttribute namespace="##other" processContents="lax"/>
  </xs:complexType>
</xs:schema>
EOF
}

# cache_name REL: file name in the cache's schemas/ dir for a tree-relative path.
cache_name() { local b=${1//\//_}; printf '%s.xsd' "${b%.*}"; }

# localize TEXT SRC_DIR: prints TEXT with every relative schemaLocation made
# absolute: a file that the cache holds a copy of (COPIED_SCHEMAS) becomes its
# name in schemas/, anything else a file:// URI into the shared tree.  Absolute
# URLs stay as they are (the catalog maps them).
localize() {
    local text=$1 dir=$2 rest loc abs rel new c
    rest=$text
    while [[ $rest =~ schemaLocation=\"([^\"]*)\" ]]; do
        loc=${BASH_REMATCH[1]}
        rest=${rest#*"${BASH_REMATCH[0]}"}
        [[ $loc =~ ^[A-Za-z][A-Za-z0-9+.-]*: ]] && continue
        abs=$(realpath -m -- "$dir/$loc")
        [ -f "$abs" ] || setup_error "a schema in $dir refers to $loc, but $abs does not exist"
        new=$(file_uri "$abs")
        rel=${abs#"$WSDL_DIR"/}
        for c in "${COPIED_SCHEMAS[@]}"; do
            [ "$rel" != "$c" ] || new=$(cache_name "$c")
        done
        text=${text//"schemaLocation=\"$loc\""/"schemaLocation=\"$new\""}
    done
    printf '%s\n' "$text"
}

# apply_patches REL FILE: the UPA work-arounds (SCHEMA_PATCHES) for REL, in place.
apply_patches() {
    local rel=$1 file=$2 p type
    for p in "${SCHEMA_PATCHES[@]}"; do
        [ "${p%% *}" = "$rel" ] || continue
        type=${p#* }
        awk -v type="$type" '
            index($0, "<xs:complexType name=\"" type "\"") { inside = 1 }
            inside && !done && sub(/namespace="##targetNamespace"/, "namespace=\"##other\"") {
                done = 1
                $0 = $0 "<!-- validate-soap.sh: was ##targetNamespace (not deterministic, UPA) -->"
            }
            inside && index($0, "</xs:complexType>") { inside = 0 }
            { print }
            END { if (!done) print "<!-- validate-soap.sh: patch for " type " did not apply -->" }
        ' "$file" > "$file.new"
        mv "$file.new" "$file"
        if grep -q "patch for $type did not apply" "$file"; then
            printf 'note: work-around for %s in %s not needed any more\n' "$type" "$rel" >> "${file%/*}/../build.log"
        fi
    done
}

# copy_schema REL OUTDIR: a localized, patched copy of a schema file of the tree.
copy_schema() {
    local rel=$1 out=$2 src name
    src="$WSDL_DIR/$rel"
    name=$(cache_name "$rel")
    { printf '<!-- Copied by validate-soap.sh from %s (relative locations made absolute) -->\n' "$(xml_escape "$src")"
      localize "$(sed '1{/^<?xml/d}' "$src")" "$(dirname "$src")"
    } > "$out/$name"
    apply_patches "$rel" "$out/$name"
}

# extract_service_schemas WSDL_REL OUTDIR: writes each xs:schema embedded in
# the WSDL to OUTDIR, with the wsdl:definitions namespace declarations carried
# over and schemaLocations localized; appends "namespace file" lines to
# OUTDIR/imports.
extract_service_schemas() {
    local rel=$1 out=$2 wsdl sxp n i tns text base
    wsdl="$WSDL_DIR/$rel"
    sxp="/*[local-name()='definitions']/*[local-name()='types']/*[local-name()='schema' and namespace-uri()='$XS_NS']"
    n=$(xp "$wsdl" "count($sxp)")
    [ "${n:-0}" -ge 1 ] 2>/dev/null || setup_error "no embedded xs:schema in $wsdl"
    for ((i = 1; i <= n; i++)); do
        tns=$(xp "$wsdl" "string(${sxp}[$i]/@targetNamespace)")
        [ -n "$tns" ] || setup_error "embedded schema $i of $wsdl has no targetNamespace"
        text=$(extract_with_ns "$wsdl" "${sxp}[$i]") || setup_error "cannot extract schema $i from $wsdl"
        base=$(cache_name "$rel")
        [ "$n" -eq 1 ] || base="${base%.xsd}-$i.xsd"
        { printf '<!-- Extracted by validate-soap.sh from %s, schema %s -->\n' "$(xml_escape "$wsdl")" "$i"
          localize "$text" "$(dirname "$wsdl")"
        } > "$out/$base"
        apply_patches "$rel" "$out/$base"
        printf '%s %s\n' "$tns" "$base" >> "$out/imports"
    done
}

build_cache() { # DIR
    local d=$1 m url file ns loc scheme
    mkdir -p "$d/schemas" "$d/stubs"
    : > "$d/build.log"
    write_stubs "$d/stubs"
    : > "$d/schemas/imports"
    for m in "${COPIED_SCHEMAS[@]}"; do copy_schema "$m" "$d/schemas"; done
    for m in "${SERVICE_WSDLS[@]}"; do extract_service_schemas "$m" "$d/schemas"; done

    {
        printf '<?xml version="1.0" encoding="UTF-8"?>\n'
        printf '<!-- Generated by validate-soap.sh: maps the absolute URLs in the ONVIF/OASIS schemas to local files. -->\n'
        printf '<catalog xmlns="urn:oasis:names:tc:entity:xmlns:xml:catalog" prefer="system">\n'
        for m in "${EXTERNAL_MAP[@]}" "${STUB_MAP[@]}"; do
            url=${m% *}
            case " ${STUB_MAP[*]} " in
                *" $m "*) file="stubs/${m#* }" ;;   # relative to the catalog
                *) file=$(file_uri "$WSDL_DIR/external/${m#* }") ;;
            esac
            file=$(xml_escape "$file")
            for scheme in http https; do
                printf '  <system systemId="%s://%s" uri="%s"/>\n' "$scheme" "$url" "$file"
                printf '  <uri name="%s://%s" uri="%s"/>\n' "$scheme" "$url" "$file"
            done
        done
        printf '</catalog>\n'
    } > "$d/catalog.xml"

    {
        printf '<?xml version="1.0" encoding="UTF-8"?>\n'
        printf '<!-- Generated by validate-soap.sh from %s: imports every service schema. -->\n' "$(xml_escape "$WSDL_DIR")"
        printf '<xs:schema xmlns:xs="%s">\n' "$XS_NS"
        printf '  <xs:import namespace="http://www.onvif.org/ver10/schema" schemaLocation="schemas/%s"/>\n' \
            "$(cache_name ver10/schema/onvif.xsd)"
        while read -r ns loc; do
            printf '  <xs:import namespace="%s" schemaLocation="schemas/%s"/>\n' "$(xml_escape "$ns")" "$(xml_escape "$loc")"
        done < "$d/schemas/imports"
        for m in "${EXTRA_IMPORTS[@]}"; do
            printf '  <xs:import namespace="%s" schemaLocation="%s"/>\n' "${m% *}" "${m#* }"
        done
        printf '</xs:schema>\n'
    } > "$d/wrapper.xsd"

    # Compile once so that a broken tree is reported as a setup error and
    # never cached: a document with an undeclared root must give "invalid" (3).
    printf '<probe xmlns="urn:opennvt:validate-soap:probe"/>\n' > "$d/probe.xml"
    local rc=0
    XML_CATALOG_FILES="$(file_uri "$d/catalog.xml")" xmllint --noout --nonet --schema "$d/wrapper.xsd" "$d/probe.xml" \
        > /dev/null 2> "$d/compile.log" || rc=$?
    if [ "$rc" -ne 3 ]; then
        sed 's/^/    /' "$d/compile.log" >&2
        setup_error "the ONVIF schemas do not compile (xmllint exit $rc)"
    fi
    rm -f "$d/probe.xml"
    printf '%s\n' "$WSDL_DIR" > "$d/complete"
}

# Cache key: the format, this script and the shared tree (names, sizes, mtimes).
cache_key() {
    {
        printf 'format=%s\nwsdl=%s\n' "$CACHE_FORMAT" "$WSDL_DIR"
        sha256sum < "${BASH_SOURCE[0]}"
        (cd "$WSDL_DIR" && find . -type f \( -name '*.xsd' -o -name '*.wsdl' \) -printf '%p %s %T@\n' | LC_ALL=C sort)
    } | sha256sum | cut -c1-16
}

ensure_cache() {
    local key final build
    key=$(cache_key)
    final="$CACHE_ROOT/onvif-xsd-$key"
    if [ -f "$final/complete" ]; then CACHE_DIR=$(cd "$final" && pwd -P); return; fi
    mkdir -p "$CACHE_ROOT" || setup_error "cannot create schema cache $CACHE_ROOT"
    CACHE_ROOT=$(cd "$CACHE_ROOT" && pwd -P)
    final="$CACHE_ROOT/onvif-xsd-$key"
    # The cache only refers to itself by relative URIs, so it is built under a
    # temporary name and renamed; concurrent builders: the first rename wins.
    build=$(mktemp -d "$CACHE_ROOT/.build-$key.XXXXXX")
    trap 'rm -rf "$TMP" "$build"' EXIT
    build_cache "$build"
    if ! mv -T "$build" "$final" 2>/dev/null; then
        if [ -f "$final/complete" ]; then
            rm -rf "$build"                        # another run was faster
        else
            rm -rf "$final"                        # broken leftover
            mv -T "$build" "$final"
        fi
    fi
    trap 'rm -rf "$TMP"' EXIT
    [ -f "$final/complete" ] || setup_error "schema cache $final is incomplete"
    CACHE_DIR=$final
}

# ---------------------------------------------------------------- checks
ERRORS=0
err() { printf '%s: invalid: %s\n' "$RESPONSE" "$*" >&2; ERRORS=$((ERRORS + 1)); }
finish() {
    if [ "$ERRORS" -ne 0 ]; then exit 1; fi
    printf '%s: valid%s\n' "$RESPONSE" "${1:+ ($1)}"
    exit 0
}

# (a) well-formed SOAP 1.2 envelope
if ! xmllint --nonet --debug "$RESPONSE" > "$TMP/tree" 2> "$TMP/wf.err"; then
    sed 's/^/    /' "$TMP/wf.err" >&2
    err "not well-formed XML"
    finish
fi
# SOAP 1.2 Part 1, 5: no document type declaration (xmllint's tree dump shows it
# as a top-level DTD node).
! grep -q '^  DTD(' "$TMP/tree" || err "SOAP messages must not contain a document type declaration"
S="namespace-uri()='$SOAP_NS'"
ENV="/*[local-name()='Envelope' and $S]"
BODY="$ENV/*[local-name()='Body' and $S]"
FAULT="$BODY/*[local-name()='Fault' and $S]"
# One xmllint run for all the structural counts.
read -r is_env n_all n_body n_head head_first n_pi n_text n_children n_fault <<< "$(xp "$RESPONSE" "concat(
    boolean($ENV), ' ', count($ENV/*), ' ', count($BODY),
    ' ', count($ENV/*[local-name()='Header' and $S]),
    ' ', boolean($ENV/*[1][local-name()='Header' and $S]),
    ' ', count(//processing-instruction()),
    ' ', count($BODY/text()[normalize-space() != '']),
    ' ', count($BODY/*), ' ', count($FAULT))")"
if [ "$is_env" != true ]; then
    err "root element is {$(xp "$RESPONSE" 'namespace-uri(/*)')}$(xp "$RESPONSE" 'local-name(/*)'), expected {$SOAP_NS}Envelope"
    finish
fi
[ "$n_body" = 1 ] || err "Envelope has $n_body Body elements, expected exactly one"
[ "$n_head" -le 1 ] || err "Envelope has $n_head Header elements"
[ "$n_all" = $((n_body + n_head)) ] || err "Envelope has child elements other than Header and Body"
[ "$n_head" = 0 ] || [ "$head_first" = true ] || err "Header is not the first child of Envelope"
[ "$n_pi" = 0 ] || err "SOAP messages must not contain processing instructions"
[ "$ERRORS" -eq 0 ] || finish
[ "$n_text" = 0 ] || err "Body contains character data"
if [ "$n_children" = 0 ]; then
    err "Body is empty (expected an ONVIF response element or a Fault)"
    finish
fi

# resolve_qname XPATH: sets QN_PREFIX QN_LOCAL QN_NS for the QName content of
# the element XPATH; returns 1 (with a message) if it is not a resolvable QName.
resolve_qname() {
    local x=$1 what=$2 v ns
    QN_PREFIX="" QN_LOCAL="" QN_NS=""
    v=$(xp "$RESPONSE" "concat(count($x/*), ' ', normalize-space($x))")
    if [ "${v%% *}" != 0 ]; then err "$what has element content"; return 1; fi
    v=${v#* }
    local LC_ALL=C
    if ! [[ $v =~ ^(([A-Za-z_][-A-Za-z0-9._]*):)?([A-Za-z_][-A-Za-z0-9._]*)$ ]]; then
        err "$what '$v' is not a QName"; return 1
    fi
    QN_PREFIX=${BASH_REMATCH[2]}
    QN_LOCAL=${BASH_REMATCH[3]}
    ns=$(xp "$RESPONSE" "concat(count($x/namespace::*[name()='$QN_PREFIX']), ' ', string($x/namespace::*[name()='$QN_PREFIX']))")
    if [ -n "$QN_PREFIX" ] && [ "${ns%% *}" = 0 ]; then
        err "$what '$v': namespace prefix '$QN_PREFIX' is not declared"; return 1
    fi
    QN_NS=${ns#* }
    return 0
}

# element_names XPATH: the element children as "{ns}local" words
element_names() {
    local x=$1 n i expr="concat(''"
    n=$(xp "$RESPONSE" "count($x/*)")
    [ "$n" != 0 ] || return 0
    for ((i = 1; i <= n; i++)); do
        expr+=", ' {', namespace-uri($x/*[$i]), '}', local-name($x/*[$i])"
    done
    n=$(xp "$RESPONSE" "$expr)")
    printf '%s' "${n# }"
}

# (b) SOAP Fault, checked by hand
if [ "$n_fault" != 0 ]; then
    [ "$n_children" = 1 ] || err "a Body with a Fault must hold nothing else (it has $n_children children)"
    F="${FAULT}[1]"
    e="{$SOAP_NS}"
    names=$(element_names "$F")
    if ! [[ " $names " =~ ^" ${e}Code ${e}Reason "("${e}Node ")?("${e}Role ")?("${e}Detail ")?$ ]]; then
        err "Fault children are [$names], expected Code, Reason, [Node], [Role], [Detail] in the SOAP 1.2 namespace"
    fi
    # Code/Value
    C="$F/*[local-name()='Code' and $S][1]"
    names=$(element_names "$C")
    if ! [[ " $names " =~ ^" ${e}Value "("${e}Subcode ")?$ ]]; then
        err "Fault/Code children are [$names], expected Value, [Subcode]"
    elif resolve_qname "$C/*[1]" "Fault/Code/Value"; then
        if [ "$QN_NS" != "$SOAP_NS" ] || [[ $SOAP_CODES != *" $QN_LOCAL "* ]]; then
            codes=$(printf '%s' "$SOAP_CODES" | sed 's/^ //; s/ $//; s/ /|/g')
            err "Fault/Code/Value is {$QN_NS}$QN_LOCAL, expected env:($codes) with env = $SOAP_NS"
        fi
    fi
    # Subcode chain
    X="$C"
    depth=0
    while [ "$(xp "$RESPONSE" "count($X/*[local-name()='Subcode' and $S])")" != 0 ]; do
        X="$X/*[local-name()='Subcode' and $S][1]"
        depth=$((depth + 1))
        what="Fault/Code$(printf '/Subcode%.0s' $(seq "$depth"))"
        names=$(element_names "$X")
        if ! [[ " $names " =~ ^" ${e}Value "("${e}Subcode ")?$ ]]; then
            err "$what children are [$names], expected Value, [Subcode]"
            break
        fi
        resolve_qname "$X/*[1]" "$what/Value" || continue
        if [ "$QN_PREFIX" = ter ] || [[ $QN_NS == http://www.onvif.org/* ]] || [[ $ONVIF_SUBCODES == *[[:space:]]"$QN_LOCAL"[[:space:]]* ]]; then
            [ "$QN_NS" = "$TER_NS" ] ||
                err "$what/Value '$QN_PREFIX:$QN_LOCAL' is an ONVIF subcode but its namespace is '$QN_NS', expected $TER_NS"
        fi
        [ -n "$QN_NS" ] || err "$what/Value '$QN_LOCAL' is not namespace-qualified"
    done
    # Reason/Text with xml:lang
    R="$F/*[local-name()='Reason' and $S][1]"
    read -r n_text n_rchild n_nolang n_relem <<< "$(xp "$RESPONSE" "concat(
        count($R/*[local-name()='Text' and $S]), ' ', count($R/*), ' ',
        count($R/*[not(@xml:lang)]), ' ', count($R/*/*))")"
    [ "$n_text" -ge 1 ] || err "Fault/Reason has no Text"
    [ "$n_rchild" = "$n_text" ] || err "Fault/Reason has children other than Text"
    [ "$n_nolang" = 0 ] || err "Fault/Reason/Text without xml:lang"
    [ "$n_relem" = 0 ] || err "Fault/Reason/Text has element content"
    finish "SOAP fault $(xp "$RESPONSE" "normalize-space($C/*[1])")"
fi

# (c) every Body child against the ONVIF schemas
ensure_cache
summary=""
CATALOG_URI=$(file_uri "$CACHE_DIR/catalog.xml")   # XML_CATALOG_FILES is blank-separated
for ((i = 1; i <= n_children; i++)); do
    qname=$(xp "$RESPONSE" "name($BODY/*[$i])")
    doc="body-$i.xml"          # relative to $TMP, so messages can be relabelled
    extract_with_ns "$RESPONSE" "$BODY/*[$i]" > "$TMP/$doc" || setup_error "cannot extract Body child $i"
    rc=0
    (cd "$TMP" && XML_CATALOG_FILES=$CATALOG_URI \
        xmllint --noout --nonet --schema "$CACHE_DIR/wrapper.xsd" "$doc") > /dev/null 2> "$TMP/val.err" || rc=$?
    label="${RESPONSE}[Body/$qname]"
    case $rc in
        0) summary+="${summary:+, }$qname" ;;
        3) { grep -v "^$doc validates\$\|^$doc fails to validate\$" "$TMP/val.err" || true; } |
               while IFS= read -r line; do
                   [[ $line == "$doc:"* ]] && line="$label:${line#"$doc:"}"
                   printf '    %s\n' "$line"
               done >&2
           err "Body child $i <$qname> does not validate against the ONVIF schemas" ;;
        1) sed 's/^/    /' "$TMP/val.err" >&2; setup_error "extracted Body child $i is not well-formed (internal error)" ;;
        *) sed 's/^/    /' "$TMP/val.err" >&2; setup_error "xmllint exit $rc while validating Body child $i" ;;
    esac
done
finish "$summary"
