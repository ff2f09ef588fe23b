#!/bin/sh
# Pull the messages waiting for you from a niem-exchange SOAP endpoint and acknowledge each one, with standard
# tools only: xmllint, xmlsec1, curl, base64, sha256sum.
#
#   ENDPOINT=https://host:8443/soap/exchange \
#   TLS_CERT=client.pem TLS_KEY=client.key CA=ca.pem \
#   SIGN_CERT=signing.pem SIGN_KEY=signing.key SERVICE_CERT=service-signing.pem \
#   OUT=inbox [MAX=10] [ACK=1] sh pull-with-curl.sh
#
# You are recognised by your TLS client certificate AND your WS-Security signing certificate (both pinned by
# the sender). Every response must carry a valid signature by SERVICE_CERT (the sender's service
# certificate, pinned out of band), or the script stops. Each message is written to OUT/<MessageID>.xml exactly
# as the other transports deliver it (an xenc:EncryptedData document encrypted to you: open it with
# `xmlsec1 --decrypt` or `niem-exchange receive`), its SHA-256 is checked, and only then is it acknowledged
# (ACK=0: do not acknowledge; the messages are offered again when their lease ends).
# Prints one line per message: "<MessageID> <Status>". Exit status non-zero on any refusal.
set -eu
: "${ENDPOINT:?}" "${TLS_CERT:?}" "${TLS_KEY:?}" "${CA:?}" "${SIGN_CERT:?}" "${SIGN_KEY:?}" "${SERVICE_CERT:?}" "${OUT:?}"
MAX=${MAX:-10}
ACK=${ACK:-1}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$OUT"

soap=http://schemas.xmlsoap.org/soap/envelope/
wsu=http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd
wsa=http://www.w3.org/2005/08/addressing
tns=http://niem-exchange.org/ns/wsdl/exchange/1.0/

# call OPERATION BODY_FILE RESPONSE_FILE: fill the template, sign it, POST it, verify the signed response.
call() {
  created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  expires=$(date -u -d '+5 min' +%Y-%m-%dT%H:%M:%SZ)
  cert=$(sed -e '/-----/d' "$SIGN_CERT" | tr -d '\n')
  sed -e "s|@ENDPOINT@|$ENDPOINT|g" -e "s|@OPERATION@|$1|g" -e "s|@REQUEST_ID@|$(cat /proc/sys/kernel/random/uuid)|g" \
      -e "s|@CREATED@|$created|g" -e "s|@EXPIRES@|$expires|g" -e "s|@CERT@|$cert|g" \
      "$here/call-request.template.xml" \
    | awk -v f="$2" '/@BODY@/ { while ((getline line < f) > 0) print line; next } { print }' > "$work/request.xml"
  xmlsec1 --sign --privkey-pem "$SIGN_KEY" \
    --id-attr:Id "$soap:Body" --id-attr:Id "$wsu:Timestamp" \
    --id-attr:Id "$wsa:Action" --id-attr:Id "$wsa:MessageID" --id-attr:Id "$wsa:To" \
    --output "$work/signed.xml" "$work/request.xml"
  curl --silent --show-error --fail-with-body --output "$3" \
    --cert "$TLS_CERT" --key "$TLS_KEY" --cacert "$CA" \
    -H 'Content-Type: text/xml; charset=utf-8' -H "SOAPAction: \"$tns$1\"" \
    --data-binary @"$work/signed.xml" "$ENDPOINT" || { cat "$3" >&2; return 1; }
  xmlsec1 --verify --pubkey-cert-pem "$SERVICE_CERT" \
    --id-attr:Id "$soap:Body" --id-attr:Id "$wsu:Timestamp" --id-attr:Id "$wsa:Action" \
    --id-attr:Id "$wsa:MessageID" --id-attr:Id "$wsa:RelatesTo" "$3" 2>/dev/null \
    || { echo "response not signed by SERVICE_CERT: refused" >&2; return 1; }
}

field() {  # field RESPONSE INDEX NAME: the text of Message[INDEX]/NAME
  xmllint --xpath "string((//*[local-name()='Message'])[$2]/*[local-name()='$3'])" "$1"
}

printf '<tns:PullMessagesRequest xmlns:tns="%s"><tns:MaxMessages>%s</tns:MaxMessages></tns:PullMessagesRequest>\n' \
  "$tns" "$MAX" > "$work/pull.xml"
call PullMessages "$work/pull.xml" "$work/pulled.xml"
count=$(xmllint --xpath "count(//*[local-name()='Message'])" "$work/pulled.xml")
i=1
while [ "$i" -le "$count" ]; do
  id=$(field "$work/pulled.xml" "$i" MessageID)
  sha=$(field "$work/pulled.xml" "$i" PayloadSHA256)
  case "$id" in *[!0-9a-f-]*|"") echo "unexpected MessageID: refused" >&2; exit 1;; esac
  field "$work/pulled.xml" "$i" Payload | base64 -d > "$work/$id.xml"
  echo "$sha  $work/$id.xml" | sha256sum -c --quiet -
  mv "$work/$id.xml" "$OUT/$id.xml"
  status=pulled
  if [ "$ACK" = 1 ]; then
    printf '<tns:AcknowledgeMessageRequest xmlns:tns="%s"><tns:MessageID>%s</tns:MessageID><tns:PayloadSHA256>%s</tns:PayloadSHA256></tns:AcknowledgeMessageRequest>\n' \
      "$tns" "$id" "$sha" > "$work/ack.xml"
    call AcknowledgeMessage "$work/ack.xml" "$work/acked.xml"
    status=$(xmllint --xpath "string(//*[local-name()='Status'])" "$work/acked.xml")
  fi
  echo "$id $status"
  i=$((i + 1))
done
