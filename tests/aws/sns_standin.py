"""A loopback stand-in for the SNS Query API's Publish (and CloudWatch's DescribeAlarms) that checks
every request's SigV4 signature by recomputing it with botocore's own signer (AWS's Python SDK
core), not with our code: service ``sns`` for Publish, ``monitoring`` for DescribeAlarms.

Usage: sns_standin.py --access-key ID --secret KEY [--token TOKEN] --region R --topic ARN
       [--alarms FILE] [--page-size N]
``--alarms`` names a JSON file read at every DescribeAlarms: a list of
``{"name", "state", "transitioned", "updated", "device"}`` (times ISO 8601), so a test can change
the alarms' states between calls. DescribeAlarms answers the documented XML
(DescribeAlarmsResponse/DescribeAlarmsResult/MetricAlarms/member…), filtered by AlarmNamePrefix
and StateValue, at most min(MaxRecords, --page-size) a page, with a NextToken while more remain;
an unknown NextToken is 400 InvalidNextToken. ``/garbage/`` answers 200 with text that is not XML,
``/loop/`` answers every page with the same NextToken.
Prints ``port N`` once listening on 127.0.0.1, then one JSON line per request it received:
``{"path", "verified", "reason", "params", "signed_headers"}``. It answers like SNS:
- a valid, correctly signed Publish: 200 and a PublishResponse with a MessageId;
- a bad signature or scope: 403 and an ErrorResponse SignatureDoesNotMatch whose message echoes
  the canonical request it expected (which holds the session token: clients must not print it);
- a bad request (no Message, wrong TopicArn, wrong Action): 400 InvalidParameter.
Paths other than ``/`` make it misbehave on purpose: ``/redirect/`` answers 307 to ``/trap/``,
``/slow/`` waits 30 s before answering, ``/huge/`` answers 200 with a 1 MiB body, ``/trap/``
records that it was reached (a client that follows redirects ends up there).
Stops on SIGTERM or when stdin closes.
"""

from __future__ import annotations

import argparse
import hmac
import json
import re
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<sig>[0-9a-f]{64})$"
)
MAX_BODY = 300 * 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--access-key", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--token")
    parser.add_argument("--region", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--alarms")
    parser.add_argument("--page-size", type=int, default=100)
    args = parser.parse_args()
    lock = threading.Lock()

    def record(**fields) -> None:
        with lock:
            print(json.dumps(fields), flush=True)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a) -> None:  # quiet: stdout carries the records
            pass

        def answer(self, status: int, body: bytes, extra: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.answer(413, b"<ErrorResponse><Error><Code>RequestEntityTooLarge</Code></Error></ErrorResponse>")
                return
            body = self.rfile.read(length)
            path = self.path
            if path.startswith("/trap/"):
                record(path=path, verified=False, reason="trap reached", params={}, signed_headers=[])
                self.answer(500, b"")
                return
            ok, reason, canonical = verify(self, body, args)
            params = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
            signed = AUTH.match(self.headers.get("Authorization", "") or "")
            record(path=path, verified=ok, reason=reason, params=params,
                   signed_headers=signed.group("signed").split(";") if signed else [])  # fmt: skip
            if path.startswith("/redirect/"):
                self.answer(307, b"", {"Location": f"http://127.0.0.1:{self.server.server_port}/trap/"})
                return
            if path.startswith("/slow/"):
                time.sleep(30)
            if path.startswith("/huge/"):
                self.answer(200, b"<PublishResponse>" + b" " * (1024 * 1024) + b"</PublishResponse>")
                return
            if path.startswith("/garbage/"):
                self.answer(200, b"this is not the XML you are looking for <<<")
                return
            if not ok:
                message = f"The request signature we calculated does not match the signature you provided. The Canonical String for this request should have been {canonical!r}"
                self.answer(403, error_xml("SignatureDoesNotMatch", message))
                return
            if params.get("Action") == "DescribeAlarms":
                status, xml = describe_alarms(params, args, loop=path.startswith("/loop/"))
                self.answer(status, xml)
                return
            problem = check_params(params, args.topic)
            if problem:
                self.answer(400, error_xml("InvalidParameter", problem))
                return
            message_id = str(uuid.uuid4())
            self.answer(
                200,
                f"<PublishResponse xmlns=\"https://sns.amazonaws.com/doc/2010-03-31/\"><PublishResult><MessageId>{message_id}</MessageId></PublishResult><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></PublishResponse>".encode(),
            )

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"port {server.server_port}", flush=True)
    threading.Thread(target=lambda: (sys.stdin.read(), server.shutdown()), daemon=True).start()
    server.serve_forever()


