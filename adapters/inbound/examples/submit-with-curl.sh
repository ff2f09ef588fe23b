#!/bin/sh
# Submit one message to a niem-exchange SOAP endpoint with standard tools only: xmllint, xmlsec1, curl.
#
#   ENDPOINT=https://host:8443/soap/exchange \
#   TLS_CERT=client.pem TLS_KEY=client.key CA=ca.pem \
#   SIGN_CERT=signing.pem SIGN_KEY=signing.key \
#   PAYLOAD=message.xml [MESSAGE_ID=<uuid>] sh submit-with-curl.sh
#
# PAYLOAD is the message file (signed NIEM XML, or that message encrypted to the receiver). The script puts
# its exclusive canonical form into the SOAP Body with its SHA-256, fills in a WS-Security timestamp and
# token, signs Body, Timestamp and the WS-Addressing headers with xmlsec1 (RSA-SHA256), and POSTs it over
# mutual TLS. It prints the signed receipt; curl exits non-zero on a SOAP Fault (HTTP 500).
# Resending with the same MESSAGE_ID is safe: the service answers with the first receipt ("duplicate").
set -eu
: "${ENDPOINT:?}" "${TLS_CERT:?}" "${TLS_KEY:?}" "${CA:?}" "${SIGN_CERT:?}" "${SIGN_KEY:?}" "${PAYLOAD:?}"
MESSAGE_ID=${MESSAGE_ID:-$(cat /proc/sys/kernel/random/uuid)}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The payload element alone (no prolog comments), then its exclusive canonical form: what the digest covers.
xmllint --xpath '/*' "$PAYLOAD" > "$work/root.xml"
xmllint --exc-c14n "$work/root.xml" > "$work/payload.xml"
digest=$(sha256sum "$work/payload.xml" | cut -d' ' -f1)
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
expires=$(date -u -d '+5 min' +%Y-%m-%dT%H:%M:%SZ)
cert=$(sed -e '/-----/d' "$SIGN_CERT" | tr -d '\n')

sed -e "s|@ENDPOINT@|$ENDPOINT|g" -e "s|@MESSAGE_ID@|$MESSAGE_ID|g" -e "s|@DIGEST@|$digest|g" \
    -e "s|@CREATED@|$created|g" -e "s|@EXPIRES@|$expires|g" -e "s|@CERT@|$cert|g" \
    "$here/submit-request.template.xml" \
  | awk -v f="$work/payload.xml" '/@PAYLOAD@/ { while ((getline line < f) > 0) print line; next } { print }' \
  > "$work/request.xml"

soap=http://schemas.xmlsoap.org/soap/envelope/
wsu=http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd
wsa=http://www.w3.org/2005/08/addressing
xmlsec1 --sign --privkey-pem "$SIGN_KEY" \
  --id-attr:Id "$soap:Body" --id-attr:Id "$wsu:Timestamp" \
  --id-attr:Id "$wsa:Action" --id-attr:Id "$wsa:MessageID" --id-attr:Id "$wsa:To" \
  --output "$work/signed.xml" "$work/request.xml"

curl --silent --show-error --fail-with-body \
  --cert "$TLS_CERT" --key "$TLS_KEY" --cacert "$CA" \
  -H 'Content-Type: text/xml; charset=utf-8' \
  -H 'SOAPAction: "http://niem-exchange.org/ns/wsdl/exchange/1.0/SubmitMessage"' \
  --data-binary @"$work/signed.xml" "$ENDPOINT"