def verify(handler: BaseHTTPRequestHandler, body: bytes, args) -> tuple[bool, str, str]:
    """(valid, why not, the canonical request botocore computes)."""
    auth = AUTH.match(handler.headers.get("Authorization", "") or "")
    if not auth:
        return False, "no or malformed Authorization header", ""
    amz_date = handler.headers.get("X-Amz-Date", "")
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return False, "bad X-Amz-Date", ""
    if abs((datetime.now(timezone.utc) - signed_at).total_seconds()) > 15 * 60:
        return False, "X-Amz-Date more than 15 minutes off", ""
    if auth.group("key") != args.access_key:
        return False, "unknown access key", ""
    action = parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0]
    service = "monitoring" if action == "DescribeAlarms" else "sns"
    if (auth.group("date"), auth.group("region"), auth.group("service")) != (amz_date[:8], args.region, service):
        return False, "wrong credential scope", ""
    signed = auth.group("signed").split(";")
    needed = {"host", "x-amz-date", "content-type"} | ({"x-amz-security-token"} if args.token else set())
    if not needed <= set(signed):
        return False, f"unsigned headers: {sorted(needed - set(signed))}", ""
    if args.token and handler.headers.get("X-Amz-Security-Token") != args.token:
        return False, "wrong security token", ""
    headers = {}
    for name in signed:
        value = handler.headers.get(name)
        if value is None:
            return False, f"signed header {name} not sent", ""
        headers[name] = value
    request = AWSRequest(method=handler.command, url=f"http://{headers['host']}{handler.path}", data=body, headers=headers)
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(args.access_key, args.secret, args.token), service, args.region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, auth.group("sig")):
        return False, "signature does not match botocore's", canonical
    return True, "", canonical


def check_params(params: dict[str, str], topic: str) -> str:
    if params.get("Action") != "Publish" or params.get("Version") != "2010-03-31":
        return "Action=Publish&Version=2010-03-31 expected"
    if params.get("TopicArn") != topic:
        return "Invalid parameter: TopicArn"
    if not params.get("Message"):
        return "Invalid parameter: Empty message"
    subject = params.get("Subject")
    if subject is not None and (len(subject) >= 100 or not all(" " <= c <= "~" for c in subject)):
        return "Invalid parameter: Subject"
    return ""


def describe_alarms(params: dict[str, str], args, loop: bool = False) -> tuple[int, bytes]:
    """DescribeAlarms as the CloudWatch API reference documents it (Query protocol, 2010-08-01)."""
    from xml.sax.saxutils import escape

    if params.get("Version") != "2010-08-01":
        return 400, error_xml("InvalidParameterValue", "Version=2010-08-01 expected")
    if params.get("AlarmTypes.member.1", "MetricAlarm") != "MetricAlarm":
        return 400, error_xml("InvalidParameterValue", "only metric alarms here")
    try:
        max_records = int(params.get("MaxRecords", "50"))
    except ValueError:
        return 400, error_xml("InvalidParameterValue", "MaxRecords")
    if not 1 <= max_records <= 100:
        return 400, error_xml("InvalidParameterValue", "MaxRecords must be 1-100")
    alarms = json.load(open(args.alarms)) if args.alarms else []
    prefix, state = params.get("AlarmNamePrefix", ""), params.get("StateValue")
    chosen = sorted((a for a in alarms if a["name"].startswith(prefix) and (state is None or a["state"] == state)), key=lambda a: a["name"])
    token = params.get("NextToken")
    start = 0
    if token is not None:
        if not (token.startswith("offset-") and token[7:].isdigit()):
            return 400, error_xml("InvalidNextToken", "The service returned an error: the next token specified is invalid.")
        start = int(token[7:])
    size = min(max_records, args.page_size)
    page = chosen[start : start + size]
    members = "".join(
        "<member>"
        f"<AlarmName>{escape(a['name'])}</AlarmName>"
        f"<AlarmArn>arn:aws:cloudwatch:{args.region}:123456789012:alarm:{escape(a['name'])}</AlarmArn>"
        "<Namespace>ISPMonitor</Namespace><MetricName>Heartbeat</MetricName>"
        f"<Dimensions><member><Name>Device</Name><Value>{escape(a['device'])}</Value></member></Dimensions>"
        f"<StateValue>{a['state']}</StateValue>"
        "<StateReason>Threshold Crossed: 5 missing datapoints were treated as [Breaching].</StateReason>"
        f"<StateUpdatedTimestamp>{a.get('updated', a['transitioned'])}</StateUpdatedTimestamp>"
        f"<StateTransitionedTimestamp>{a['transitioned']}</StateTransitionedTimestamp>"
        "<Statistic>Sum</Statistic><Period>60</Period><EvaluationPeriods>5</EvaluationPeriods>"
        "<Threshold>1.0</Threshold><ComparisonOperator>LessThanThreshold</ComparisonOperator>"
        "<TreatMissingData>breaching</TreatMissingData><ActionsEnabled>true</ActionsEnabled>"
        "</member>"
        for a in page
    )
    more = start + size < len(chosen)
    next_token = token if loop and token else (f"offset-{start + size}" if more or loop else None)
    nt = f"<NextToken>{next_token}</NextToken>" if next_token else ""
    xml = (
        '<DescribeAlarmsResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><DescribeAlarmsResult>'
        f"<MetricAlarms>{members}</MetricAlarms><CompositeAlarms/>{nt}</DescribeAlarmsResult>"
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></DescribeAlarmsResponse>"
    )
    return 200, xml.encode()


def error_xml(code: str, message: str) -> bytes:
    from xml.sax.saxutils import escape

    return (
        f"<ErrorResponse xmlns=\"https://sns.amazonaws.com/doc/2010-03-31/\"><Error><Type>Sender</Type><Code>{code}</Code>"
        f"<Message>{escape(message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    ).encode()


if __name__ == "__main__":
    main()
